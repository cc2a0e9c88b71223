"""Block Kit for deployments: the tracking message, cards, lists, models, replies."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from bot.durations import humanize
from bot.names import accelerator_label, short_model
from bot.pricing import format_usd, usd_per_day
from bot.ui import kit
from bot.ui.kit import Message

STATE_EMOJI = {
    "CREATING": ":hourglass_flowing_sand:",
    "UPDATING": ":arrows_counterclockwise:",
    "READY": ":large_green_circle:",
    "FAILED": ":red_circle:",
    "DELETING": ":wastebasket:",
    "DELETED": ":wastebasket:",
}
LIST_PAGE = 20


def _hardware(wire: dict) -> str:
    count = wire.get("acceleratorCount") or 1
    return f"{count} × {accelerator_label(wire.get('acceleratorType'))}"


def _replicas(wire: dict) -> str:
    lo, hi = wire.get("minReplicaCount") or 0, wire.get("maxReplicaCount") or 0
    now = wire.get("replicaCount") or 0
    return f"{now} now (min {lo}, max {hi})"


def _money(usd: float | None) -> str:
    if usd is None:
        return format_usd(None)
    return f"{format_usd(usd)} · {format_usd(usd_per_day(usd), '/day')} worst case"


def deployment_fields(wire: dict, usd: float | None, owner: str | None) -> list[str]:
    policy = wire.get("autoscalingPolicy") or {}
    fields = [
        f"*Model*\n`{short_model(wire.get('baseModel') or '?')}`",
        f"*Hardware*\n{_hardware(wire)}",
        f"*Replicas*\n{_replicas(wire)}",
        f"*Cost*\n{_money(usd)}",
        f"*Owner*\n{kit.mention(owner)}",
    ]
    if policy.get("scaleToZeroWindow") and (wire.get("minReplicaCount") or 0) == 0:
        fields.append(f"*Scale to zero after*\n{humanize(float(str(policy['scaleToZeroWindow']).rstrip('s')))} idle")
    return fields


def tracking_message(
    wire: dict | None,
    *,
    deployment_id: str,
    usd: float | None,
    owner: str | None,
    simulated: bool,
    status_line: str,
    buttons: bool = True,
) -> Message:
    """The one message that tracks a deployment; edited in place as it changes."""
    wire = wire or {}
    state = wire.get("state") or "CREATING"
    title = f"{STATE_EMOJI.get(state, ':grey_question:')} {deployment_id}"
    blocks = [
        kit.header(title),
        kit.section(status_line),
        kit.section(fields=deployment_fields(wire, usd, owner)) if wire else None,
    ]
    if buttons and wire and state not in ("DELETED", "DELETING"):
        blocks.append(
            kit.actions(
                kit.button("Details", "dep_details", deployment_id),
                kit.button(
                    "Delete", "dep_delete", deployment_id, style="danger",
                    confirm_with=kit.confirm("Delete deployment?", f"Delete `{deployment_id}`? It can be undeleted "
                                             "until Fireworks purges it.", ok="Delete"),
                ),
            )
        )
    elif buttons and state == "DELETED":
        blocks.append(kit.actions(kit.button("Undelete", "dep_undelete", deployment_id, style="primary")))
    blocks.append(kit.footer_context(simulated, f"`/fw get {deployment_id}`"))
    return Message(text=f"{deployment_id}: {status_line}", blocks=blocks)


def card(wire: dict, *, usd: float | None, owner: str | None, channel: str | None, simulated: bool,
         extra: Sequence[str] = ()) -> Message:
    dep_id = (wire.get("name") or "?").rsplit("/", 1)[-1]
    state = wire.get("state") or "?"
    lines = [f"*State:* {STATE_EMOJI.get(state, '')} {state}"]
    status = wire.get("status") or {}
    if status.get("message") and state == "FAILED":
        lines.append(f"*Reason:* {kit.escape(status['message'])}")
    if wire.get("displayName"):
        lines.append(f"*Name:* {kit.escape(wire['displayName'])}")
    if wire.get("deleteTime"):
        lines.append(f"*Fireworks deletes it if unused by:* {wire['deleteTime']}")
    if channel:
        lines.append(f"*Tracked in:* {kit.channel_link(channel)}")
    lines += list(extra)
    blocks = [
        kit.header(dep_id),
        kit.section("\n".join(lines)),
        kit.section(fields=deployment_fields(wire, usd, owner)),
        kit.footer_context(simulated),
    ]
    return Message(text=f"{dep_id}: {state}", blocks=blocks)


def deployment_list(rows: Iterable[tuple[dict, float | None, str | None]], *, scope: str, simulated: bool,
                    total: int | None = None) -> Message:
    """One line per deployment; long lists are summarised, never cut mid-way silently."""
    rows = list(rows)
    if not rows:
        text = "You own no deployments." if scope == "mine" else "There are no deployments."
        return Message(text=text, blocks=[kit.section(text + " Start one with `/fw deploy`."),
                                          kit.footer_context(simulated)])
    lines = []
    burn = 0.0
    for wire, usd, owner in rows[:LIST_PAGE]:
        dep_id = (wire.get("name") or "?").rsplit("/", 1)[-1]
        state = wire.get("state") or "?"
        lines.append(
            f"{STATE_EMOJI.get(state, '')} `{dep_id}` · {short_model(wire.get('baseModel') or '?')} · "
            f"{_hardware(wire)} · {kit.counted(wire.get('replicaCount') or 0, 'replica')} · "
            f"{format_usd(usd)} max · {kit.mention(owner)}"
        )
    for wire, usd, _ in rows:
        if usd and (wire.get("replicaCount") or 0) > 0:
            burn += usd * (wire.get("replicaCount") or 0) / max(1, wire.get("maxReplicaCount") or 1)
    header = kit.counted(len(rows), "deployment") + (" you own" if scope == "mine" else "")
    blocks = [kit.section(f"*{header}* · running now: {format_usd(burn)}")]
    for i in range(0, len(lines), 10):
        blocks.append(kit.section("\n".join(lines[i:i + 10])))
    if len(rows) > LIST_PAGE:
        blocks.append(kit.context(f"Showing {LIST_PAGE} of {len(rows)}. Use `/fw get <id>` for one, "
                                  "or the App Home tab for all of them."))
    blocks.append(kit.footer_context(simulated))
    return Message(text=header, blocks=blocks)


def models_list(models: Sequence[dict], query: str | None, *, simulated: bool) -> Message:
    if query:
        q = query.lower()
        models = [m for m in models if q in (m.get("name", "") + m.get("displayName", "")).lower()]
    if not models:
        return Message(text="No models match.", blocks=[kit.section(f"No deployable model matches `{query}`.")])
    lines = []
    for m in models[:40]:
        details = m.get("baseModelDetails") or {}
        params = details.get("parameterCount")
        size = f"{int(params) / 1e9:.0f}B" if params and str(params).isdigit() else "?"
        ctx = m.get("contextLength")
        lora = "LoRA ✓" if m.get("supportsLora") else "no LoRA"
        lines.append(f"`{short_model(m['name'])}` · {size} params · {ctx or '?'} ctx · {lora}")
    blocks = [kit.section(f"*{len(models)} deployable base models*" + (f" matching `{query}`" if query else ""))]
    for i in range(0, len(lines), 15):
        blocks.append(kit.section("\n".join(lines[i:i + 15])))
    blocks.append(kit.context("Deploy one with `/fw deploy <model>`, or `/fw deploy` for a form."))
    blocks.append(kit.footer_context(simulated))
    return Message(text=f"{len(models)} models", blocks=blocks)


NOT_CREATED = (":x: Not created: fwbot stopped before Fireworks confirmed the create, and Fireworks does not "
               "have it. Nothing was created and nothing costs money; run the command again.")


def plain(text: str, *, simulated: bool = False) -> Message:
    return Message(text=text, blocks=[kit.section(text), kit.footer_context(simulated)] if simulated
                   else [kit.section(text)])


def problem(message: str, usage: str | None = None) -> Message:
    """A user error: names the problem and shows the usage line."""
    text = f":warning: {message}"
    blocks = [kit.section(text)]
    if usage:
        blocks.append(kit.context(f"Usage: `{usage}`"))
    return Message(text=text + (f"\nUsage: {usage}" if usage else ""), blocks=blocks)


def ready_line(ready_at: datetime | None, create_time: datetime | None) -> str:
    if ready_at and create_time:
        return f":white_check_mark: READY in {humanize((ready_at - create_time).total_seconds())}"
    return ":white_check_mark: READY"


def dry_run(summary_pairs: Sequence[tuple[str, str]], usd: float | None, what: str, *, simulated: bool) -> Message:
    lines = "\n".join(f"*{k}:* {v}" for k, v in summary_pairs)
    text = f":mag: Dry run — {what}. Fireworks validated it; nothing was changed."
    return Message(text=text, blocks=[kit.section(text), kit.section(lines),
                                      kit.section(f"*Worst case:* {_money(usd)}"),
                                      kit.footer_context(simulated)])
