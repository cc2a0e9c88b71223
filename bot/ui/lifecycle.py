"""Block Kit for idle timers: warnings, digests, resolved edits, auto-delete notices, App Home rows.

Every button carries only the opaque token the caller stored for the warning (or, on the App
Home, the deployment id), never the deployment spec; handlers look everything else up.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_sdk.models.blocks import Block

from bot.core.durations import humanize
from bot.core.lifecycle import (
    ACTIVE_STATES,
    GONE_STATES,
    Deletion,
    DeploymentLike,
    Timer,
    TimerWarning,
    WarningKey,
    can_keep_warm,
    current_usd_per_hour,
    floor_usd_per_hour,
)
from bot.core.pricing import format_usd
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
    "schedule_down": "scheduled scale to zero",
    "max_lifetime": "maximum lifetime",
}
HARD_CAP = ("Keep-warm and snooze do not postpone a lifetime, and neither does traffic: it is a hard cap. "
            "Only *Renew* does.")


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
    """The one way fwbot's lifecycle messages show a time: the owner's local time with its zone
    (next to a relative "in 5m" where there is one)."""
    return local_time(when, tz, now)


def remaining(seconds: float) -> str:
    """A time left, never rounded up: a promise of "2m" must not stand for 1m59.6s."""
    return humanize(max(0, math.floor(seconds)))


def _usd(amount: float | None) -> str:
    return format_usd(amount, "")


def _name(dep: DeploymentLike) -> str:
    return f"`{kit.escape(dep.id)}`"


def _ago(then: datetime, now: datetime) -> str:
    # Idle time counts down, so a claim of idleness is never more than was seen.
    return humanize(max(0, math.floor((now - then).total_seconds())))


def _seen_idle(t: Timer) -> datetime:
    return t.seen_idle_since or t.anchor


def _floor_text(t: Timer, dep: DeploymentLike) -> str:
    """What it pays however idle it is, when its min replicas are above zero."""
    if not dep.min_replicas:
        return ""
    return f"with min replicas {dep.min_replicas} it pays at least {format_usd(t.usd_floor_per_hour)} while idle"


# -- warnings ---------------------------------------------------------------------------------
def warning_text(w: TimerWarning, dep: DeploymentLike, *, owner_tz: str | None) -> str:
    """The mrkdwn body of one warning: who, what happens, when, and the money at stake.

    A time is the owner's local time with its zone, next to a relative "in 5m" counted from when
    the message was made and never rounded up.
    """
    t, now = w.timer, w.decided_at
    who = kit.mention(dep.owner)
    name = _name(dep)
    when = when_text(t.due, owner_tz, now)
    idle = f"no requests seen for {_ago(_seen_idle(t), now)}"
    if t.kind == "scale_to_zero":
        saved = "saves nothing" if t.usd_per_hour == 0 else f"saves {format_usd(t.usd_per_hour)}"
        # Timed from the earliest the last request can have come (the metrics show a rate over the
        # last minute, not when a request came): Fireworks may act that much later, never sooner.
        earliest = " at the earliest" if t.kind != "schedule_down" and _seen_idle(t) > t.anchor else ""
        if w.remaining_s > 0:
            head = f"will *scale to zero* in *{remaining(w.remaining_s)}*{earliest} — {when}"
        else:
            head = f"may *scale to zero* any moment now (its window ran out{earliest} at {when})"
        return (
            f":hourglass: {who} {name} {head} ({idle}).\nThe next request after that waits for {COLD_START}. "
            f"Scaling to zero {saved}."
        )
    if t.kind == "auto_delete":
        return _auto_delete_text(w, dep, who, name, when, idle)
    if t.kind == "schedule_down":
        return _schedule_down_text(w, dep, who, name, when)
    if t.kind == "max_lifetime":
        return _lifetime_text(w, dep, who, name, when)
    return _idle_paying_text(w, dep, who, name)


def _schedule_down_text(w: TimerWarning, dep: DeploymentLike, who: str, name: str, when: str) -> str:
    t = w.timer
    saved = "saves nothing" if not t.usd_per_hour else f"saves {format_usd(t.usd_per_hour)}"
    moved = " (postponed by a keep-warm or snooze)" if t.snoozed else ""
    if t.source.startswith("policy schedule"):  # "policy schedule, from channel C0…"
        moved += f" (the team policy's schedule{t.source.removeprefix('policy schedule')})"
    if w.remaining_s > 0:
        head = f"fwbot will *scale {name} to zero* on its schedule in *{remaining(w.remaining_s)}* — {when}{moved}"
    else:
        head = f"fwbot *scales {name} to zero* on its schedule now ({when}){moved}"
    return (
        f":crescent_moon: {who} {head}: min replicas 0, replicas 0.\nThe next request after that waits for "
        f"{COLD_START}. Scaling to zero {saved}. *Keep warm* or *Snooze* postpones it until they end."
    )




def _lifetime_limit(t: Timer) -> str:
    """``3d (max_lifetime, from channel C…)``: the limit and where the policy sets it."""
    limit = humanize(t.limit_s) if t.limit_s else "its limit"
    return f"{limit} ({kit.escape(t.rule)})" if t.rule else limit


def _lifetime_text(w: TimerWarning, dep: DeploymentLike, who: str, name: str, when: str) -> str:
    t = w.timer
    since = f"its last renewal, by {kit.mention(t.renewed_by)}" if t.renewed_by else "its creation"
    if w.remaining_s > 0:
        head = (f":hourglass_flowing_sand: {who} {name} reaches its *maximum lifetime* of {_lifetime_limit(t)}: "
                f"fwbot will *delete* it in *{remaining(w.remaining_s)}* — {when}")
    else:
        head = (f":hourglass_flowing_sand: {who} {name} has reached its *maximum lifetime* of {_lifetime_limit(t)} "
                f"({when}); fwbot *deletes* it in *{remaining(w.lead_s)}* unless someone renews it")
    return (
        f"{head} (counted from {since}). {_running_text(t, dep)}.\n"
        f"*Renew* keeps it for another {humanize(t.limit_s) if t.limit_s else 'lifetime'} from the click. "
        f"{HARD_CAP}\nIt is a soft delete: it can be undeleted, but it comes back with {COLD_START}."
    )


def lifetime_line(t: Timer, *, tz: str | None, now: datetime) -> str:
    """The tracking message's line about a lifetime: when fwbot deletes it, by which rule."""
    renewed = f"; renewed by {kit.mention(t.renewed_by)}" if t.renewed_by else ""
    return (f":hourglass_flowing_sand: Maximum lifetime {_lifetime_limit(t)}: fwbot deletes it "
            f"{kit.people_time(t.due, tz, now)} unless renewed{renewed}")


def quiet_hours_note(w: TimerWarning, until: datetime, tz: str, now: datetime) -> str:
    """Why a warning went out during its owner's quiet hours: it could not wait for them to end."""
    t = w.timer
    what = {"scale_to_zero": "its scale to zero", "idle_paying": "it"}.get(t.kind, "its deletion")
    return (f":crescent_moon: Sent during your quiet hours (they end {local_time(until, tz, now)}) because "
            f"{what} is due at {local_time(t.due, tz, now)}, too soon to wait.")


def _running_text(t: Timer, dep: DeploymentLike) -> str:
    if not t.usd_per_hour:
        return "It is scaled to zero and costs nothing right now"
    floor = _floor_text(t, dep)
    return f"It costs {format_usd(t.usd_per_hour)} right now" + (f"; {floor}" if floor else "")


def _auto_delete_text(w: TimerWarning, dep: DeploymentLike, who: str, name: str, when: str, idle: str) -> str:
    t = w.timer
    running = _running_text(t, dep)
    if t.source == "bot_policy":
        if w.remaining_s > 0:
            head = f":wastebasket: {who} fwbot will *delete* {name} in *{remaining(w.remaining_s)}* — {when}"
        else:
            head = (
                f":wastebasket: {who} {name} is past its unused limit ({when}); fwbot *deletes* it in "
                f"*{remaining(w.lead_s)}* unless you act"
            )
        snoozed = " (snoozed until then)" if t.snoozed else ""
        return (
            f"{head}{snoozed} ({idle}). {running}.\n"
            "It is a soft delete: it can be undeleted, but it comes back with " + COLD_START + "."
        )
    left = f"in *{remaining(w.remaining_s)}*" if w.remaining_s > 0 else "any moment now"
    if t.source == "api_delete_time":
        platform = f"Fireworks will *delete* {name} {left} — {when} (its `deleteTime`)"
    else:
        platform = (
            f"Fireworks deletes deployments with min replicas 0 after 7 days without traffic: {name} "
            f"goes {left} — {when}"
        )
    return (
        f":wastebasket: {who} {platform} ({idle}). {running}.\n"
        "Snooze only postpones fwbot's own deletion — it cannot move the platform's schedule; "
        "keep it warm or send it traffic to keep it."
    )


def _idle_paying_text(w: TimerWarning, dep: DeploymentLike, who: str, name: str) -> str:
    t, now = w.timer, w.decided_at
    replicas = dep.replicas if dep.replicas is not None else dep.min_replicas
    floor = _floor_text(t, dep)
    return (
        f":money_with_wings: {who} {name} has had *no traffic for {_ago(_seen_idle(t), now)}* but keeps "
        f"{kit.counted(replicas, 'replica')} running (min {dep.min_replicas}): *{_usd(t.usd_idle)}* spent while idle, "
        f"*{format_usd(t.usd_per_day, '/day')}* from now on" + (f" — {floor}" if floor else "") + ".\n"
        "Scale it to zero (or lower min replicas to 0) to stop paying for idle GPUs."
    )


def _warning_buttons(w: TimerWarning, dep: DeploymentLike, token: str) -> Block | None:
    t = w.timer
    replicas = dep.replicas if dep.replicas is not None else (dep.min_replicas or 0)
    if t.kind == "max_lifetime":
        # Only a renewal moves a lifetime: no keep-warm or snooze offered.
        return kit.actions(
            kit.button("Renew", RENEW, token, style="primary"),
            _delete_button(dep, token),
            kit.button("Hand over", "lc_transfer", token),
        )
    # Only what can work: a keep-warm needs a deployment that may run a replica (not max 0, not
    # FAILED), scaling to zero one that is up.
    keep = t.kind != "idle_paying" and can_keep_warm(dep)
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
        if replicas > 0 and dep.state in ACTIVE_STATES
        else None,
        _delete_button(dep, token),
        kit.button("Hand over", "lc_transfer", token),
    )


RENEW = "lc_renew"  # the action id of a lifetime warning's Renew button


def _delete_button(dep: DeploymentLike, token: str):
    return kit.button(
        "Delete now",
        "lc_delete",
        token,
        style="danger",
        confirm_with=kit.confirm(
            "Delete deployment?",
            f"Delete {_name(dep)} now? It is a soft delete: `/fw undelete {kit.escape(dep.id)}` brings it back.",
            ok="Delete",
        ),
    )


def render_warning(
    w: TimerWarning,
    dep: DeploymentLike,
    *,
    owner_tz: str | None,
    simulated: bool,
    token: str,
    note: str | None = None,
) -> Message:
    """One warning as a message in the deployment's thread, with its fixes as buttons. ``note``:
    a line on why it went out when it did (during its owner's quiet hours)."""
    if w.kind == "idle_paying":
        message = render_idle_paying(w, dep, owner_tz=owner_tz, simulated=simulated, token=token)
    else:
        body = warning_text(w, dep, owner_tz=owner_tz)
        message = Message(
            text=_fallback(w, dep),
            blocks=[kit.section(body), _warning_buttons(w, dep, token), kit.footer_context(simulated, _detail(w))],
        )
    if note:
        message.blocks.insert(1, kit.context(note))
    return message


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
    verb = {"scale_to_zero": "scales to zero", "schedule_down": "is scaled to zero on its schedule"}.get(
        t.kind, "will be deleted")
    if t.kind == "max_lifetime":
        verb = "reaches its maximum lifetime and will be deleted"
    if w.remaining_s <= 0:
        if t.bot_acts:
            return f"{dep.id} will be deleted in {remaining(w.lead_s)} unless you act"
        return f"{dep.id} {verb} any moment now"
    return f"{dep.id} {verb} in {remaining(w.remaining_s)}" + (" at the earliest" if t.kind != "schedule_down" and _seen_idle(t) > t.anchor else "")


def _detail(w: TimerWarning) -> str:
    source = {
        "platform_window": "platform scale-to-zero window",
        "api_delete_time": "Fireworks deleteTime",
        "platform_policy": "Fireworks 7-day rule",
        "bot_policy": "fwbot policy",
        "schedule": "its schedule (`/fw schedule`)",
        "policy_lifetime": w.timer.rule or "team policy max_lifetime",
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
    notes: Mapping[WarningKey, str] | None = None,
) -> Message:
    """Several warnings for one channel as one message; resolved items lose their buttons.
    ``notes``: why a warning went out during its owner's quiet hours, under it.

    A single warning renders exactly as :func:`render_warning`.
    """
    tzs = owner_tz or {}
    done = resolved or {}
    said = notes or {}
    if len(warnings) == 1 and not done:
        w = warnings[0]
        dep = deps[w.deployment_id]
        return render_warning(w, dep, owner_tz=tzs.get(dep.owner or ""), simulated=simulated, token=tokens[w.key],
                              note=said.get(w.key))
    blocks: list[Block | None] = [kit.header(_attention({w.deployment_id for w in warnings}))]
    for w in warnings[:DIGEST_MAX_ITEMS]:
        dep = deps[w.deployment_id]
        if w.key in done:
            blocks.append(kit.section(_resolved_item(w, dep, done[w.key], tzs.get(dep.owner or ""))))
            continue
        blocks += [
            kit.divider(),
            kit.section(warning_text(w, dep, owner_tz=tzs.get(dep.owner or ""))),
            kit.context(said[w.key]) if w.key in said else None,
            _warning_buttons(w, dep, tokens[w.key]),
        ]
    rest = warnings[DIGEST_MAX_ITEMS:]
    if rest:
        lines = [f"• {kit.mention(deps[w.deployment_id].owner)} {kit.escape(_fallback(w, deps[w.deployment_id]))}" for w in rest]
        blocks.append(kit.section(f"…and {len(rest)} more:\n" + "\n".join(lines)))
    blocks.append(kit.footer_context(simulated, "`/fw list mine` shows your deployments"))
    text = "; ".join(_fallback(w, deps[w.deployment_id]) for w in warnings)
    return Message(text=text, blocks=[b for b in blocks if b is not None])


def resolution_outcome(reason: str) -> tuple[str, bool]:
    """How a resolved warning ended: its emoji, and whether what it warned of happened.

    A deletion, a scale to zero or a failure happened: the message leads with it and keeps the
    warning readable below. Anything else (traffic resumed, kept warm, snoozed, the timer moved)
    averted it: the warning is struck through under a tick.
    """
    r = reason.lower()
    if "could not" in r:
        return ":warning:", True
    if r.startswith("deleted") or " deleted " in f" {r} " or "deployment is gone" in r:
        return ":wastebasket:", True
    if "scaled to zero" in r:
        return ":zzz:", True
    return ":white_check_mark:", False


def _sentence(text: str) -> str:
    return text if text.startswith("fwbot") else text[:1].upper() + text[1:]


def render_resolved(w: TimerWarning, reason: str, *, simulated: bool = False, original: str | None = None,
                    owner_tz: str | None = None) -> Message:
    """The edit of a warning once it no longer applies: how it ended, the warning itself, no buttons.

    ``original`` is the warning's own text (mrkdwn), kept readable as context when what it warned
    of happened.
    """
    summary = kit.escape(_fallback_for_timer(w, owner_tz))
    emoji, happened = resolution_outcome(reason)
    text = f"{summary} — {kit.escape(reason)}"
    if not happened:
        return Message(
            text=text,
            blocks=[
                kit.section(f"{emoji} ~{summary}~\n{kit.escape(reason)}"),
                kit.footer_context(simulated, _detail(w)),
            ],
        )
    return Message(
        text=text,
        blocks=[
            kit.section(f"{emoji} {kit.escape(_sentence(reason))}"),
            kit.context(f"The warning was: {original or summary}"),
            kit.footer_context(simulated, _detail(w)),
        ],
    )


def _resolved_item(w: TimerWarning, dep: DeploymentLike, reason: str, owner_tz: str | None) -> str:
    summary = kit.escape(_fallback(w, dep))
    emoji, happened = resolution_outcome(reason)
    if happened:
        return f"{emoji} {kit.escape(_sentence(reason))} — the warning was: {summary}"
    return f"{emoji} ~{summary}~ — {kit.escape(reason)}"


def _fallback_for_timer(w: TimerWarning, owner_tz: str | None = None) -> str:
    t = w.timer
    what = {
        "scale_to_zero": "scale to zero",
        "auto_delete": "auto-delete",
        "idle_paying": "idle but paying",
        "schedule_down": "scheduled scale to zero",
        "max_lifetime": "maximum lifetime",
    }[t.kind]
    return f"{t.deployment_id}: {what} due {local_time(t.due, owner_tz, w.decided_at)}"


# -- deletions --------------------------------------------------------------------------------
def _deleter(d: Deletion, name_of) -> str:
    if d.by == "person":
        return name_of(d.user)
    return {"fwbot": "fwbot", "fireworks": "Fireworks"}.get(d.by, "someone outside fwbot")


def deletion_line(d: Deletion, *, tz: str | None, now: datetime, name_of=lambda u: u or "someone") -> str:
    """A deletion in one plain line (for a resolved warning): who or what, why, when.

    ``name_of`` turns a user id into plain text (an ``@handle``): the line is escaped where shown.
    """
    when = local_time(d.at, tz, now)
    if d.by == "outside":
        return f"deleted outside fwbot ({d.why}), at {when}"
    if d.by == "person":
        approved = f", approved by {name_of(d.approved_by)}" if d.approved_by else ""
        return f"deleted by {name_of(d.user)} {d.why}{approved}, at {when}"
    return f"{_deleter(d, name_of)} deleted it {d.why}, at {when}"


def render_deletion(
    dep: DeploymentLike,
    d: Deletion,
    *,
    tz: str | None,
    now: datetime,
    simulated: bool,
    purge_time: datetime | None = None,
    undelete_value: str | None = None,
    purged_at: datetime | None = None,
) -> Message:
    """The one thread message of a deletion: who or what deleted it, when (the owner's local time
    with its zone), why, and — while it can be — an Undelete button. ``purged_at``: Fireworks has
    purged it since (the message is edited to say so, without the button)."""
    name = _name(dep)
    when = local_time(d.at, tz, now)
    if d.by == "person":
        approved = f" (approved by {kit.mention(d.approved_by)})" if d.approved_by else ""
        head = f"{kit.mention(d.user)} deleted {name} {d.why}{approved}, at {when}."
    elif d.by == "outside":
        head = f"{name} was deleted outside fwbot ({kit.escape(d.why)}), at {when}."
    else:
        head = f"{_deleter(d, str)} deleted {name} {kit.escape(d.why)}, at {when}."
    undeletable = d.soft and purged_at is None
    if purged_at is not None:
        undo = f"Fireworks purged it at {local_time(purged_at, tz, now)}: it can no longer be undeleted."
    elif d.soft:
        until = f" (until {local_time(purge_time, tz, now)})" if purge_time is not None else ""
        undo = (f"It was a soft delete: *Undelete* brings it back, with {COLD_START}, until Fireworks "
                f"purges it{until}.")
    else:
        undo = "It was deleted for good: it cannot be undeleted."
    owner = f"{kit.mention(dep.owner)} " if dep.owner else ""
    blocks: list[Block | None] = [
        kit.section(f":wastebasket: {owner}{head}\n{undo}"),
        kit.actions(kit.button("Undelete", "lc_undelete", undelete_value or dep.id, style="primary"))
        if undeletable else None,
        kit.footer_context(simulated, f"`/fw undelete {kit.escape(dep.id)}` does the same" if undeletable else ""),
    ]
    who = _deleter(d, kit.mention)
    return Message(text=f"{dep.id} was deleted by {who} at {when}", blocks=[b for b in blocks if b is not None])


def render_auto_deleted(
    dep: DeploymentLike,
    *,
    simulated: bool,
    token: str,
    idle_s: float | None = None,
    at: datetime | None = None,
    tz: str | None = None,
    why: str | None = None,
) -> Message:
    """The notice after fwbot deleted an unused deployment, with an Undelete button."""
    idle = f"after {humanize(idle_s)} without traffic" if idle_s is not None else "after its unused limit"
    if at is not None:
        return render_deletion(dep, Deletion("fwbot", at, why or idle), tz=tz, now=at, simulated=simulated,
                               undelete_value=token)
    body = (
        f":wastebasket: {kit.mention(dep.owner)} fwbot deleted {_name(dep)} {idle}. "
        "It was a soft delete: Undelete brings it back (with a cold start of a few minutes)."
    )
    return Message(
        text=f"{dep.id} was deleted {idle}",
        blocks=[
            kit.section(body),
            kit.actions(kit.button("Undelete", "lc_undelete", token, style="primary")),
            kit.footer_context(simulated, f"`/fw undelete {kit.escape(dep.id)}` does the same"),
        ],
    )


def _attention(deployment_ids: set[str]) -> str:
    """The digest's header counts deployments, not warnings (one can have two due together)."""
    n = len(deployment_ids)
    return f"{kit.counted(n, 'deployment')} {'needs' if n == 1 else 'need'} attention"


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
        f"It is {kit.escape(dep.state or 'UNKNOWN')} with {kit.counted(dep.replicas or 0, 'replica')}, "
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
def _happening(t: Timer, now: datetime, tz: str | None) -> str:
    """What a timer whose due time has passed means now (a past due time is never shown as "ago")."""
    if t.kind == "scale_to_zero":
        return f"may scale to zero any moment (its window ran out at {local_time(t.due, tz, now)} at the earliest)"
    if t.kind == "auto_delete":
        if t.bot_acts:
            return "auto-delete due now: fwbot deletes it soon unless you act"
        return "Fireworks may delete it any moment"
    if t.kind == "schedule_down":
        return f"scheduled scale to zero due ({local_time(t.due, tz, now)}): fwbot does it at its next sweep"
    if t.kind == "max_lifetime":
        return "maximum lifetime reached: fwbot deletes it soon unless someone renews it"
    return (f"idle but paying {format_usd(t.usd_per_hour)} — no traffic for {_ago(_seen_idle(t), now)} "
            f"(its idle-paying report came due at {local_time(t.due, tz, now)})")


def _next_timer(ts: Sequence[Timer], now: datetime, tz: str | None) -> str:
    """``Now:`` what the timers that came due mean, then ``Next:`` the soonest still to come."""
    upcoming = sorted(ts, key=lambda t: t.due)
    parts = [f"Now: {_happening(t, now, tz)}" for t in upcoming if t.due <= now]
    later = [t for t in upcoming if t.due > now]
    if later:
        t = later[0]
        earliest = " at the earliest" if t.kind != "schedule_down" and _seen_idle(t) > t.anchor else ""
        parts.append(f"Next: {TIMER_LABEL[t.kind]} in {remaining((t.due - now).total_seconds())}{earliest} "
                     f"({local_time(t.due, tz, now)})")
    elif not parts:
        parts.append("Next: no idle timer")
    return " · ".join(parts)


def home_row(
    dep: DeploymentLike,
    ts: Sequence[Timer],
    prices: Mapping[str, float],
    *,
    now: datetime,
    tz: str | None = None,
    schedule: str | None = None,
) -> list[Block]:
    """One deployment on the App Home: state, replicas, $/h, its timers (and its schedule, a line
    of bot/ui/schedules.py), and only the buttons that can work on it."""
    state = dep.state or "UNKNOWN"
    replicas = dep.replicas if dep.replicas is not None else 0
    floor, now_usd = floor_usd_per_hour(dep, prices), current_usd_per_hour(dep, prices)
    idle = ""
    if dep.min_replicas:
        # What it pays however idle it is: the worst case alone hides the floor.
        idle = (f" (min {dep.min_replicas}: paid even while idle)" if floor == now_usd
                else f" (at least {format_usd(floor)} while idle: min {dep.min_replicas})")
    text = (
        f"{STATE_EMOJI.get(state, ':grey_question:')} {_name(dep)} · {kit.escape(state)} · "
        f"{kit.counted(replicas, 'replica')} (min {dep.min_replicas or 0}, max {dep.max_replicas or 0}) · "
        f"{format_usd(now_usd)}{idle}\n"
        f"{_next_timer(ts, now, tz)} · owner {kit.mention(dep.owner)}"
    ) + (f"\n{schedule}" if schedule else "")
    buttons = kit.actions(
        kit.button(
            "Scale to zero",
            "home_scale_to_zero",
            dep.id,
            confirm_with=kit.confirm("Scale to zero?", f"Scale {_name(dep)} to zero replicas?", ok="Scale to zero"),
        )
        if state in ACTIVE_STATES and state not in GONE_STATES and replicas > 0
        else None,
        kit.button("Keep warm 1h", "home_keep_warm", dep.id) if can_keep_warm(dep) else None,
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
    schedules: Mapping[str, str] | None = None,
) -> list[Block]:
    """App Home blocks for deployments, optionally under one heading per owner."""
    deps = list(deps)
    lines = schedules or {}
    if not deps:
        return [kit.section("No deployments. `/fw deploy` starts one.")]
    if not group_by_owner:
        out: list[Block] = []
        for d in deps:
            out += home_row(d, timers.get(d.id, ()), prices, now=now, tz=tz, schedule=lines.get(d.id))
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
            out += home_row(d, timers.get(d.id, ()), prices, now=now, tz=tz, schedule=lines.get(d.id))
    return out
