"""Block Kit for idle timers: warnings, digests, resolved edits, auto-delete notices, App Home rows.

Every button carries only the opaque token the caller stored for the warning (or, on the App
Home, the deployment id), never the deployment spec; handlers look everything else up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_sdk.models.blocks import Block

from bot.durations import humanize
from bot.lifecycle import (
    DeploymentLike,
    Timer,
    TimerWarning,
    WarningKey,
    current_usd_per_hour,
)
from bot.pricing import format_usd
from bot.ui import kit
from bot.ui.deployments import STATE_EMOJI
from bot.ui.kit import Message

# A digest keeps every item actionable only up to here; the rest are listed as text so the
# message stays far below Slack's 50-block limit.
DIGEST_MAX_ITEMS = 12
COLD_START = "a cold start of up to a few minutes (the first request gets a 503 while it scales up)"

TIMER_LABEL = {
    "scale_to_zero": "scales to zero",
    "auto_delete": "auto-delete",
    "idle_paying": "idle-paying report",
}


# -- time and money text ----------------------------------------------------------------------
def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_time(when: datetime, tz: str | None, now: datetime) -> str:
    """``Tue 14:05 (Europe/Berlin)``; with the date when it is not within the coming week."""
    zone = _zone(tz)
    local = when.astimezone(zone)
    far = abs((when - now).total_seconds()) >= 6 * 86400
    text = f"{local:%a} {local.day} {local:%b %H:%M}" if far else f"{local:%a %H:%M}"
    return f"{text} ({zone.key})"


def when_text(when: datetime, tz: str | None, now: datetime) -> str:
    """The owner's local time as text, then Slack's own rendering in each reader's timezone."""
    fallback = when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{local_time(when, tz, now)} · {kit.slack_date(when, fallback=fallback)}"


def _usd(amount: float | None) -> str:
    return format_usd(amount, "")


def _name(dep: DeploymentLike) -> str:
    return f"`{kit.escape(dep.id)}`"


def _ago(then: datetime, now: datetime) -> str:
    return humanize(max(0.0, (now - then).total_seconds()))


# -- warnings ---------------------------------------------------------------------------------
def warning_text(w: TimerWarning, dep: DeploymentLike, *, owner_tz: str | None) -> str:
    """The mrkdwn body of one warning: who, what happens, when, and the money at stake."""
    t, now = w.timer, w.decided_at
    who = kit.mention(dep.owner)
    name = _name(dep)
    when = when_text(t.due, owner_tz, now)
    idle = f"no requests since {_ago(t.anchor, now)} ago"
    if t.kind == "scale_to_zero":
        saved = "saves nothing" if t.usd_per_hour == 0 else f"saves {format_usd(t.usd_per_hour)}"
        return (
            f":hourglass: {who} {name} will *scale to zero* in *{humanize(w.remaining_s)}* — {when} "
            f"({idle}).\nThe next request after that waits for {COLD_START}. Scaling to zero {saved}."
        )
    if t.kind == "auto_delete":
        return _auto_delete_text(w, dep, who, name, when, idle)
    return _idle_paying_text(w, dep, who, name)


def _auto_delete_text(w: TimerWarning, dep: DeploymentLike, who: str, name: str, when: str, idle: str) -> str:
    t = w.timer
    running = (
        "It is scaled to zero and costs nothing right now"
        if not t.usd_per_hour
        else f"It costs {format_usd(t.usd_per_hour)} right now"
    )
    if t.source == "bot_policy":
        if w.remaining_s > 0:
            head = f":wastebasket: {who} fwbot will *delete* {name} in *{humanize(w.remaining_s)}* — {when}"
        else:
            head = (
                f":wastebasket: {who} {name} is past its unused limit ({when}); fwbot *deletes* it in "
                f"*{humanize(w.lead_s)}* unless you act"
            )
        snoozed = " (snoozed until then)" if t.snoozed else ""
        return (
            f"{head}{snoozed} ({idle}). {running}.\n"
            "It is a soft delete: it can be undeleted, but it comes back with " + COLD_START + "."
        )
    if t.source == "api_delete_time":
        platform = f"Fireworks will *delete* {name} in *{humanize(w.remaining_s)}* — {when} (its `deleteTime`)"
    else:
        platform = (
            f"Fireworks deletes deployments with min replicas 0 after 7 days without traffic: {name} "
            f"goes in *{humanize(w.remaining_s)}* — {when}"
        )
    return (
        f":wastebasket: {who} {platform} ({idle}). {running}.\n"
        "Snooze only postpones fwbot's own deletion — it cannot move the platform's schedule; "
        "keep it warm or send it traffic to keep it."
    )


def _idle_paying_text(w: TimerWarning, dep: DeploymentLike, who: str, name: str) -> str:
    t, now = w.timer, w.decided_at
    replicas = dep.replicas if dep.replicas is not None else dep.min_replicas
    return (
        f":money_with_wings: {who} {name} has had *no traffic for {_ago(t.anchor, now)}* but keeps "
        f"{replicas} replica(s) running (min {dep.min_replicas}): *{_usd(t.usd_idle)}* spent while idle, "
        f"*{format_usd(t.usd_per_day, '/day')}* from now on.\n"
        "Scale it to zero (or lower min replicas to 0) to stop paying for idle GPUs."
    )


def _warning_buttons(w: TimerWarning, dep: DeploymentLike, token: str) -> Block | None:
    t = w.timer
    replicas = dep.replicas if dep.replicas is not None else (dep.min_replicas or 0)
    keep = t.kind != "idle_paying"
    snooze = t.kind != "scale_to_zero"
    return kit.actions(
        kit.button("Keep warm 1h", "lc_keep_warm_1h", token, style="primary") if keep else None,
        kit.button("Keep warm 4h", "lc_keep_warm_4h", token) if keep else None,
        kit.button("Snooze", "lc_snooze", token) if snooze else None,
        kit.button(
            "Scale to zero now",
            "lc_scale_to_zero",
            token,
            confirm_with=kit.confirm(
                "Scale to zero?",
                f"Scale {_name(dep)} to zero replicas now? The next request waits for {COLD_START}.",
                ok="Scale to zero",
            ),
        )
        if replicas > 0
        else None,
        kit.button(
            "Delete now",
            "lc_delete",
            token,
            style="danger",
            confirm_with=kit.confirm(
                "Delete deployment?",
                f"Delete {_name(dep)} now? It is a soft delete: `/fw undelete {kit.escape(dep.id)}` brings it back.",
                ok="Delete",
            ),
        ),
        kit.button("Hand over", "lc_transfer", token),
    )


def render_warning(
    w: TimerWarning,
    dep: DeploymentLike,
    *,
    owner_tz: str | None,
    simulated: bool,
    token: str,
) -> Message:
    """One warning as a message in the deployment's thread, with its fixes as buttons."""
    if w.kind == "idle_paying":
        return render_idle_paying(w, dep, owner_tz=owner_tz, simulated=simulated, token=token)
    body = warning_text(w, dep, owner_tz=owner_tz)
    return Message(
        text=_fallback(w, dep),
        blocks=[kit.section(body), _warning_buttons(w, dep, token), kit.footer_context(simulated, _detail(w))],
    )


def render_idle_paying(
    w: TimerWarning,
    dep: DeploymentLike,
    *,
    owner_tz: str | None,
    simulated: bool,
    token: str,
) -> Message:
    """The idle-but-paying report: dollars burned while idle and per day from now."""
    body = _idle_paying_text(w, dep, kit.mention(dep.owner), _name(dep))
    return Message(
        text=_fallback(w, dep),
        blocks=[kit.section(body), _warning_buttons(w, dep, token), kit.footer_context(simulated, _detail(w))],
    )


def _fallback(w: TimerWarning, dep: DeploymentLike) -> str:
    t = w.timer
    if t.kind == "idle_paying":
        return f"{dep.id} is idle but paying: {_usd(t.usd_idle)} spent while idle, {format_usd(t.usd_per_day, '/day')}"
    verb = "scales to zero" if t.kind == "scale_to_zero" else "will be deleted"
    return f"{dep.id} {verb} in {humanize(max(w.remaining_s, 0))}"


def _detail(w: TimerWarning) -> str:
    source = {
        "platform_window": "platform scale-to-zero window",
        "api_delete_time": "Fireworks deleteTime",
        "platform_policy": "Fireworks 7-day rule",
        "bot_policy": "fwbot policy",
    }.get(w.timer.source, w.timer.source)
    return f"{TIMER_LABEL[w.kind]} · {source}"


def render_digest(
    warnings: Sequence[TimerWarning],
    deps: Mapping[str, DeploymentLike],
    tokens: Mapping[WarningKey, str],
    *,
    owner_tz: Mapping[str, str | None] | None = None,
    simulated: bool,
    resolved: Mapping[WarningKey, str] | None = None,
) -> Message:
    """Several warnings for one channel as one message; resolved items lose their buttons.

    A single warning renders exactly as :func:`render_warning`.
    """
    tzs = owner_tz or {}
    done = resolved or {}
    if len(warnings) == 1 and not done:
        w = warnings[0]
        dep = deps[w.deployment_id]
        return render_warning(w, dep, owner_tz=tzs.get(dep.owner or ""), simulated=simulated, token=tokens[w.key])
    blocks: list[Block | None] = [kit.header(f"{len(warnings)} deployments need attention")]
    for w in warnings[:DIGEST_MAX_ITEMS]:
        dep = deps[w.deployment_id]
        if w.key in done:
            blocks.append(kit.section(f":white_check_mark: ~{kit.escape(_fallback(w, dep))}~ — {kit.escape(done[w.key])}"))
            continue
        blocks += [
            kit.divider(),
            kit.section(warning_text(w, dep, owner_tz=tzs.get(dep.owner or ""))),
            _warning_buttons(w, dep, tokens[w.key]),
        ]
    rest = warnings[DIGEST_MAX_ITEMS:]
    if rest:
        lines = [f"• {kit.mention(deps[w.deployment_id].owner)} {kit.escape(_fallback(w, deps[w.deployment_id]))}" for w in rest]
        blocks.append(kit.section(f"…and {len(rest)} more:\n" + "\n".join(lines)))
    blocks.append(kit.footer_context(simulated, "`/fw list mine` shows your deployments"))
    text = "; ".join(_fallback(w, deps[w.deployment_id]) for w in warnings)
    return Message(text=text, blocks=[b for b in blocks if b is not None])


def render_resolved(w: TimerWarning, reason: str, *, simulated: bool = False) -> Message:
    """The edit of a warning once it no longer applies: what it was about, why, no buttons."""
    summary = kit.escape(_fallback_for_timer(w))
    text = f"{summary} — {kit.escape(reason)}"
    return Message(
        text=text,
        blocks=[
            kit.section(f":white_check_mark: ~{summary}~\n{kit.escape(reason)}"),
            kit.footer_context(simulated, _detail(w)),
        ],
    )


def _fallback_for_timer(w: TimerWarning) -> str:
    t = w.timer
    what = {
        "scale_to_zero": "scale to zero",
        "auto_delete": "auto-delete",
        "idle_paying": "idle but paying",
    }[t.kind]
    due = t.due.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{t.deployment_id}: {what} due {due}"


def render_auto_deleted(
    dep: DeploymentLike,
    *,
    simulated: bool,
    token: str,
    idle_s: float | None = None,
) -> Message:
    """The notice after fwbot deleted an unused deployment, with an Undelete button."""
    idle = f" after {humanize(idle_s)} without traffic" if idle_s is not None else " after its unused limit"
    body = (
        f":wastebasket: {kit.mention(dep.owner)} fwbot deleted {_name(dep)}{idle}. "
        "It was a soft delete: Undelete brings it back (with a cold start of a few minutes)."
    )
    return Message(
        text=f"{dep.id} was deleted{idle}",
        blocks=[
            kit.section(body),
            kit.actions(kit.button("Undelete", "lc_undelete", token, style="primary")),
            kit.footer_context(simulated, f"`/fw undelete {kit.escape(dep.id)}` does the same"),
        ],
    )


def render_auto_delete_failed(
    dep: DeploymentLike,
    *,
    simulated: bool,
    attempts: int,
    error: str,
    usd_per_hour: float | None,
) -> Message:
    """The truth when fwbot gave up deleting an unused deployment: it is still there, billing."""
    state = getattr(dep, "state", None) or "running"
    body = (
        f":rotating_light: {kit.mention(dep.owner)} fwbot tried to delete {_name(dep)} {kit.counted(attempts, 'time')} "
        f"and could not: {kit.escape(error)}. It is still {state.lower()} and can cost {format_usd(usd_per_hour)}. "
        f"Delete it with `/fw delete {kit.escape(dep.id)}`, or keep it with `/fw keep {kit.escape(dep.id)}`."
    )
    return Message(text=f"fwbot could not delete {dep.id}; it is still {state.lower()}",
                   blocks=[kit.section(body), kit.footer_context(simulated)])


def _keep_effect(raised_from: int | None, usd_per_hour: float | None, hours: float) -> str:
    cost = f"{format_usd(usd_per_hour)} while warm, {_usd(None if usd_per_hour is None else usd_per_hour * hours)} in all"
    if raised_from is None:
        return f"min replicas stay as they are ({cost})"
    return f"min replicas {raised_from} → 1 ({cost}); then fwbot puts them back to {raised_from}"


def render_kept_warm(
    deployment_id: str,
    until: datetime,
    *,
    actor: str,
    tz: str | None,
    now: datetime,
    raised_from: int | None,
    usd_per_hour: float | None,
    extended: bool,
    dry_run: bool = False,
    simulated: bool = False,
) -> Message:
    """The answer to a keep-warm (button, App Home or ``/fw keep``)."""
    name = f"`{kit.escape(deployment_id)}`"
    when = when_text(until, tz, now)
    if not extended:
        text = f":fire: {name} is already kept warm until {when}; nothing changed."
        return Message(text=text, blocks=[kit.section(text), kit.footer_context(simulated)])
    effect = _keep_effect(raised_from, usd_per_hour, max(0.0, (until - now).total_seconds()) / 3600)
    postpone = "fwbot's own auto-delete and idle report wait until then."
    if dry_run:
        text = f":mag: Dry run — would keep {name} warm until {when}: {effect}. {postpone}"
    else:
        text = f":fire: {kit.mention(actor)} kept {name} warm until {when}: {effect}. {postpone}"
    return Message(text=text, blocks=[kit.section(text), kit.footer_context(simulated)])


def render_keep_warm_ended(dep: DeploymentLike, restored_min: int, *, simulated: bool = False) -> Message:
    """The thread note when fwbot puts min replicas back after a keep-warm."""
    after = (
        f"With no traffic it scales to zero after its window ({humanize(dep.scale_to_zero_s or 3600)})."
        if restored_min == 0
        else "It keeps that many replicas running."
    )
    text = f":snowflake: Keep-warm of {_name(dep)} ended: min replicas are back to {restored_min}. {after}"
    return Message(text=text, blocks=[kit.section(text), kit.footer_context(simulated)])


def render_snoozed(deployment_id: str, until: datetime, *, actor: str, tz: str | None, now: datetime,
                   simulated: bool = False) -> Message:
    """The answer to Snooze: what waits until when."""
    text = (
        f":zzz: {kit.mention(actor)} snoozed fwbot's own auto-delete and idle report for "
        f"`{kit.escape(deployment_id)}` until {when_text(until, tz, now)}."
    )
    return Message(text=text, blocks=[kit.section(text), kit.footer_context(simulated)])


def render_owner_left(dep: DeploymentLike, former_owner: str, usd_per_hour: float | None, *,
                      simulated: bool = False) -> Message:
    """Offer a deployment whose owner left Slack to its channel."""
    text = (
        f":wave: {kit.mention(former_owner)} is no longer in this Slack workspace, so {_name(dep)} has no owner. "
        f"It is {kit.escape(dep.state or 'UNKNOWN')} with {dep.replicas or 0} replica(s), "
        f"{format_usd(usd_per_hour)} right now. Whoever adopts it gets its warnings and decides what happens to it."
    )
    return Message(
        text=f"{dep.id} has no owner: {former_owner} left",
        blocks=[
            kit.section(text),
            kit.actions(kit.button("Adopt it", "adopt", dep.id, style="primary")),
            kit.footer_context(simulated, f"or `/fw adopt {kit.escape(dep.id)}`"),
        ],
    )


TRANSFER_CALLBACK = "lc_transfer"
TRANSFER_BLOCK = "new_owner"


def render_transfer_modal(deployment_id: str, owner: str | None) -> dict:
    """The hand-over form: pick the new owner of a deployment."""
    return kit.modal(
        "Hand over",
        [
            kit.section(
                f"Who should own `{kit.escape(deployment_id)}` from now on (now {kit.mention(owner)})? "
                "The new owner gets its warnings and may change or delete it."
            ),
            kit.input_block("New owner", kit.user_select("user", "Pick a person"), block_id=TRANSFER_BLOCK),
        ],
        callback_id=TRANSFER_CALLBACK,
        submit="Hand over",
        private_metadata=deployment_id,
    )


# -- App Home ---------------------------------------------------------------------------------
def _next_timer(ts: Sequence[Timer], now: datetime, tz: str | None) -> str:
    upcoming = sorted(ts, key=lambda t: t.due)
    if not upcoming:
        return "no idle timer"
    t = upcoming[0]
    remaining = (t.due - now).total_seconds()
    rel = f"in {humanize(remaining)}" if remaining > 0 else f"{humanize(-remaining)} ago"
    return f"{TIMER_LABEL[t.kind]} {rel} ({local_time(t.due, tz, now)})"


def home_row(
    dep: DeploymentLike,
    ts: Sequence[Timer],
    prices: Mapping[str, float],
    *,
    now: datetime,
    tz: str | None = None,
) -> list[Block]:
    """One deployment on the App Home: state, replicas, $/h, next timer, quick buttons."""
    state = dep.state or "UNKNOWN"
    replicas = dep.replicas if dep.replicas is not None else 0
    text = (
        f"{STATE_EMOJI.get(state, ':grey_question:')} {_name(dep)} · {kit.escape(state)} · "
        f"{replicas} replica(s) (min {dep.min_replicas or 0}, max {dep.max_replicas or 0}) · "
        f"{format_usd(current_usd_per_hour(dep, prices))}\n"
        f"Next: {_next_timer(ts, now, tz)} · owner {kit.mention(dep.owner)}"
    )
    live = state not in ("DELETING", "DELETED")
    buttons = kit.actions(
        kit.button(
            "Scale to zero",
            "home_scale_to_zero",
            dep.id,
            confirm_with=kit.confirm("Scale to zero?", f"Scale {_name(dep)} to zero replicas?", ok="Scale to zero"),
        )
        if live and replicas > 0
        else None,
        kit.button("Keep warm 1h", "home_keep_warm", dep.id) if live else None,
    )
    return [b for b in (kit.section(text), buttons) if b is not None]


def home_rows(
    deps: Iterable[DeploymentLike],
    timers: Mapping[str, Sequence[Timer]],
    prices: Mapping[str, float],
    *,
    now: datetime,
    group_by_owner: bool = False,
    tz: str | None = None,
) -> list[Block]:
    """App Home blocks for deployments, optionally under one heading per owner."""
    deps = list(deps)
    if not deps:
        return [kit.section("No deployments. `/fw deploy` starts one.")]
    if not group_by_owner:
        out: list[Block] = []
        for d in deps:
            out += home_row(d, timers.get(d.id, ()), prices, now=now, tz=tz)
        return out
    by_owner: dict[str | None, list[DeploymentLike]] = {}
    for d in deps:
        by_owner.setdefault(d.owner, []).append(d)
    out = []
    # Owned groups first in a stable order, unowned ones last (they need adopting).
    for owner in sorted(by_owner, key=lambda o: (o is None, o or "")):
        label = kit.mention(owner) if owner else "_unowned — `/fw adopt <id>` to claim_"
        out += [kit.divider(), kit.section(f"*Owner:* {label}")]
        for d in by_owner[owner]:
            out += home_row(d, timers.get(d.id, ()), prices, now=now, tz=tz)
    return out
