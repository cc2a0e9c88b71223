"""What the deploy form offers and says under the team policy in force for the person opening it,
in that channel: only the models, accelerators, regions and shapes the policy allows, the limits
as hints naming each rule's source, the lifetime that will apply, and a policy refusal as a
sentence on the field to blame.

Pure: the caller passes the effective policy (``PolicyBook.for_person``); ``None`` or a policy
that sets nothing leaves the form as it is without one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.core.durations import format_go_duration, humanize
from bot.core.names import accelerator_label
from bot.core.policy import EffectivePolicy, Violation
from bot.core.pricing import format_usd
from bot.core.requests import DEFAULT_SCALE_TO_ZERO_WINDOW_S
from bot.ui import kit

# A field error must stay short enough to read under the field; the rule and its source are kept.
FIELD_ERROR_MAX = 300


@dataclass(frozen=True)
class FormPolicy:
    """The policy as the deploy form applies it; ``effective`` ``None`` means no guardrails."""

    effective: EffectivePolicy | None

    @property
    def applies(self) -> bool:
        """Whether the policy sets anything the form shows or checks."""
        e = self.effective
        return e is not None and any(s.is_set for s in (
            e.models, e.accelerators, e.regions, e.max_gpus_per_deployment, e.max_replicas,
            e.max_usd_per_hour_without_approval, e.require_idle_policy, e.max_lifetime))

    # -- what is offered ------------------------------------------------------------------------
    def models(self, catalog: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """The catalog's models the ``models`` rule allows (full names, ``accounts/<a>/models/<id>``)."""
        rule = self.effective.models.value if self.effective else None
        return [m for m in catalog if rule is None or rule.allows(str(m.get("name") or ""))]

    def accelerators(self, offered: Iterable[str]) -> list[str]:
        """The offered accelerator types (API enums) the ``accelerators`` rule allows."""
        rule = self.effective.accelerators.value if self.effective else None
        return [a for a in offered if rule is None or rule.allows(a)]

    def regions(self, regions: Iterable[str]) -> list[str] | None:
        """The regions the ``regions`` rule allows; ``None`` when it sets none, so the default
        multi-region placement is allowed too (a region list rules it out)."""
        rule = self.effective.regions.value if self.effective else None
        if rule is None:
            return None
        return [r for r in regions if rule.allows(r.upper().replace("-", "_"))]

    def shapes(self, shapes: Iterable[Mapping[str, Any]]) -> tuple[list[Mapping[str, Any]], int]:
        """The validated shapes whose hardware the policy allows (accelerator type, and no more
        GPUs per replica than a whole deployment may have), and how many were hidden."""
        kept, hidden = [], 0
        e = self.effective
        for sh in shapes:
            acc = sh.get("acceleratorType")
            count = int(sh.get("acceleratorCount") or 1)
            if e is not None and ((e.accelerators.value is not None and (not acc or not e.accelerators.value.allows(acc)))
                                  or (e.max_gpus_per_deployment.value is not None
                                      and count > e.max_gpus_per_deployment.value)):
                hidden += 1
                continue
            kept.append(sh)
        return kept, hidden

    # -- what the form says ---------------------------------------------------------------------
    def nothing_allowed(self, *, models: Sequence[Any], accelerators: Sequence[str],
                        regions: Sequence[str] | None, offered_accelerators: Sequence[str]) -> str | None:
        """Why the form has nothing to offer (every reason, each with its rule and source), or
        ``None`` when there is something to deploy."""
        e = self.effective
        if e is None:
            return None
        reasons = []
        if not models and e.models.value is not None:
            outside = [p for part in e.models.value.parts for p in part
                       if not p.startswith("accounts/fireworks/")]
            beyond = (" Models outside the public catalog can still be deployed by name: "
                      "`/fw deploy accounts/<account>/models/<id>`." if outside else "")
            reasons.append(f"no model in the catalog is allowed: models `{kit.escape(str(e.models.value))}` "
                           f"({e.models.cite()}).{beyond}")
        if not accelerators and e.accelerators.value is not None:
            offered = ", ".join(accelerator_label(a) for a in offered_accelerators) or "none"
            reasons.append(f"no accelerator fwbot offers ({offered}) is allowed: accelerators "
                           f"`{kit.escape(str(e.accelerators.value))}` ({e.accelerators.cite()}).")
        if regions is not None and not regions and e.regions.value is not None:
            reasons.append(f"no region is allowed: regions `{kit.escape(str(e.regions.value))}` "
                           f"({e.regions.cite()}), and the default multi-region placement is outside any "
                           "region list.")
        if not reasons:
            return None
        lines = [":no_entry: *The team policy leaves nothing to deploy from this form for you here:*"]
        lines += [f"• {r[:1].upper()}{r[1:]}" for r in reasons]
        lines.append("`/fw policy` shows the rules in force and where each comes from; whoever keeps the policy "
                     "file can change them.")
        return "\n".join(lines)

    def model_hint(self) -> str | None:
        e = self.effective
        if e is None or e.models.value is None:
            return None
        return f"Only the models the team policy allows here: {e.models.value} ({e.models.cite()})."

    def accelerator_hint(self) -> str | None:
        e = self.effective
        if e is None or e.accelerators.value is None:
            return None
        return f"Only the accelerators the team policy allows here: {e.accelerators.value} ({e.accelerators.cite()})."

    def region_hint(self) -> str | None:
        e = self.effective
        if e is None or e.regions.value is None:
            return None
        return (f"The team policy needs a region here: {e.regions.value} ({e.regions.cite()}); the default "
                "multi-region placement is not allowed.")

    def max_replicas_hint(self) -> str | None:
        """The size limits: max replicas, and GPUs in all (replicas × GPUs per replica)."""
        e = self.effective
        if e is None:
            return None
        parts = []
        if e.max_replicas.value is not None:
            parts.append(f"at most {kit.counted(e.max_replicas.value, 'replica')} ({e.max_replicas.cite()})")
        if e.max_gpus_per_deployment.value is not None:
            parts.append(f"at most {kit.counted(e.max_gpus_per_deployment.value, 'GPU')} in all, max replicas × "
                         f"GPUs per replica ({e.max_gpus_per_deployment.cite()})")
        if not parts:
            return None
        return "Team policy: " + "; ".join(parts) + "."

    def requires_idle_policy(self) -> bool:
        return bool(self.effective and self.effective.require_idle_policy.value)

    def idle_hint(self, field: str) -> str | None:
        """The hint of *Delete if unused for* (``unused``) or *Scale to zero after idle* (``stz``).

        Fireworks scales to zero only with min replicas 0 (after the window, or its default hour);
        above 0 only the unused auto-delete retires an idle deployment (``check_request``'s rule).
        """
        e = self.effective
        if e is None or not e.require_idle_policy.value:
            return None
        required = e.require_idle_policy.cite()
        if field == "unused":
            bound = e.max_unused_auto_delete
            at_most = f", at most {format_go_duration(bound.value)} ({bound.cite()})" if bound.value is not None else ""
            return (f"Team policy: needed when min replicas is above 0, which never scales to zero{at_most} "
                    f"({required}).")
        bound = e.max_scale_to_zero_window
        if bound.value is None:
            return None
        default = (f"empty means Fireworks' default, {format_go_duration(DEFAULT_SCALE_TO_ZERO_WINDOW_S)}"
                   + (", which is longer: give one" if bound.value < DEFAULT_SCALE_TO_ZERO_WINDOW_S else ""))
        return (f"Team policy: with min replicas 0, at most {format_go_duration(bound.value)} ({bound.cite()}); {default} "
                f"({required}).")

    def min_replicas_hint(self) -> str | None:
        e = self.effective
        if e is None or not e.require_idle_policy.value:
            return None
        return ("Above 0 it never scales to zero, so the team policy needs a Delete if unused for time "
                f"({e.require_idle_policy.cite()}).")

    def approval_line(self, usd_per_hour: float | None) -> str | None:
        """Where the policy puts the approval threshold, and whether this worst case is above it."""
        e = self.effective
        if e is None or e.max_usd_per_hour_without_approval.value is None:
            return None
        setting = e.max_usd_per_hour_without_approval
        line = (f"Above {format_usd(setting.value)} worst case a deploy waits for an approver "
                f"(`{setting.name}`, from {setting.source})")
        if usd_per_hour is None:
            return line + "; one fwbot cannot price does too."
        if usd_per_hour > setting.value:
            return line + ": *this one will*."
        return line + "."

    def lifetime_line(self) -> str | None:
        """The lifetime that will apply to what the form creates."""
        e = self.effective
        if e is None or e.max_lifetime.value is None:
            return None
        return (f":hourglass: *Lifetime:* deleted after {lifetime_words(e.max_lifetime.value)} unless someone "
                f"renews it (`max_lifetime`, from {e.max_lifetime.source}); fwbot warns before.")


    def schedule_line(self, zone: str) -> str | None:
        """The off-hours schedule the policy gives what the form creates (in its owner's ``zone``)."""
        e = self.effective
        if e is None or e.schedule.value is None:
            return None
        return (f":crescent_moon: *Schedule:* {kit.escape(e.schedule.value.describe(zone))} (`schedule`, from "
                f"{e.schedule.source}); `/fw schedule <id>` sets one of its own.")


def lifetime_words(seconds: float) -> str:
    """``14 days``, ``1 day``, ``36 hours``; other lengths as ``humanize`` writes them."""
    s = int(round(seconds))
    if s % 86400 == 0:
        return kit.counted(s // 86400, "day")
    if s % 3600 == 0:
        return kit.counted(s // 3600, "hour")
    return humanize(s)


def field_error(violations: Sequence[Violation]) -> str:
    """The policy's refusal of one field: each broken rule's sentence, which names the rule and its
    source (kept even when the sentence is cut to fit under the field)."""
    out = []
    for v in violations:
        text = v.message[:1].upper() + v.message[1:]
        tail = f" ({v.rule}, from {v.source})"
        if len(text) > FIELD_ERROR_MAX:
            text = kit.clip(text, FIELD_ERROR_MAX - len(tail)) + tail
        out.append(text)
    return kit.clip(" ".join(out), 2 * FIELD_ERROR_MAX)
