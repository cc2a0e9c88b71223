"""Block Kit for deployments: the tracking message, cards, lists, models, replies."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from bot.core.clock import parse_iso
from bot.core.durations import humanize, parse_api_duration
from bot.core.lifecycle import Timer
from bot.core.names import accelerator_label, closest_models, short_model
from bot.core.pricing import SINGLE_REGION_MULTIPLIER, format_usd, is_single_region, usd_per_day
from bot.core.requests import format_context_length, format_speculation
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


SINGLE_REGION_NOTE = f"single-region placement ×{SINGLE_REGION_MULTIPLIER:g}"


def _money(usd: float | None, single_region: bool = False) -> str:
    if usd is None:
        return format_usd(None)
    note = f" ({SINGLE_REGION_NOTE})" if single_region else ""
    return f"{format_usd(usd)} · {format_usd(usd_per_day(usd), '/day')} worst case{note}"


def placement_text(wire: dict) -> str:
    """Where a deployment may run, as its ``placement`` says (global when it says nothing)."""
    placement = wire.get("placement") or {}
    regions = [placement["region"]] if placement.get("region") else list(placement.get("regions") or [])
    if regions:
        return ", ".join(f"`{r}`" for r in regions) + f" only ({SINGLE_REGION_NOTE})"
    multi = placement.get("multiRegion")
    if multi and multi not in ("GLOBAL", "MULTI_REGION_UNSPECIFIED"):
        return f"{kit.escape(str(multi))} (multi-region)"
    return "global (multi-region)"


def _precision(wire: dict) -> str | None:
    value = wire.get("precision")
    return str(value) if value and value != "PRECISION_UNSPECIFIED" else None


def _speculation(wire: dict) -> str:
    return format_speculation(wire.get("draftModel"), int(wire.get("draftTokenCount") or 0),
                              int(wire.get("ngramSpeculationLength") or 0), bool(wire.get("enableMtp")))


def serving_lines(wire: dict) -> list[str]:
    """How it serves, for ``/fw get``: precision, placement, context, speculative decoding, tuning."""
    lines = []
    if wire.get("description"):
        lines.append(f"*Description:* {kit.escape(kit.clip(str(wire['description']), 1000))}")
    lines.append(f"*Precision:* {_precision(wire) or 'chosen by Fireworks'}")
    lines.append(f"*Placement:* {placement_text(wire)}")
    lines.append(f"*Context length:* {format_context_length(int(wire.get('maxContextLength') or 0))}")
    lines.append(f"*Speculative decoding:* {_speculation(wire)}")
    if (wire.get("autoTune") or {}).get("longPrompt"):
        lines.append("*Long-prompt tuning:* on")
    if wire.get("enableSessionAffinity"):
        lines.append("*Session affinity:* on (sticky routing by `user`)")
    return lines


def serving_summary(wire: dict) -> str:
    """The same, on one line for the tracking message: what was asked beyond the defaults."""
    parts = []
    if _precision(wire):
        parts.append(str(_precision(wire)))
    if is_single_region(wire.get("placement")):
        parts.append(placement_text(wire))
    if wire.get("maxContextLength"):
        parts.append(f"context {format_context_length(int(wire['maxContextLength']))}")
    parts.append(f"speculative decoding: {_speculation(wire)}")
    if (wire.get("autoTune") or {}).get("longPrompt"):
        parts.append("long-prompt tuning")
    if wire.get("enableSessionAffinity"):
        parts.append("session affinity")
    return " · ".join(parts)


def deployment_fields(wire: dict, usd: float | None, owner: str | None) -> list[str]:
    policy = wire.get("autoscalingPolicy") or {}
    single = is_single_region(wire.get("placement"))
    fields = [
        f"*Model*\n`{short_model(wire.get('baseModel') or '?')}`",
        f"*Hardware*\n{_hardware(wire)}",
        f"*Replicas*\n{_replicas(wire)}",
        f"*Cost*\n{_money(usd, single)}" if wire.get("state") not in ("DELETED", "DELETING")
        else f"*Cost*\nnothing while deleted; {_money(usd, single)} if undeleted",
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
    schedule_line: str | None = None,
) -> Message:
    """The one message that tracks a deployment; edited in place as it changes. ``schedule_line``:
    its off-hours schedule with the next transition, when it has one."""
    wire = wire or {}
    state = wire.get("state") or "CREATING"
    title = f"{STATE_EMOJI.get(state, ':grey_question:')} {deployment_id}"
    blocks = [
        kit.header(title),
        kit.section(status_line),
        kit.section(fields=deployment_fields(wire, usd, owner)) if wire else None,
    ]
    if wire:
        described = (f"_{kit.escape(kit.clip(str(wire['description']), 300))}_\n" if wire.get("description")
                     else "")
        blocks.append(kit.context(described + serving_summary(wire)))
    if schedule_line and state not in ("DELETED", "DELETING"):
        blocks.append(kit.context(schedule_line))
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


def _wire_time(wire: dict, key: str) -> datetime | None:
    return parse_iso(wire.get(key) or None)


def card(wire: dict, *, usd: float | None, owner: str | None, channel: str | None, simulated: bool,
         extra: Sequence[str] = (), timers: Sequence[Timer] | None = None, now: datetime | None = None,
         tz: str | None = None, ready_at: datetime | None = None, unused_delete_s: float | None = None) -> Message:
    """``/fw get``: the deployment as Fireworks shows it, times in the reader's timezone (``tz``)
    with how far off they are, and its idle timers as the lifecycle engine computes them
    (``timers``; ``None`` leaves the section out)."""
    dep_id = (wire.get("name") or "?").rsplit("/", 1)[-1]
    state = wire.get("state") or "?"
    when = now or datetime.now(UTC)

    def at(t: datetime) -> str:
        return kit.people_time(t, tz, when)

    state_line = f"*State:* {STATE_EMOJI.get(state, '')} {state}"
    if state == "READY" and ready_at is not None:
        state_line += f" since {at(ready_at)}"
    lines = [state_line]
    status = wire.get("status") or {}
    if status.get("message") and state == "FAILED":
        lines.append(f"*Reason:* {kit.escape(status['message'])}")
    if wire.get("displayName"):
        lines.append(f"*Name:* {kit.escape(wire['displayName'])}")
    lines += serving_lines(wire)
    created = _wire_time(wire, "createTime")
    if created is not None:
        lines.append(f"*Created:* {at(created)}")
    if state in ("DELETED", "DELETING"):
        deleted, purge = _wire_time(wire, "deleteTime"), _wire_time(wire, "purgeTime")
        if deleted is not None:
            lines.append(f"*Deleted:* {at(deleted)}")
        if purge is not None:
            lines.append(f"*Fireworks purges it for good:* {at(purge)}; until then `/fw undelete {dep_id}` "
                         "brings it back")
        else:
            lines.append(f"`/fw undelete {dep_id}` brings it back until Fireworks purges it")
    if channel:
        lines.append(f"*Tracked in:* {kit.channel_link(channel)}")
    lines += list(extra)
    blocks = [
        kit.header(dep_id),
        kit.section("\n".join(lines)),
        kit.section(fields=deployment_fields(wire, usd, owner)),
    ]
    if timers is not None:
        blocks.append(kit.section(timers_text(wire, timers, now=when, tz=tz, unused_delete_s=unused_delete_s)))
    blocks.append(kit.footer_context(simulated))
    return Message(text=f"{dep_id}: {state}", blocks=blocks)


_TIMER_NAMES = {"scale_to_zero": "Scale to zero", "auto_delete": "Auto-delete", "idle_paying": "Idle but paying",
                "schedule_down": "Scheduled scale to zero", "max_lifetime": "Maximum lifetime"}


def _timer_why(t: Timer, wire: dict) -> str:
    """What the timer is and who acts on it."""
    if t.kind == "scale_to_zero":
        window = (wire.get("autoscalingPolicy") or {}).get("scaleToZeroWindow")
        seconds = parse_api_duration(window) if window else None
        after = humanize(seconds) if seconds is not None else "its scale-to-zero window"
        return (f"Fireworks drops it to 0 replicas after {after} without requests; the next request then waits "
                "for a cold start")
    if t.kind == "auto_delete":
        if t.source == "api_delete_time":
            return "Fireworks' own schedule (its `deleteTime`); fwbot cannot move it, traffic or keeping it warm can"
        if t.source == "platform_policy":
            return "Fireworks deletes deployments with min replicas 0 after 7 days without traffic"
        snoozed = "; postponed by a keep-warm or snooze" if t.snoozed else ""
        return f"fwbot soft-deletes it when still unused then (undo with `/fw undelete`), warning first{snoozed}"
    if t.kind == "schedule_down":
        moved = "; postponed by a keep-warm or snooze" if t.snoozed else ""
        return f"fwbot sets min replicas 0 and scales it to 0 on its schedule (`/fw schedule`){moved}"
    if t.kind == "max_lifetime":
        limit = humanize(t.limit_s) if t.limit_s else "its limit"
        rule = f" ({kit.escape(t.rule)})" if t.rule else ""
        since = f"its last renewal by {kit.mention(t.renewed_by)}" if t.renewed_by else "its creation"
        return (f"fwbot deletes it {limit} after {since}{rule}, whatever the traffic, unless someone renews it "
                "from the warning; keep-warm and snooze do not postpone it")
    spent = "" if t.usd_idle is None else f", {format_usd(t.usd_idle, '')} spent idle so far"
    snoozed = "; postponed by a keep-warm or snooze" if t.snoozed else ""
    return (f"fwbot reports it once per idle stretch: its min replicas keep costing {format_usd(t.usd_per_hour)}"
            f"{spent}{snoozed}")


def timers_text(wire: dict, timers: Sequence[Timer], *, now: datetime, tz: str | None,
                unused_delete_s: float | None = None) -> str:
    """The *Idle timers* section of a card: each timer with its due time (in ``tz`` and relative)
    and what happens then, or why there are none."""
    lines = ["*Idle timers*"]
    state = wire.get("state") or "?"
    # A lifetime counts from creation and a schedule from when it was set, not from idleness.
    idle = [t for t in timers if t.kind not in ("max_lifetime", "schedule_down")]
    if idle:
        lines.append(f"Idle since {kit.people_time(min(t.anchor for t in idle), tz, now)} "
                     "(its last request, or when it came up)")
    if timers:
        for t in sorted(timers, key=lambda t: t.due):
            lines.append(f"• *{_TIMER_NAMES[t.kind]}:* {kit.people_time(t.due, tz, now)} — {_timer_why(t, wire)}")
    elif state in ("DELETED", "DELETING"):
        lines.append("None: it is deleted, so nothing idles and nothing more is deleted.")
    elif state not in ("READY", "UPDATING", "FAILED"):
        lines.append(f"None while it is {kit.escape(state)}; they start once it is READY.")
    else:
        lines.append("None running: no replicas idle, and no auto-delete is scheduled.")
    if unused_delete_s == 0 and state not in ("DELETED", "DELETING"):
        lines.append("• fwbot auto-delete is *off* for it (`--unused-auto-delete-duration 0`)")
    return "\n".join(lines)


DELETE_ANYWAY = "delete_anyway"  # the button offered when Fireworks refuses a delete because of traffic
LIST_NEXT = "list_next"  # the Next page button of /fw list


def _list_line(wire: dict, usd: float | None, owner: str | None) -> str:
    dep_id = (wire.get("name") or "?").rsplit("/", 1)[-1]
    state = wire.get("state") or "?"
    head = (f"{STATE_EMOJI.get(state, '')} `{dep_id}` · {short_model(wire.get('baseModel') or '?')} · "
            f"{_hardware(wire)} · ")
    if state in ("DELETED", "DELETING"):
        return head + f"*{'deleted' if state == 'DELETED' else 'deleting'}*, costs nothing · {kit.mention(owner)}"
    return head + (f"{kit.counted(wire.get('replicaCount') or 0, 'replica')} · "
                   f"{format_usd(usd)} max · {kit.mention(owner)}")


def deployment_list(rows: Iterable[tuple[dict, float | None, str | None]], *, scope: str, simulated: bool,
                    total: int | None = None, start: int = 0, filter: str | None = None,
                    order_by: str | None = None, show_deleted: bool = False, next_page: dict | None = None,
                    more: bool = False) -> Message:
    """One page of ``/fw list``: one line per deployment (deleted ones marked), the count of all
    that match (``total``; ``None`` when Fireworks does not say), where this page starts
    (``start`` rows came before it) and, when there are more (``more``), a *Next page* button
    carrying ``next_page`` (or a note saying why there is none). Never cut silently."""
    rows = list(rows)
    matching = f" matching `{kit.escape(filter)}`" if filter else ""
    if not rows and start == 0:
        if filter:
            text = f"No deployments{' you own' if scope == 'mine' else ''}{matching}."
        else:
            text = "You own no deployments." if scope == "mine" else "There are no deployments."
        if filter and not show_deleted:
            text += " (`--show-deleted` includes deleted ones.)"
        return Message(text=text, blocks=[kit.section(text + " Start one with `/fw deploy`."),
                                          kit.footer_context(simulated)])
    shown = rows if next_page is not None or more else rows[:LIST_PAGE]
    lines = [_list_line(wire, usd, owner) for wire, usd, owner in shown]
    burn = 0.0
    for wire, usd, _ in shown:
        if usd and (wire.get("replicaCount") or 0) > 0 and wire.get("state") not in ("DELETED", "DELETING"):
            burn += usd * (wire.get("replicaCount") or 0) / max(1, wire.get("maxReplicaCount") or 1)
    count = total if total is not None else (None if more else start + len(rows))
    noun = kit.counted(count, "deployment") if count is not None else "Deployments"
    header = noun + (" you own" if scope == "mine" else "") + matching
    if show_deleted:
        header += ", deleted ones included"
    paged = start > 0 or more or len(rows) > LIST_PAGE
    running = f"running now{' (these ' + str(len(shown)) + ')' if paged else ''}: {format_usd(burn)}"
    blocks = [kit.section(f"*{header}* · {running}")]
    for i in range(0, len(lines), 10):
        blocks.append(kit.section("\n".join(lines[i:i + 10])))
    notes = []
    if paged:
        span = f"{start + 1}–{start + len(shown)}" if shown else "none"
        notes.append(f"Showing {span}" + (f" of {count}" if count is not None else "") + ".")
    if order_by:
        notes.append(f"Sorted by `{kit.escape(order_by)}`.")
    if len(rows) > len(shown):  # a caller that gave more rows than a page: say what is not shown
        notes.append("Use `/fw get <id>` for one, or the App Home tab for all of them.")
    if more and next_page is None:
        notes.append("There are more, but where the next page starts does not fit in a Slack button; narrow "
                     "the list with `--filter`.")
    if notes:
        blocks.append(kit.context(" ".join(notes)))
    if more and next_page is not None:
        blocks.append(kit.actions(kit.button("Next page", LIST_NEXT, next_page)))
    blocks.append(kit.footer_context(simulated))
    return Message(text=header, blocks=blocks)


def in_use(text: str, *, deployment_id: str, hard: bool, fireworks_message: str, simulated: bool) -> Message:
    """A delete Fireworks refused because the deployment is in use: that, in one sentence, and a
    *Delete anyway* button (Slack asks once more before it is sent) that deletes skipping the check."""
    undo = " It cannot be undone." if hard else " `/fw undelete` brings it back until Fireworks purges it."
    return Message(text=f":warning: {text}", blocks=[
        kit.section(f":warning: {text} *Delete anyway* deletes it even so (firectl's `--ignore-checks`); "
                    "requests to it will fail."),
        kit.context(f"Fireworks says: {kit.escape(kit.clip(fireworks_message, 500))}"),
        kit.actions(
            kit.button("Delete anyway", DELETE_ANYWAY, {"d": deployment_id, "h": int(hard)}, style="danger",
                       confirm_with=kit.confirm("Delete anyway?", f"Delete `{deployment_id}` although it is "
                                                f"serving traffic? Requests to it will fail.{undo}",
                                                ok="Delete anyway")),
            kit.button("Keep it", "confirm_cancel", "cancel"),
        ),
        kit.footer_context(simulated),
    ])


def models_list(models: Sequence[dict], query: str | None, *, simulated: bool) -> Message:
    catalog = list(models)
    if query:
        q = query.lower()
        models = [m for m in models if q in (m.get("name", "") + m.get("displayName", "")).lower()]
    if not models:
        close = closest_models(query or "", [m.get("name", "") for m in catalog]) if query else []
        hint = (" Did you mean " + " or ".join(f"`{c}`" for c in close) + "?") if close else ""
        text = f"No deployable model matches `{kit.escape(query or '')}`.{hint}"
        return Message(text=text, blocks=[kit.section(text + " `/fw models` lists them all.")])
    lines = []
    for m in models[:40]:
        details = m.get("baseModelDetails") or {}
        params = details.get("parameterCount")
        size = f"{int(params) / 1e9:.0f}B" if params and str(params).isdigit() else "?"
        ctx = m.get("contextLength")
        lora = "LoRA ✓" if m.get("supportsLora") else "no LoRA"
        lines.append(f"`{short_model(m['name'])}` · {size} params · {ctx or '?'} ctx · {lora}")
    shown = "" if len(models) <= 40 else " (the first 40 shown; narrow it with `/fw models <words>`)"
    blocks = [kit.section(f"*{kit.counted(len(models), 'deployable base model')}*"
                          + (f" matching `{kit.escape(query)}`" if query else "") + shown)]
    for i in range(0, len(lines), 15):
        blocks.append(kit.section("\n".join(lines[i:i + 15])))
    blocks.append(kit.context("Deploy one with `/fw deploy <model>`, or `/fw deploy` for a form."))
    blocks.append(kit.footer_context(simulated))
    return Message(text=kit.counted(len(models), "model"), blocks=blocks)


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


def latest_start(create_time: datetime | None, *restarts: datetime | None) -> datetime | None:
    """When a deployment last began coming up: its creation, or a later undelete (``restarts``)."""
    times = [t for t in (create_time, *restarts) if t is not None]
    return max(times) if times else None


def ready_line(ready_at: datetime | None, started_at: datetime | None) -> str:
    """``READY in 1m1s``, counted from ``started_at``, the latest start (:func:`latest_start`): after
    an undelete that is the undelete, not the first creation. No duration when it cannot be told."""
    if ready_at and started_at and ready_at >= started_at:
        return f":white_check_mark: READY in {humanize((ready_at - started_at).total_seconds())}"
    return ":white_check_mark: READY"


def dry_run(summary_pairs: Sequence[tuple[str, str]], usd: float | None, what: str, *, simulated: bool,
            single_region: bool = False) -> Message:
    lines = "\n".join(f"*{k}:* {v}" for k, v in summary_pairs)
    text = f":mag: Dry run — {what}. Fireworks validated it; nothing was changed."
    return Message(text=text, blocks=[kit.section(text), kit.section(lines),
                                      kit.section(f"*Worst case:* {_money(usd, single_region)}"),
                                      kit.footer_context(simulated)])
