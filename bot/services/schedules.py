"""Where each deployment's off-hours schedule stands: its zone (the owner's Slack timezone, else
``FWBOT_TIMEZONE``) and how far fwbot has carried it out. The lifecycle engine times and runs the
transitions (bot/services/lifecycle.py); ``/fw schedule`` is in bot/services/schedule_commands.py."""

from __future__ import annotations

from datetime import datetime

from bot.core.schedules import RunningSchedule, ScheduleError, from_stored, zone_of
from bot.services.container import Services
from bot.services.people import SlackDirectory
from storage.schedules import ScheduleRow


def running(services: Services, directory: SlackDirectory, owner: str | None, row: ScheduleRow | None,
            progress: datetime | None) -> RunningSchedule | None:
    """The schedule ``row`` in force, in the owner's zone, counted from when it was set or from the
    last transition fwbot took on (``progress``), whichever is later."""
    if row is None:
        return None
    try:
        schedule = from_stored(row.down, row.up, row.up_min)
    except ScheduleError:  # only text /fw schedule wrote is stored; never fail a sweep on one row
        return None
    since = max(row.set_at, progress) if progress is not None else row.set_at
    zone = zone_of(directory.tz(owner), services.settings.timezone)
    return RunningSchedule(schedule, zone, since)


def running_of(services: Services, directory: SlackDirectory, deployment_id: str,
               owner: str | None) -> RunningSchedule | None:
    """:func:`running` for one deployment, read from the store."""
    store = services.store
    return running(services, directory, owner, store.schedule(deployment_id),
                   store.schedule_progress(deployment_id).get(deployment_id))
