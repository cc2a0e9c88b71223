"""Idle timers of a deployment and the decisions they drive (SPEC §5).

Three timers exist:

``scale_to_zero``
    The platform drops a min-0 deployment to zero replicas after ``scaleToZeroWindow`` with no
    requests. Only the platform acts; the bot warns so the owner can keep it warm.
``auto_delete``
    A deployment is soft-deleted after a stretch without traffic. The platform announces its own
    schedule in ``deleteTime`` (source ``api_delete_time``) and documents a 7-day rule for min-0
    deployments (source ``platform_policy`` when ``deleteTime`` is not reported). Without
    ``deleteTime`` the bot enforces its own policy, ``unused_delete_s`` (source ``bot_policy``;
    default 168h, ``0`` = never). Only ``bot_policy`` deletions are carried out by the bot.
``idle_paying``
    A deployment with min replicas ≥ 1 keeps paying for replicas nobody uses; after
    ``FWBOT_IDLE_PAYING_AFTER`` without traffic it is reported once per idle stretch.
``schedule_down``
    The next scale-down of the deployment's off-hours schedule (bot/core/schedules.py), which
    fwbot carries out itself; warned like a scale to zero. A keep-warm or snooze postpones it.
``max_lifetime``
    The team policy's ``max_lifetime`` (a hard cap, whatever the traffic): due at the
    deployment's creation (Fireworks' ``createTime``, else when fwbot first recorded it) or its
    last renewal, whichever is later, plus the limit (:func:`lifetime_due`). Warned with the
    deletion leads and carried out by the bot; only a renewal moves it — keep-warms and snoozes
    do not.

Everything here is a pure function of the deployment record, its last traffic, the policy, the
price table and ``now``.

Last traffic is known only as well as the metrics show it: a scrape reports a request *rate over
a trailing window* (:data:`METRICS_RATE_WINDOW_S`), so a positive rate says a request came some
time in that window, not at the scrape. Two times are kept: when traffic was last *seen* (the
scrape that saw it) and the *earliest* its last request can have been (:func:`earliest_last_request`).
What Fireworks does on its own clock (the scale-to-zero window, its 7-day rule) is timed from
the earliest, so no warning promises more time than there may be; what fwbot does itself (its
own deletion, the idle report) and every claim about idleness count from when traffic was last
seen, so fwbot never acts before its own policy is met nor claims more idle time than it saw. Due times derive from stored data only (never from ``now``) and are
rounded down to whole seconds, so the key ``(deployment_id, timer, due, lead_s)`` of a warning is
the same on every sweep and after a restart as long as nothing about the deployment changed.

Which states get which timers:

* ``READY`` and ``UPDATING``: all three (an update rolls out while replicas keep serving).
* ``FAILED``: only ``auto_delete`` — a failed deployment serves nothing and bills nothing
  worth reporting, but forgetting it still clutters the account.
* ``CREATING``, ``DELETING``, ``DELETED``, unknown states, and deployments gone from the API:
  none — there is nothing idle to time, or nothing left to act on.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, Literal, NamedTuple, Protocol

from bot.core.clock import iso, parse_iso
from bot.core.durations import humanize
from bot.core.pricing import worst_case_usd_per_hour
from bot.core.requests import DEFAULT_SCALE_TO_ZERO_WINDOW_S, DEFAULT_UNUSED_AUTO_DELETE_S
from bot.core.schedules import RunningSchedule, due_now, postponed_down

TimerKind = Literal["scale_to_zero", "auto_delete", "idle_paying", "schedule_down", "max_lifetime"]
TIMER_KINDS: tuple[TimerKind, ...] = ("scale_to_zero", "auto_delete", "idle_paying", "schedule_down",
                                      "max_lifetime")
# The kinds whose due time is a deletion (warned with FWBOT_WARN_BEFORE_DELETE).
DELETION_KINDS = frozenset({"auto_delete", "max_lifetime"})
_KIND_RANK = {kind: i for i, kind in enumerate(TIMER_KINDS)}

# OpenAPI gatewayAutoscalingPolicy.scaleToZeroWindow: "Default is 1h. This must be at least 5 minutes."
# The API's defaults, defined once (bot/core/requests.py). SPEC §5 / migrations: NULL unused_delete_s means 168h.
DEFAULT_SCALE_TO_ZERO_S = DEFAULT_SCALE_TO_ZERO_WINDOW_S
DEFAULT_UNUSED_DELETE_S = DEFAULT_UNUSED_AUTO_DELETE_S
# contract §2.4: min-0 deployments are auto-deleted after 7 days with no traffic [DOC].
PLATFORM_UNUSED_DELETE_S = 7 * 86400.0
# contract §2.8: request rates are "per second over 1-minute windows" (sims/fireworks/metrics.py
# renders them the same way): a positive rate at a scrape means a request within the minute before.
METRICS_RATE_WINDOW_S = 60.0

ACTIVE_STATES = frozenset({"READY", "UPDATING"})
GONE_STATES = frozenset({"DELETING", "DELETED"})


class DeploymentLike(Protocol):
    """The fields of ``storage.deployments.DeploymentRecord`` the lifecycle reads."""

    id: str
    owner: str | None
    channel: str | None
    thread_ts: str | None
    state: str | None
    replicas: int | None
    min_replicas: int | None
    max_replicas: int | None
    accelerator_type: str | None
    accelerator_count: int | None
    scale_to_zero_s: float | None
    delete_time: str | None
    unused_delete_s: float | None
    single_region: bool
    create_time: str | None
    ready_at: str | None
    first_seen_at: str
    gone_at: str | None


@dataclass(frozen=True)
class LifecyclePolicy:
    """The lifecycle settings (SPEC §3), in seconds."""

    warn_before_scale_to_zero_s: float = 600.0
    warn_before_delete_s: tuple[float, ...] = (86400.0, 3600.0)
    idle_paying_after_s: float = 7200.0
    default_unused_delete_s: float = DEFAULT_UNUSED_DELETE_S
    alert_channel: str | None = None

    def __post_init__(self) -> None:
        # Descending and de-duplicated, whatever order the caller used.
        object.__setattr__(
            self, "warn_before_delete_s", tuple(sorted({float(x) for x in self.warn_before_delete_s}, reverse=True))
        )

    @classmethod
    def from_settings(cls, settings: Any) -> LifecyclePolicy:
        """Build the policy from ``bot.core.settings.Settings``."""
        return cls(
            warn_before_scale_to_zero_s=float(settings.warn_before_scale_to_zero),
            warn_before_delete_s=tuple(settings.warn_before_delete),
            idle_paying_after_s=float(settings.idle_paying_after),
            alert_channel=getattr(settings, "alert_channel", None),
        )


@dataclass(frozen=True)
class Timer:
    """One idle timer of one deployment, with the money at stake.

    ``anchor`` is when the idle stretch began as the timer counts it (for Fireworks' own timers the
    earliest the last request can have been, for fwbot's when traffic was last seen; else when the
    deployment came up). ``seen_idle_since`` is when traffic was last seen (or it came up): what
    any sentence about idleness counts from. ``usd_per_hour`` is what the deployment costs per hour
    at its current replicas — what scaling to zero or deleting saves; ``usd_floor_per_hour`` what
    its min replicas cost, which it pays however idle it is (``None`` with min replicas 0);
    ``usd_idle`` (idle_paying only) is what the idle stretch has cost so far at the current
    replicas. Money is ``None`` when the accelerator has no price.
    """

    deployment_id: str
    kind: TimerKind
    due: datetime
    source: str
    anchor: datetime
    usd_per_hour: float | None
    owner: str | None = None
    channel: str | None = None
    thread_ts: str | None = None
    usd_idle: float | None = None
    snoozed: bool = False
    seen_idle_since: datetime | None = None
    usd_floor_per_hour: float | None = None
    # max_lifetime only: the limit, where the policy sets it, and the last renewal (who, when).
    limit_s: float | None = None
    rule: str | None = None
    renewed_by: str | None = None

    @cached_property
    def due_iso(self) -> str:
        """``due`` as stored; part of every warning's key, so asked for many times a sweep."""
        return iso(self.due)  # type: ignore[return-value]

    @property
    def usd_per_day(self) -> float | None:
        return None if self.usd_per_hour is None else self.usd_per_hour * 24

    @property
    def bot_acts(self) -> bool:
        """Whether the bot itself carries this timer out (else the platform does, or nobody)."""
        return (self.kind == "auto_delete" and self.source == "bot_policy") or self.kind == "max_lifetime"

    @property
    def postponable(self) -> bool:
        """Whether a snooze postpones it: fwbot's own actions and reports, never Fireworks', and
        never a maximum lifetime (a hard cap: only a renewal moves it)."""
        return self.kind != "max_lifetime" and (self.bot_acts or self.kind in ("idle_paying", "schedule_down"))

    def remaining_s(self, now: datetime) -> float:
        return (self.due - now).total_seconds()


class WarningKey(NamedTuple):
    """The identity of a sent warning; the ``warnings`` table's unique key."""

    deployment_id: str
    timer: str
    due: str
    lead_s: float


def warning_key(deployment_id: str, timer: str, due: datetime | str, lead_s: float) -> WarningKey:
    """Normalise a key: due as stored RFC3339 text, lead as float (the column is REAL)."""
    due_text = due if isinstance(due, str) else iso(due)
    return WarningKey(deployment_id, timer, due_text, float(lead_s))  # type: ignore[arg-type]


@dataclass(frozen=True)
class TimerWarning:
    """A warning to post now: which timer, which lead, where, and when it was decided."""

    timer: Timer
    lead_s: float
    channel: str | None
    decided_at: datetime

    @property
    def key(self) -> WarningKey:
        return warning_key(self.timer.deployment_id, self.timer.kind, self.timer.due, self.lead_s)

    @property
    def deployment_id(self) -> str:
        return self.timer.deployment_id

    @property
    def kind(self) -> TimerKind:
        return self.timer.kind

    @property
    def remaining_s(self) -> float:
        return self.timer.remaining_s(self.decided_at)


ActionKind = Literal["auto_delete", "lifetime_delete", "keep_warm_revert", "schedule_down", "schedule_up"]


@dataclass(frozen=True)
class BotAction:
    """Something the bot must do itself now; ``key`` makes doing it twice impossible."""

    kind: ActionKind
    deployment_id: str
    due: datetime
    key: str
    reason: str


@dataclass(frozen=True)
class Digest:
    """Warnings that go out together as one message in one channel.

    ``thread_ts`` is set only when every warning belongs to the same deployment thread.
    """

    channel: str | None
    warnings: tuple[TimerWarning, ...]
    thread_ts: str | None = None


@dataclass(frozen=True)
class Lifetime:
    """The ``max_lifetime`` that applies to one deployment, and its last renewal.

    ``limit_s`` comes from the team policy for the deployment's owner in its channel; ``rule``
    says where (``max_lifetime, from channel C…``). ``renewed_at``/``renewed_by``: the latest
    renewal (a click on *Renew*), when there was one.
    """

    limit_s: float
    rule: str = ""
    renewed_at: datetime | None = None
    renewed_by: str | None = None


def lifetime_start(dep: DeploymentLike) -> datetime:
    """When a deployment's life began: Fireworks' ``createTime``, else when fwbot first recorded it."""
    start = parse_iso(dep.create_time) or parse_iso(dep.first_seen_at)
    assert start is not None
    return start


def lifetime_due(dep: DeploymentLike, lifetime: Lifetime | None) -> tuple[datetime, datetime] | None:
    """``(due, anchor)`` of the lifetime timer: the later of creation and the last renewal (the
    anchor), plus the limit, in whole seconds; ``None`` without a limit. A renewal earlier than the
    creation (of an earlier deployment with the same id) counts for nothing."""
    if lifetime is None or lifetime.limit_s <= 0:
        return None
    anchor = _later(lifetime_start(dep), lifetime.renewed_at)
    assert anchor is not None
    return _whole_seconds(anchor + timedelta(seconds=lifetime.limit_s)), anchor


def lifetime_timer(dep: DeploymentLike, lifetime: Lifetime | None, usd_per_hour: float | None = None,
                   **where: Any) -> Timer | None:
    """The ``max_lifetime`` timer (``None`` without a limit); ``renewed_by`` only when a renewal
    is what it counts from."""
    found = lifetime_due(dep, lifetime)
    if found is None:
        return None
    assert lifetime is not None
    due, anchor = found
    renewed = lifetime.renewed_at is not None and anchor == lifetime.renewed_at
    return Timer(dep.id, "max_lifetime", due, "policy_lifetime", anchor, usd_per_hour, limit_s=lifetime.limit_s,
                 rule=lifetime.rule, renewed_by=lifetime.renewed_by if renewed else None, **where)


# -- timers -----------------------------------------------------------------------------------
def _whole_seconds(dt: datetime) -> datetime:
    return (dt if dt.tzinfo is UTC else dt.astimezone(UTC)).replace(microsecond=0)


def _later(*times: datetime | None) -> datetime | None:
    latest = None
    for t in times:
        if t is not None and (latest is None or t > latest):
            latest = t
    return latest


def idle_since(dep: DeploymentLike, last_traffic: datetime | None) -> datetime:
    """When the current idle stretch began: last traffic, or when the deployment came up.

    A deployment that became READY (again, e.g. after an undelete) after its last traffic has not
    been idle longer than since then, hence the latest of the known times.
    """
    came_up = _later(parse_iso(dep.ready_at), parse_iso(dep.create_time))
    anchor = _later(last_traffic, came_up) or parse_iso(dep.first_seen_at)
    assert anchor is not None
    return anchor


def earliest_last_request(
    seen: datetime | None, serving_from: datetime | None, window_s: float = METRICS_RATE_WINDOW_S
) -> datetime | None:
    """The earliest time the last request can have come, from what the scrapes showed.

    ``seen`` is the last scrape that saw a positive rate, ``serving_from`` the start of the
    serving stretch it belongs to as the scraper recorded it: the later of the last scrape before
    the stretch that saw no requests and the stretch's first positive scrape less the window. A
    rate over the ``window_s`` before ``seen`` means a request after ``seen - window_s``, and every
    request of the stretch came after ``serving_from``; the later of the two bounds the last one
    from below (it may have come as late as ``seen``). ``None`` when no traffic was ever seen.
    """
    if seen is None:
        return None
    bound = seen - timedelta(seconds=window_s)
    if serving_from is not None and serving_from > bound:
        bound = min(serving_from, seen)
    return bound


def _current_replicas(dep: DeploymentLike) -> int:
    if dep.replicas is not None:
        return dep.replicas
    return dep.min_replicas or 0


def _hourly(dep: DeploymentLike, replicas: int, prices: Mapping[str, float]) -> float | None:
    return worst_case_usd_per_hour(
        replicas, dep.accelerator_count, dep.accelerator_type, prices, single_region=bool(dep.single_region)
    )


def current_usd_per_hour(dep: DeploymentLike, prices: Mapping[str, float]) -> float | None:
    """What the deployment costs per hour at its current replicas; ``None`` without a price."""
    return _hourly(dep, _current_replicas(dep), prices)


def floor_usd_per_hour(dep: DeploymentLike, prices: Mapping[str, float]) -> float | None:
    """What its min replicas cost per hour — paid however idle it is; ``None`` with min replicas 0
    (or without a price)."""
    floor = dep.min_replicas or 0
    return _hourly(dep, floor, prices) if floor > 0 else None


def can_keep_warm(dep: DeploymentLike) -> bool:
    """Whether a keep-warm (min replicas 1 for a while) can work on this deployment: it must be
    serving-capable (READY or UPDATING) and allowed at least one replica."""
    if dep.gone_at is not None or dep.state not in ACTIVE_STATES:
        return False
    return dep.max_replicas is None or dep.max_replicas >= 1


def timers(
    dep: DeploymentLike,
    last_traffic: datetime | None,
    policy: LifecyclePolicy,
    now: datetime,
    prices: Mapping[str, float],
    *,
    snoozed_until: datetime | None = None,
    keep_warm_until: datetime | None = None,
    scaled_up_at: datetime | None = None,
    earliest_traffic: datetime | None = None,
    schedule: RunningSchedule | None = None,
    lifetime: Lifetime | None = None,
) -> list[Timer]:
    """The deployment's running idle timers, soonest first.

    ``last_traffic`` is when the metrics last showed requests, ``earliest_traffic`` the earliest
    the last request can have come (:func:`earliest_last_request`; by default ``last_traffic``
    itself). Fireworks' own timers (scale to zero, its 7-day rule) run from the earliest, so they
    are never later than Fireworks' own clock; fwbot's own (its deletion, the idle report) from
    ``last_traffic``, so fwbot never acts before its policy is met.
    ``snoozed_until`` and ``keep_warm_until`` postpone what the bot owns — its own auto-delete
    and the idle-paying report — never the platform's scale-to-zero or ``deleteTime``.
    ``scaled_up_at`` (when replicas last went from 0 to more) restarts the scale-to-zero clock
    when someone scaled up by hand without sending traffic.
    ``schedule``: the deployment's off-hours schedule, whose next scale-down is a timer while there
    is something to scale down (a keep-warm or snooze postpones it, see
    :func:`bot.core.schedules.postponed_down`).
    ``lifetime`` (the policy's ``max_lifetime`` and the last renewal) adds the ``max_lifetime``
    timer, which nothing but a renewal moves.
    ``now`` is used only for money spent so far; due times never depend on it.
    """
    if dep.gone_at is not None or dep.state not in ACTIVE_STATES | {"FAILED"}:
        return []
    seen = idle_since(dep, last_traffic)
    earliest = seen if earliest_traffic is None else min(seen, idle_since(dep, earliest_traffic))
    min_replicas = dep.min_replicas or 0
    replicas = _current_replicas(dep)
    out: list[Timer] = []
    hourly = _hourly(dep, replicas, prices)
    where = {"owner": dep.owner, "channel": dep.channel, "thread_ts": dep.thread_ts, "seen_idle_since": seen,
             "usd_floor_per_hour": floor_usd_per_hour(dep, prices)}
    postponed = _later(snoozed_until, keep_warm_until)

    if dep.state in ACTIVE_STATES and min_replicas == 0 and replicas > 0:
        window = dep.scale_to_zero_s if dep.scale_to_zero_s is not None else DEFAULT_SCALE_TO_ZERO_S
        start = _later(earliest, scaled_up_at)
        assert start is not None
        out.append(
            Timer(
                dep.id,
                "scale_to_zero",
                _whole_seconds(start + timedelta(seconds=window)),
                "platform_window",
                start,
                hourly,
                **where,
            )
        )

    delete = _auto_delete(dep, seen, earliest, policy, postponed)
    if delete is not None:
        due, source, snoozed, anchor = delete
        out.append(
            Timer(dep.id, "auto_delete", due, source, anchor, hourly, snoozed=snoozed, **where)
        )

    if dep.state in ACTIVE_STATES and min_replicas >= 1 and replicas > 0:
        due = _whole_seconds(seen + timedelta(seconds=policy.idle_paying_after_s))
        snoozed = postponed is not None and postponed > due
        if snoozed:
            due = _whole_seconds(postponed)  # type: ignore[arg-type]
        idle_h = max(0.0, (now - seen).total_seconds()) / 3600
        out.append(
            Timer(
                dep.id,
                "idle_paying",
                due,
                "bot_policy",
                seen,
                hourly,
                usd_idle=None if hourly is None else hourly * idle_h,
                snoozed=snoozed,
                **where,
            )
        )
    if schedule is not None and dep.state in ACTIVE_STATES and (replicas > 0 or min_replicas > 0):
        down = postponed_down(schedule, postponed)
        if down is not None:
            due, moved = down
            # A policy's schedule names its rule: "policy schedule, from channel C0…".
            source = "schedule" if schedule.source is None else f"policy schedule, from {schedule.source}"
            out.append(Timer(dep.id, "schedule_down", _whole_seconds(due), source, schedule.since, hourly,
                             snoozed=moved, **where))

    life = lifetime_timer(dep, lifetime, hourly, **where)
    if life is not None:
        out.append(life)
    if len(out) > 1:
        out.sort(key=_timer_order)
    return out


def quiet_until(
    dep: DeploymentLike,
    last_traffic: datetime | None,
    policy: LifecyclePolicy,
    earliest_traffic: datetime | None = None,
    lifetime_due_at: datetime | None = None,
) -> datetime | None:
    """A time before which none of the deployment's timers can have a warning or an action due;
    ``None`` when it has no timers at all. ``lifetime_due_at``: the ``max_lifetime`` timer's due
    time, when the deployment has one.

    A lower bound, cheaper than :func:`timers` (no timer is built): each timer that applies is
    due no earlier than the idle stretch's start plus its shortest window (or the API's
    ``deleteTime``), as snoozes, keep-warms and manual scale-ups only move due times later; its
    warnings open at most its longest configured lead before that, and nothing is done earlier.
    The stretch is counted from the earliest the last request can have come, which no timer
    precedes.
    """
    if dep.gone_at is not None or dep.state not in ACTIVE_STATES | {"FAILED"}:
        return None
    anchor = idle_since(dep, last_traffic)
    if earliest_traffic is not None:
        anchor = min(anchor, idle_since(dep, earliest_traffic))
    min_replicas, replicas, active = dep.min_replicas or 0, _current_replicas(dep), dep.state in ACTIVE_STATES
    delete_lead = max(policy.warn_before_delete_s, default=0.0)
    unused = dep.unused_delete_s if dep.unused_delete_s is not None else policy.default_unused_delete_s
    delete_after = min(PLATFORM_UNUSED_DELETE_S, unused) if unused > 0 else PLATFORM_UNUSED_DELETE_S
    earliest = anchor + timedelta(seconds=delete_after - delete_lead)
    api_due = parse_iso(dep.delete_time)
    if api_due is not None:
        earliest = min(earliest, api_due - timedelta(seconds=delete_lead))
    if active and min_replicas == 0 and replicas > 0:
        window = dep.scale_to_zero_s if dep.scale_to_zero_s is not None else DEFAULT_SCALE_TO_ZERO_S
        earliest = min(earliest, anchor + timedelta(seconds=window - policy.warn_before_scale_to_zero_s))
    if active and min_replicas >= 1 and replicas > 0:
        earliest = min(earliest, anchor + timedelta(seconds=policy.idle_paying_after_s))
    if lifetime_due_at is not None:
        earliest = min(earliest, lifetime_due_at - timedelta(seconds=delete_lead))
    # Due times are whole seconds, rounded down.
    return earliest - timedelta(seconds=1)


def _timer_order(timer: Timer) -> tuple[datetime, int]:
    return timer.due, _KIND_RANK[timer.kind]


def _auto_delete(
    dep: DeploymentLike, seen: datetime, earliest: datetime, policy: LifecyclePolicy, postponed: datetime | None
) -> tuple[datetime, str, bool, datetime] | None:
    """(due, source, snoozed, anchor) of the auto-delete timer, or None."""
    candidates: list[tuple[datetime, int, str, bool, datetime]] = []
    api_due = parse_iso(dep.delete_time)
    if api_due is not None:
        # The platform announced its schedule; nothing the bot does moves it.
        # On a tie Fireworks acts anyway: leave it to the platform.
        candidates.append((_whole_seconds(api_due), 0, "api_delete_time", False, seen))
    unused = dep.unused_delete_s if dep.unused_delete_s is not None else policy.default_unused_delete_s
    if unused > 0:
        # The owner's own, shorter policy still applies when Fireworks would wait longer: the
        # earlier of the two deletes it (a soft delete the owner can undo). fwbot deletes only
        # once it has seen no traffic for that long.
        due = _whole_seconds(seen + timedelta(seconds=unused))
        snoozed = postponed is not None and postponed > due
        if snoozed:
            due = _whole_seconds(postponed)  # type: ignore[arg-type]
        candidates.append((due, 1, "bot_policy", snoozed, seen))
    if api_due is None and (dep.min_replicas or 0) == 0:
        # The documented 7-day rule holds even when the API does not report deleteTime; on a tie
        # the bot enforces its own policy. Fireworks' clock may have started at the earliest the
        # last request can have come.
        due = _whole_seconds(earliest + timedelta(seconds=PLATFORM_UNUSED_DELETE_S))
        candidates.append((due, 2, "platform_policy", False, earliest))
    if not candidates:
        return None
    due, _, source, snoozed, anchor = min(candidates)
    return due, source, snoozed, anchor


# -- warnings ---------------------------------------------------------------------------------
def warning_leads(timer: Timer, policy: LifecyclePolicy) -> tuple[float, ...]:
    """The lead times (descending, whole seconds) this timer is warned with.

    A lead is only used if it is at most half the idle stretch (``due - anchor``): with a lead as
    long as the window itself, every burst of traffic would restart the timer inside its warning
    window and post a fresh warning each sweep. When no configured lead fits, half the stretch
    stands in, so the owner is still warned once. ``idle_paying`` has the single lead 0.
    """
    if timer.kind == "idle_paying":
        return (0.0,)
    configured = (
        (policy.warn_before_scale_to_zero_s,) if timer.kind in ("scale_to_zero", "schedule_down")
        else policy.warn_before_delete_s
    )
    if not configured:
        return ()
    half = float(int((timer.due - timer.anchor).total_seconds() / 2))
    fitting = tuple(float(int(lead)) for lead in configured if lead <= half)
    return fitting or (min(float(int(min(configured))), half),)


def _lead_for(timer: Timer, policy: LifecyclePolicy, now: datetime) -> float | None:
    """The one lead time to warn with now, or None when no warning window is open.

    Only the most urgent open lead counts, so a sweep never sends two warnings for one timer; a
    bigger lead missed while the bot was down is replaced by the most urgent one still open.
    """
    remaining = timer.remaining_s(now)
    if timer.kind == "idle_paying":
        # Reported once the stretch reaches the threshold, however late the bot notices.
        return 0.0 if remaining <= 0 else None
    leads = warning_leads(timer, policy)
    if not leads:
        return None
    if remaining <= 0:
        # Past due: the platform has acted (or will any moment). The bot's own deletion waits
        # for a warning, so an overdue bot_policy timer still gets its final notice.
        return leads[-1] if timer.bot_acts else None
    open_leads = [lead for lead in leads if remaining <= lead]
    return min(open_leads) if open_leads else None


def due_warnings(
    timer_list: Iterable[Timer],
    policy: LifecyclePolicy,
    now: datetime,
    already: Iterable[tuple[str, str, str, float]],
) -> list[TimerWarning]:
    """Warnings to post now, never one whose key is in ``already`` (sent or claimed keys).

    A warning for lead ``L`` is due when ``due - L <= now < due``; for several leads only the
    most urgent open one is considered, and if that one was already sent nothing is due (a
    bigger lead is never sent after a smaller one). ``idle_paying`` uses lead 0 and is due once
    ``now >= due``. ``already`` holds ``(deployment_id, timer, due_iso, lead_s)`` keys.
    """
    seen = {warning_key(*k) for k in already}
    out: list[TimerWarning] = []
    for timer in timer_list:
        lead = _lead_for(timer, policy, now)
        if lead is None:
            continue
        w = TimerWarning(timer, lead, timer.channel or policy.alert_channel, now)
        if w.key in seen:
            continue
        # Once a smaller lead went out, a bigger one (e.g. after a restart) would only be noise.
        if any(
            k.deployment_id == timer.deployment_id and k.timer == timer.kind and k.due == timer.due_iso and k.lead_s < lead
            for k in seen
        ):
            continue
        out.append(w)
    return out


def can_wait_until(timer: Timer, policy: LifecyclePolicy, until: datetime) -> bool:
    """Whether a warning about ``timer`` may be held until ``until`` (the end of its reader's quiet
    hours) instead of going out now.

    An idle-paying report can always wait: nothing happens at its due time. A warning of a change
    (scale to zero, a deletion) waits only while its reader, once the quiet hours end, still gets
    the timer's last lead before it is due; otherwise it cannot wait, and goes out at once.
    """
    if timer.kind == "idle_paying":
        return True
    leads = warning_leads(timer, policy)
    last = leads[-1] if leads else 0.0
    return timer.due - timedelta(seconds=last) >= until


def digest(warnings: Iterable[TimerWarning]) -> list[Digest]:
    """Group warnings by channel so each channel gets one message per sweep.

    Order is kept (first appearance of each channel, then the warnings' own order). Warnings with
    no channel at all (no deployment channel and no alert channel) are grouped under ``None``.
    """
    groups: dict[str | None, list[TimerWarning]] = {}
    for w in warnings:
        groups.setdefault(w.channel, []).append(w)
    out = []
    for channel, ws in groups.items():
        threads = {w.timer.thread_ts for w in ws}
        deps = {w.deployment_id for w in ws}
        thread = next(iter(threads)) if len(threads) == 1 and len(deps) == 1 else None
        out.append(Digest(channel, tuple(ws), thread))
    return out


# -- the bot's own actions --------------------------------------------------------------------
def auto_delete_key(deployment_id: str, due: datetime) -> str:
    """Idempotency key of the bot's deletion for one due time (a ``bot_actions`` key)."""
    return f"auto_delete:{deployment_id}:{iso(due)}"


def schedule_key(deployment_id: str, kind: str, due: datetime) -> str:
    """Idempotency key of one scheduled transition (``schedule_down``/``schedule_up``) due at ``due``
    (a ``bot_actions`` key): a restart or a second replica finds it taken."""
    return f"{kind}:{deployment_id}:{iso(_whole_seconds(due))}"


def schedule_actions(dep: DeploymentLike, schedule: RunningSchedule | None, now: datetime, *,
                     postponed: datetime | None = None, done: Iterable[str] = ()) -> list[BotAction]:
    """The transition of the deployment's schedule due now, as a bot action (none while the
    deployment is gone, or when ``done`` has its key: carried out, or cancelled on a re-check)."""
    if schedule is None or dep.gone_at is not None or dep.state in GONE_STATES or dep.state is None:
        return []
    due = due_now(schedule, now, postponed)
    if due is None:
        return []
    transition, at = due
    kind = f"schedule_{transition.kind}"
    key = schedule_key(dep.id, kind, at)
    if key in set(done):
        return []
    reason = f"{transition.kind} at {iso(transition.at)} ({schedule.zone_name})"
    return [BotAction(kind, dep.id, _whole_seconds(at), key, reason)]  # type: ignore[arg-type]


def lifetime_delete_key(deployment_id: str, due: datetime) -> str:
    """Idempotency key of the bot's deletion at the end of a lifetime (a ``bot_actions`` key)."""
    return f"lifetime_delete:{deployment_id}:{iso(due)}"


def action_key(timer: Timer) -> str:
    """The ``bot_actions`` key of what the bot does when this (bot-acting) timer comes due."""
    if timer.kind == "max_lifetime":
        return lifetime_delete_key(timer.deployment_id, timer.due)
    return auto_delete_key(timer.deployment_id, timer.due)


def keep_warm_revert_key(deployment_id: str, until: datetime) -> str:
    """Idempotency key of reverting one keep-warm (a ``bot_actions`` key)."""
    return f"keep_warm_revert:{deployment_id}:{iso(_whole_seconds(until))}"


def due_actions(
    dep: DeploymentLike,
    timer_list: Sequence[Timer],
    policy: LifecyclePolicy,
    now: datetime,
    *,
    warnings_sent: Mapping[tuple[str, str, str, float], datetime] | None = None,
    keep_warm_until: datetime | None = None,
    done: Iterable[str] = (),
) -> list[BotAction]:
    """What the bot must do itself now for one deployment.

    ``timer_list`` must be computed from the current record and last traffic (that is the
    re-check: traffic since the warning moved the timer, so nothing is due). Auto-delete happens
    only for ``bot_policy`` timers, only while the deployment still exists, and only once the
    owner has had a warning for this very due time at least the smallest lead
    (:func:`warning_leads`) ago
    (``warnings_sent`` maps sent keys to their send time). Keep-warm is reverted once
    ``keep_warm_until`` has passed. ``done`` holds keys of actions already carried out.
    """
    finished = set(done)
    if dep.gone_at is not None or dep.state in GONE_STATES or dep.state is None:
        return []
    out: list[BotAction] = []
    sent = {warning_key(*k): at for k, at in (warnings_sent or {}).items()}
    for timer in timer_list:
        if timer.deployment_id != dep.id or not timer.bot_acts or now < timer.due:
            continue
        notices = [
            at for k, at in sent.items() if (k.deployment_id, k.timer, k.due) == (dep.id, timer.kind, timer.due_iso)
        ]
        leads = warning_leads(timer, policy)
        notice_ok = not leads or any((now - at).total_seconds() >= leads[-1] for at in notices)
        key = action_key(timer)
        if notice_ok and key not in finished:
            if timer.kind == "max_lifetime":
                out.append(BotAction("lifetime_delete", dep.id, timer.due, key,
                                     f"lived since {iso(timer.anchor)}, its maximum lifetime"))
            else:
                out.append(BotAction("auto_delete", dep.id, timer.due, key, f"unused since {iso(timer.anchor)}"))
    if keep_warm_until is not None and keep_warm_until <= now:
        key = keep_warm_revert_key(dep.id, keep_warm_until)
        if key not in finished:
            out.append(BotAction("keep_warm_revert", dep.id, _whole_seconds(keep_warm_until), key, "keep-warm ended"))
    return out


# -- deletions --------------------------------------------------------------------------------
DeletedBy = Literal["fwbot", "person", "fireworks", "outside"]
# The audit action of a deletion fwbot did not make but saw (actor "fwbot", the observer).
DELETION_SEEN = "deletion seen"
# How late after its announced deleteTime a deletion still counts as Fireworks' own.
PLATFORM_DELETE_SLACK_S = 3600.0


@dataclass(frozen=True)
class Deletion:
    """Who or what deleted a deployment, when and why.

    ``by``: ``fwbot`` (its own unused-deletion), ``person`` (``user``, through fwbot),
    ``fireworks`` (its own unused-deletion) or ``outside`` (firectl, the console or the API).
    ``why`` continues a sentence naming who ("after 7d without traffic …"). ``soft``: Undelete can
    bring it back until Fireworks purges it.
    """

    by: DeletedBy
    at: datetime
    why: str = ""
    user: str | None = None
    soft: bool = True
    approved_by: str | None = None


def deletion_seen(
    before: DeploymentLike,
    after: DeploymentLike,
    *,
    noticed_at: datetime,
    seen_idle_since: datetime | None,
    status_message: str | None = None,
) -> Deletion:
    """A deletion fwbot did not make, as the reconcile loop saw it: ``before`` is the record while
    it was live, ``after`` the record now (deleting or deleted; gone when Fireworks no longer
    lists it). Fireworks' own unused-deletion is told apart by its announced ``deleteTime`` (or,
    when it announced none, its 7-day rule for min-0 deployments) having come."""
    soft = after.gone_at is None and after.state in GONE_STATES
    deleted = parse_iso(after.delete_time) if soft else None
    at = deleted if deleted is not None and deleted <= noticed_at else noticed_at
    idle_s = (at - seen_idle_since).total_seconds() if seen_idle_since is not None else None
    scheduled = parse_iso(before.delete_time)
    platform = (
        scheduled is not None and at >= scheduled - timedelta(seconds=PLATFORM_DELETE_SLACK_S)
    ) or (
        scheduled is None and (before.min_replicas or 0) == 0 and idle_s is not None
        and idle_s >= PLATFORM_UNUSED_DELETE_S
    )
    said = (status_message or "").strip()
    told = f'; Fireworks says "{said}"' if said and said.lower() not in ("deleted", "ok") else ""
    if platform and soft:
        idle = f"after {humanize(idle_s)} without traffic" if idle_s is not None and idle_s > 0 else "unused"
        return Deletion("fireworks", at, f"{idle} (its own rule for unused deployments{told})", soft=True)
    how = "with firectl, the console or the API" if soft else "for good (hard-deleted or purged)"
    return Deletion("outside", at, f"{how}{told}", soft=soft)


def deletion_from_audit(rows: Sequence[Mapping[str, Any]]) -> Deletion | None:
    """The deletion that stands for a deployment, from its audit trail (newest row first): fwbot's
    own, a person's through fwbot, or one fwbot saw (:data:`DELETION_SEEN`). ``None`` when there is
    none, or an undelete (or a new create) came after it."""
    for row in rows:
        if row.get("result") != "ok":
            continue
        action = row.get("action")
        if action in ("undelete", "deploy"):
            return None
        try:
            request = json.loads(row.get("request") or "{}") or {}
        except ValueError:
            request = {}
        request = request if isinstance(request, dict) else {}
        at = parse_iso(row.get("at"))
        if at is None:
            continue
        if action == "auto-delete":
            return Deletion("fwbot", at, str(request.get("why") or "after its unused limit"))
        if action == "delete":
            return Deletion("person", at, "through fwbot", user=row.get("actor"), soft=not request.get("hard"),
                            approved_by=request.get("approved_by") or None)
        if action == DELETION_SEEN:
            by = request.get("by") if request.get("by") in ("fireworks", "outside") else "outside"
            return Deletion(by, parse_iso(request.get("deleted_at")) or at, str(request.get("why") or ""),
                            soft=bool(request.get("soft", True)))
    return None


# -- stale clicks -----------------------------------------------------------------------------
def _when(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def stale_reason(
    key: tuple[str, str, str, float],
    current: Sequence[Timer],
    dep: DeploymentLike | None,
    last_traffic: datetime | None,
    now: datetime,
    *,
    handled: str | None = None,
    warned_at: datetime | None = None,
    show_time: Callable[[datetime], str] = _when,
) -> str | None:
    """Why a click on the warning ``key`` must not be executed, or None when it still holds.

    ``show_time`` writes the times it names (the reader's local time with its zone, where the
    caller knows the reader; UTC otherwise).

    ``current`` are the deployment's timers computed now; ``handled`` is the recorded resolution
    when someone already acted on the warning; ``warned_at`` is when it was posted (without it,
    the opening of its warning window stands in).
    """
    k = warning_key(*key)
    if handled:
        return f"already handled — {handled}"
    if dep is None or dep.gone_at is not None or dep.state in GONE_STATES:
        return "the deployment is gone"
    due = parse_iso(k.due)
    assert due is not None
    timer = next((t for t in current if t.kind == k.timer and t.deployment_id == k.deployment_id), None)
    # The warning went out no earlier than its window opened, and its idle stretch began before
    # that; traffic after it means the stretch the warning was about has ended.
    sent_no_earlier = warned_at or due - timedelta(seconds=k.lead_s)
    if (
        k.timer != "max_lifetime"  # a lifetime is a hard cap: traffic does not move it
        and last_traffic is not None
        and last_traffic > sent_no_earlier
        and (timer is None or timer.due != due)
    ):
        return f"traffic resumed at {show_time(last_traffic)} — no action needed"
    if k.timer == "scale_to_zero" and dep.replicas == 0:
        return "already handled — it has scaled to zero"
    if timer is None:
        return "already handled — this timer is no longer running"
    if timer.due != due:
        return f"the due time moved to {show_time(timer.due)}"
    # A scale to zero is timed from the earliest the last request can have come: past that time
    # it may still be up, and keeping it warm still spares the cold start (once it is down, the
    # replicas check above answers).
    if k.timer not in ("idle_paying", "scale_to_zero") and now >= due and not timer.bot_acts:
        return "already handled — the due time has passed"
    return None
