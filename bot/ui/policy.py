"""``/fw policy`` and ``/fw quota``: the team's guardrails in force, and GPUs against the quotas."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.core.policy import EffectivePolicy, PolicyError, format_value
from bot.ui import kit
from bot.ui.kit import Message

# How /fw policy names each setting (in the order of the file's documentation).
LABELS = {
    "models": "Allowed models",
    "accelerators": "Allowed accelerators",
    "regions": "Allowed regions",
    "max_gpus_per_deployment": "Max GPUs per deployment",
    "max_replicas": "Max replicas",
    "max_gpus_per_person": "GPU quota per person",
    "max_gpus_per_team": "GPU quota per team",
    "max_usd_per_hour_without_approval": "Approval needed above",
    "require_idle_policy": "Idle policy required",
    "max_unused_auto_delete": "…with unused auto-delete at most",
    "max_scale_to_zero_window": "…or a scale-to-zero window at most",
    "max_lifetime": "Maximum lifetime",
    "quiet_hours": "Quiet hours",
    "working_days": "Working days",
    "schedule": "Off-hours schedule",
}


@dataclass(frozen=True)
class PolicyView:
    who: str | None  # user id
    channel: str | None
    effective: EffectivePolicy
    groups: Sequence[str]
    path: str | None
    loaded_at: str | None
    refused: PolicyError | None
    other_rules: Sequence[str]  # sources of rules in the file that do not apply here


def policy_message(v: PolicyView, *, simulated: bool) -> Message:
    where = kit.channel_link(v.channel) if v.channel else "a direct message"
    title = f"Team policy for {kit.mention(v.who)} in {where}"
    blocks = [kit.section(f":shield: *{title}*")]
    if v.refused is not None:
        blocks += kit.long_text(f":warning: The policy file was changed and *refused*:\n```{v.refused.message}```\n"
                                f"The last good policy stays in force until the file is fixed.")
    if v.path is None:
        blocks.append(kit.section("No team policy is set, so no guardrails apply: anything Fireworks accepts may be "
                                  "asked for (approvals and budgets still apply). Write one in the `[policy]` table "
                                  "of `fwbot.toml` or a file named by `FWBOT_POLICY_FILE`; the README has an example."))
        return Message(text=title, blocks=[*blocks, kit.footer_context(simulated)])
    lines = []
    for s in v.effective.settings():
        if s.is_set:
            lines.append(f"• *{LABELS.get(s.name, s.name)}:* {format_value(s.name, s.value)}  _(`{s.name}`, "
                         f"from {s.source})_")
    if not lines:
        lines.append("Nothing in the policy applies here: no guardrails for this person in this channel.")
    blocks += kit.long_text("\n".join(lines))
    notes = []
    if v.groups:
        notes.append("Their user groups with rules: " + ", ".join(f"<!subteam^{g}>" for g in v.groups))
    if v.other_rules:
        notes.append("Other rules in the file (not applying here): " + ", ".join(v.other_rules))
    notes.append(f"Loaded from `{v.path}` at {v.loaded_at}. A user group's rule beats the channel's, which beats "
                 "the defaults.")
    blocks.append(kit.context(*notes))
    return Message(text=title, blocks=[*blocks, kit.footer_context(simulated)])


@dataclass(frozen=True)
class QuotaLine:
    label: str
    used: int
    limit: int | None
    source: str | None
    scope: str


def quota_message(who: str, lines: Sequence[QuotaLine], mine: Sequence[tuple[str, int]], *,
                  simulated: bool) -> Message:
    title = f"GPU quotas for {kit.mention(who)}"
    out = []
    for q in lines:
        if q.limit is None:
            out.append(f"• *{q.label}* ({q.scope}): {kit.counted(q.used, 'GPU')} at worst case; no quota set.")
        else:
            left = max(q.limit - q.used, 0)
            icon = ":red_circle:" if q.used >= q.limit else ":large_green_circle:"
            out.append(f"{icon} *{q.label}* ({q.scope}): {q.used} of {q.limit} GPUs used, {left} left "
                       f"_(from {q.source})_")
    deployments = ", ".join(f"`{dep}` ({n})" for dep, n in mine[:20]) or "none"
    if len(mine) > 20:
        deployments += f" and {len(mine) - 20} more"
    blocks = [kit.section(f":bar_chart: *{title}*"), *kit.long_text("\n".join(out)),
              kit.context(f"Their live deployments (GPUs at worst case): {deployments}. A quota counts max replicas × "
                          "GPUs per replica, which autoscaling can reach without asking anyone."),
              kit.footer_context(simulated)]
    return Message(text=title, blocks=blocks)
