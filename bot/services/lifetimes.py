"""Maximum lifetimes and quiet hours: what the team policy says for one deployment's owner.

``max_lifetime`` and ``quiet_hours``/``working_days`` are settings of the policy in force
(bot/services/policy.py) for the deployment's owner in its channel (a deployment without an owner
gets the channel's and the defaults'). This module turns them into what the lifecycle engine, the
tracking message and the jobs that send notices need: a :class:`~bot.core.lifecycle.Lifetime`
(with the latest renewal on record), and until when a notice to someone is held.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.core.lifecycle import DeploymentLike, Lifetime
from bot.core.policy import EffectivePolicy, in_quiet_hours, next_working_moment
from bot.services.container import Services
from bot.services.people import SlackDirectory
from bot.services.policy import policy_book


def _sets(services: Services, name: str) -> bool:
    """Whether any part of the policy in force sets ``name`` (else nothing needs asking)."""
    policy = policy_book(services).policy
    return name in policy.defaults.values or any(name in r.values for r in policy.rules)


def effective_for(services: Services, owner: str | None, channel: str | None) -> EffectivePolicy:
    """The policy for a deployment's owner in its channel (the defaults' and the channel's alone
    without an owner)."""
    return policy_book(services).for_person(owner or "", channel)


def lifetimes_for(services: Services, deps: Iterable[DeploymentLike],
                  renewals: dict[str, tuple[datetime, str]] | None = None) -> dict[str, Lifetime]:
    """The lifetime of each deployment that has one (its limit, the rule, its latest renewal).

    ``renewals`` (``store.latest_renewals()``) is read from the store when not given."""
    deps = list(deps)
    if not deps or not _sets(services, "max_lifetime"):
        return {}
    if renewals is None:
        renewals = services.store.latest_renewals(deps[0].id if len(deps) == 1 else None)
    by_place: dict[tuple[str | None, str | None], EffectivePolicy] = {}
    out: dict[str, Lifetime] = {}
    for dep in deps:
        place = (dep.owner, dep.channel)
        if place not in by_place:
            by_place[place] = effective_for(services, dep.owner, dep.channel)
        setting = by_place[place].max_lifetime
        if setting.value is None or setting.value <= 0:
            continue
        renewed_at, renewed_by = renewals.get(dep.id, (None, None))
        out[dep.id] = Lifetime(float(setting.value), setting.cite(), renewed_at, renewed_by)
    return out


def lifetime_for(services: Services, dep: DeploymentLike) -> Lifetime | None:
    return lifetimes_for(services, [dep]).get(dep.id)


# -- quiet hours ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Quiet:
    """Someone's quiet hours right now: until when (their next working moment) and in which zone."""

    until: datetime
    tz: str


def _zone(name: str | None, fallback: str) -> tuple[ZoneInfo, str]:
    for candidate in (name, fallback, "UTC"):
        if not candidate:
            continue
        try:
            return ZoneInfo(candidate), candidate
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return ZoneInfo("UTC"), "UTC"


def quiet_now(services: Services, person: str | None, channel: str | None, now: datetime, *,
              directory: SlackDirectory | None = None) -> Quiet | None:
    """``None`` when a notice to ``person`` (a deployment's owner; ``None`` for nobody in
    particular) may go out now; else until when it waits: their next working moment, in their
    Slack timezone (else ``FWBOT_TIMEZONE``)."""
    if not (_sets(services, "quiet_hours") or _sets(services, "working_days")):
        return None
    effective = effective_for(services, person, channel)
    if effective.quiet_hours.value is None and effective.working_days.value is None:
        return None
    directory = directory or SlackDirectory(services)
    zone, name = _zone(directory.tz(person) if person else None, services.settings.timezone)
    if not in_quiet_hours(effective, now, zone):
        return None
    until = next_working_moment(effective, now, zone)
    if until is None:  # no working moment in a week: holding it would mean never sending it
        return None
    return Quiet(until, name)
