"""Where each deployment's off-hours schedule stands: its zone (the owner's Slack timezone, else
``FWBOT_TIMEZONE``) and how far fwbot has carried it out. The lifecycle engine times and runs the
transitions (bot/services/lifecycle.py); ``/fw schedule`` is in bot/services/schedule_commands.py.

A deployment's schedule is its own (``/fw schedule``, a row in ``schedules``) or, without one, the
``schedule`` setting of the team policy for its owner in its channel (bot/core/policy.py). A
policy's schedule counts from when fwbot first saw that rule's schedule in force (kept in ``kv``,
so a restart does not move it) or from the deployment's creation, whichever is later: a policy
loaded at 20:00 does not carry out the 19:00 scale-down it would have asked for.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from bot.core.clock import iso, parse_iso
from bot.core.lifecycle import DeploymentLike, lifetime_start
from bot.core.policy import Policy
from bot.core.schedules import (
    RunningSchedule,
    Schedule,
    ScheduleError,
    from_stored,
    next_transition,
    schedule_text,
    zone_of,
)
from bot.services.container import Services
from bot.services.people import SlackDirectory
from bot.services.policy import policy_book
from storage.schedules import ScheduleRow

PolicySchedule = tuple[Schedule, str]  # the schedule and the rule it comes from ("channel C0…")
_KV_PREFIX = "policy-schedule-since:"


class PolicyScheduleStarts:
    """When fwbot first saw each rule's schedule in force (one per process; :func:`starts`).

    Recorded once in ``kv`` under the rule and the schedule's text (the first replica to see it
    wins), and remembered here, so asking again costs nothing. A changed schedule is a new one."""

    def __init__(self, services: Services) -> None:
        self.s = services
        self._known: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def since(self, source: str, schedule: Schedule, now: datetime | None = None) -> datetime:
        key = f"{_KV_PREFIX}{source}:{schedule_text(schedule)}"
        with self._lock:
            known = self._known.get(key)
        if known is not None:
            return known
        now = now or self.s.clock.now()
        value = parse_iso(self.s.store.claim_kv(key, iso(now), now)) or now
        with self._lock:
            self._known[key] = value
        return value

    def note(self, policy: Policy, now: datetime | None = None) -> None:
        """Record every schedule the policy in force sets (the sweep calls this each time, so a
        rule's schedule counts from about when it was loaded, whether or not a deployment asked)."""
        for rule in (policy.defaults, *policy.rules):
            if "schedule" in rule.values:
                self.since(rule.source, rule.values["schedule"], now)


def starts(services: Services) -> PolicyScheduleStarts:
    return services.shared(PolicyScheduleStarts)


def policy_sets_schedule(services: Services) -> bool:
    """Whether any part of the policy in force sets a schedule (else nothing needs asking)."""
    policy = policy_book(services).policy
    return "schedule" in policy.defaults.values or any("schedule" in r.values for r in policy.rules)


def policy_schedules_for(services: Services,
                         places: Iterable[tuple[str, str | None, str | None]]) -> dict[str, PolicySchedule]:
    """``deployment → (schedule, source)`` for each ``(id, owner, channel)`` the policy gives a
    schedule (looked up once per owner and channel)."""
    if not policy_sets_schedule(services):
        return {}
    book = policy_book(services)
    by_place: dict[tuple[str | None, str | None], PolicySchedule | None] = {}
    out: dict[str, PolicySchedule] = {}
    for dep_id, owner, channel in places:
        if (owner, channel) not in by_place:
            setting = book.for_person(owner or "", channel).schedule
            by_place[(owner, channel)] = (setting.value, setting.source or "defaults") if setting.is_set else None
        found = by_place[(owner, channel)]
        if found is not None:
            out[dep_id] = found
    return out


def running(services: Services, directory: SlackDirectory, dep: DeploymentLike, row: ScheduleRow | None,
            progress: datetime | None, *, policy: PolicySchedule | None | bool = True) -> RunningSchedule | None:
    """The schedule in force for ``dep``, in the owner's zone: its own ``row``, counted from when it
    was set, else the policy's (``policy``: ``True`` looks it up), counted from when that rule's
    schedule took effect or the deployment was created; either way from the last transition fwbot
    took on (``progress``) when that is later."""
    if row is not None:
        try:
            schedule = from_stored(row.down, row.up, row.up_min)
        except ScheduleError:  # only text /fw schedule wrote is stored; never fail a sweep on one row
            return None
        return RunningSchedule(schedule, _zone(services, directory, dep.owner), _later(row.set_at, progress))
    if policy is True:
        policy = policy_schedules_for(services, [(dep.id, dep.owner, dep.channel)]).get(dep.id)
    if not policy:
        return None
    schedule, source = policy
    since = _later(max(starts(services).since(source, schedule), lifetime_start(dep)), progress)
    return RunningSchedule(schedule, _zone(services, directory, dep.owner), since, source)


def _zone(services: Services, directory: SlackDirectory, owner: str | None):
    """The owner's zone; asked only of deployments with a schedule (a Slack lookup may be behind it)."""
    return zone_of(directory.tz(owner), services.settings.timezone)


def _later(a: datetime, b: datetime | None) -> datetime:
    return a if b is None or b <= a else b


def running_of(services: Services, directory: SlackDirectory, dep: DeploymentLike) -> RunningSchedule | None:
    """:func:`running` for one deployment, read from the store."""
    store = services.store
    return running(services, directory, dep, store.schedule(dep.id),
                   store.schedule_progress(dep.id).get(dep.id))


def policy_schedule_due(services: Services, directory: SlackDirectory, fields: Iterable[DeploymentLike],
                        progress: Mapping[str, datetime], now: datetime, lead_s: float) -> set[str]:
    """Of ``fields`` (a sweep's cheap columns of deployments without a schedule of their own), the
    ids a policy schedule may need something from now: its next transition, or the warning
    ``lead_s`` before it, has come. The others are left out of the sweep's reading of records.

    A keep-warm or snooze only moves a scale-down later, so this is a lower bound like
    ``quiet_until``; it costs one small read of owners and channels, and only when the policy
    sets a schedule somewhere."""
    if not policy_sets_schedule(services):
        return set()
    starts(services).note(policy_book(services).policy, now)
    places = services.store.deployment_places()
    fields = [f for f in fields if f.id in places]
    found = policy_schedules_for(services, [(f.id, *places[f.id]) for f in fields])
    zones: dict[str | None, object] = {}
    due = set()
    for f in fields:
        if f.id not in found:
            continue
        schedule, source = found[f.id]
        owner = places[f.id][0]
        if owner not in zones:
            zones[owner] = zone_of(directory.tz(owner), services.settings.timezone)
        since = _later(max(starts(services).since(source, schedule, now), lifetime_start(f)), progress.get(f.id))
        nxt = next_transition(schedule, zones[owner], since)  # type: ignore[arg-type]
        if nxt is not None and now >= nxt.at - timedelta(seconds=lead_s + 1):
            due.add(f.id)
    return due
