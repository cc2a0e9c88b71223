"""Off-hours schedules of a deployment: parse them, and find their transitions in a timezone.

A schedule scales a deployment down (min replicas 0, replicas 0) at one wall-clock time on some
weekdays and, optionally, back up (min replicas ``up_min``) at another::

    down 19:00 Mon-Fri, up 08:00 Mon-Fri (min 1)

Times are wall-clock times in a zone (the owner's Slack timezone, else ``FWBOT_TIMEZONE``) and
follow its daylight-saving rules: a time the clocks skip (02:30 on a spring-forward night) happens
when they jump, a time they pass twice (the autumn night) happens the first time. Everything here
is a pure function of the schedule, the zone and the times given.

Which transition is due is level-triggered: of the transitions after ``since`` (when the schedule
was set, or the last transition fwbot carried out) and up to ``now``, only the latest counts — a
scale-down missed while fwbot was down is not done after the morning's scale-up has passed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.core.clock import DAYS, local_moment  # the one rule for wall times across DST
from bot.core.errors import UserFacingError

TransitionKind = Literal["down", "up"]
EVERY_DAY = frozenset(range(7))
WEEKDAYS = frozenset(range(5))
WEEKEND = frozenset({5, 6})
UP_MIN_LIMIT = 100
# The search for the next transition looks this far ahead: any day set repeats within a week.
_HORIZON_DAYS = 8

_DAY_WORDS = {name.lower(): i for i, name in enumerate(DAYS)} | {
    full: i for i, full in enumerate(("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"))
} | {"tues": 1, "wednes": 2, "thur": 3, "thurs": 3}
_SETS = {"daily": EVERY_DAY, "everyday": EVERY_DAY, "every-day": EVERY_DAY, "weekdays": WEEKDAYS,
         "weekends": WEEKEND, "weekend": WEEKEND}
_TIME_RE = re.compile(r"^(\d{1,2})(?::(\d{2}))?\Z")
_EXAMPLE = "`19:00 Mon-Fri`, `08:30 weekdays`, `22:00 daily` or `18:00 Fri`"


class ScheduleError(UserFacingError, ValueError):
    """A schedule that does not parse, with a message for the person who typed it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Moment:
    """A wall-clock time on some weekdays (0 = Monday)."""

    at: time
    days: frozenset[int] = EVERY_DAY

    def __str__(self) -> str:
        return f"{self.at:%H:%M} {days_text(self.days)}"


@dataclass(frozen=True)
class Schedule:
    """Scale to zero at ``down``; back to min replicas ``up_min`` at ``up`` (when there is one)."""

    down: Moment
    up: Moment | None = None
    up_min: int = 1

    def describe(self, zone: str) -> str:
        """In words, with its zone: "scale to 0 at 19:00 Mon–Fri, back to min 1 at 08:00 Mon–Fri
        (Europe/Berlin)"."""
        text = f"scale to 0 at {_moment_words(self.down)}"
        if self.up is not None:
            text += f", back to min {self.up_min} at {_moment_words(self.up)}"
        else:
            text += " (no scale-up: it stays at 0 until someone scales it)"
        return f"{text} ({zone})"


@dataclass(frozen=True)
class Transition:
    """One transition of a schedule: ``at`` is the instant (UTC) its wall-clock time comes."""

    kind: TransitionKind
    at: datetime


# -- parsing ------------------------------------------------------------------------------------
def parse_moment(text: str, flag: str = "--down") -> Moment:
    """``HH:MM [days]``: days as ``Mon-Fri`` (a range, which may wrap: ``Fri-Mon``), ``Sat,Sun``,
    ``weekdays``, ``weekends`` or ``daily`` (the default). Raises :class:`ScheduleError`."""
    words = text.replace(",", " , ").split()
    if not words:
        raise ScheduleError(f"`{flag}` needs a time, e.g. {_EXAMPLE}")
    at = _time(words[0], flag)
    rest = "".join(words[1:]).replace("–", "-").replace("—", "-")
    return Moment(at, _days(rest, flag) if rest else EVERY_DAY)


def _time(word: str, flag: str) -> time:
    m = _TIME_RE.match(word.strip())
    if not m:
        raise ScheduleError(f"`{flag}` starts with a time of day such as `19:00` (24-hour clock), not `{word}`")
    hour, minute = int(m[1]), int(m[2] or 0)
    if hour > 23 or minute > 59:
        raise ScheduleError(f"`{flag}`: `{word}` is not a time of day; use 00:00 to 23:59")
    return time(hour, minute)


def _day(word: str, flag: str) -> int:
    day = _DAY_WORDS.get(word.lower())
    if day is None:
        raise ScheduleError(f"`{flag}`: `{word}` is not a day; use {', '.join(DAYS)}, a range such as `Mon-Fri`, "
                            "`weekdays`, `weekends` or `daily`")
    return day


def _days(text: str, flag: str) -> frozenset[int]:
    out: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise ScheduleError(f"`{flag}` has an empty day in `{text}`; separate days with single commas")
        if part.lower() in _SETS:
            out |= _SETS[part.lower()]
            continue
        first, dash, last = part.partition("-")
        start = _day(first, flag)
        if not dash:
            out.add(start)
            continue
        end = _day(last, flag)
        day = start
        while True:  # a range may wrap past Sunday: Fri-Mon is Fri, Sat, Sun, Mon
            out.add(day)
            if day == end:
                break
            day = (day + 1) % 7
    return frozenset(out)


def days_text(days: frozenset[int]) -> str:
    """Days as written back: ``daily``, ``Mon-Fri``, ``Sat,Sun``, ``Mon,Wed-Fri``."""
    if days == EVERY_DAY:
        return "daily"
    runs: list[tuple[int, int]] = []
    for d in sorted(days):
        if runs and runs[-1][1] == d - 1:
            runs[-1] = (runs[-1][0], d)
        else:
            runs.append((d, d))
    parts = [DAYS[a] if a == b else f"{DAYS[a]},{DAYS[b]}" if b == a + 1 else f"{DAYS[a]}-{DAYS[b]}"
             for a, b in runs]
    return ",".join(parts)


def _moment_words(m: Moment) -> str:
    days = days_text(m.days)
    when = {"daily": "every day", "Mon-Fri": "Mon–Fri", "Sat,Sun": "Sat and Sun"}.get(days, days.replace("-", "–"))
    return f"{m.at:%H:%M} {when}"


def make_schedule(down: str, up: str | None = None, up_min: int | None = None) -> Schedule:
    """A schedule from the text of ``--down``, ``--up`` and ``--up-min``; :class:`ScheduleError` when
    they do not make one."""
    if up is None and up_min is not None:
        raise ScheduleError("`--up-min` says how many replicas to keep from the `--up` time on; give `--up` too, "
                            "e.g. `--up \"08:00 Mon-Fri\" --up-min 1`")
    if up_min is not None and not 1 <= up_min <= UP_MIN_LIMIT:
        raise ScheduleError(f"`--up-min` is the min replica count from the `--up` time on: between 1 and "
                            f"{UP_MIN_LIMIT} (0 would not bring it back up), not {up_min}")
    down_m = parse_moment(down, "--down")
    up_m = parse_moment(up, "--up") if up is not None else None
    if up_m is not None and up_m.at == down_m.at and up_m.days & down_m.days:
        raise ScheduleError(f"`--down` and `--up` are both at {down_m.at:%H:%M} on "
                            f"{days_text(up_m.days & down_m.days)}; give them different times")
    return Schedule(down_m, up_m, up_min if up_min is not None else 1)


_POLICY_RE = re.compile(
    r"^\s*down\s+(?P<down>.+?)(?:\s*[,;]?\s+up\s+(?P<up>.+?))?"
    r"(?:\s*[,;]?\s*\(?\s*min\s+(?P<min>\S+?)\s*\)?)?\s*\Z", re.IGNORECASE)


def parse_schedule_text(text: str) -> Schedule:
    """A whole schedule in one line, as a policy file spells it (and :func:`schedule_text` writes
    it): ``down 19:00 Mon-Fri, up 08:00 Mon-Fri (min 1)``; the up part and its min are optional.
    The times and days are read as ``/fw schedule``'s ``--down``/``--up``/``--up-min`` are."""
    m = _POLICY_RE.match(text) if isinstance(text, str) else None
    if not m:
        raise ScheduleError('write it as "down 19:00 Mon-Fri, up 08:00 Mon-Fri" (the up part is optional; '
                            'add "(min 2)" to come back up with 2 replicas)')
    up_min = None
    if m["min"] is not None:
        if not m["min"].isdigit():
            raise ScheduleError(f"the min replicas after the up time must be a whole number, not `{m['min']}`")
        up_min = int(m["min"])
    return make_schedule(m["down"].strip().rstrip(",;").strip(),
                         m["up"].strip().rstrip(",;").strip() if m["up"] else None, up_min)


def schedule_text(schedule: Schedule) -> str:
    """The schedule in the one-line form :func:`parse_schedule_text` reads."""
    text = f"down {schedule.down}"
    if schedule.up is not None:
        text += f", up {schedule.up}" + (f" (min {schedule.up_min})" if schedule.up_min != 1 else "")
    return text


def stored(schedule: Schedule) -> dict[str, str | int | None]:
    """The schedule as the ``schedules`` table keeps it (text that :func:`from_stored` reads back)."""
    return {"down": str(schedule.down), "up": str(schedule.up) if schedule.up else None, "up_min": schedule.up_min}


def from_stored(down: str, up: str | None, up_min: int | None) -> Schedule:
    return Schedule(parse_moment(down), parse_moment(up, "--up") if up else None, int(up_min or 1))


def zone_of(name: str | None, fallback: str = "UTC") -> ZoneInfo:
    """The zone a schedule runs in; an unknown name falls back (Slack's zones are IANA names)."""
    for candidate in (name, fallback, "UTC"):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


# -- transitions --------------------------------------------------------------------------------
def occurrences(moment: Moment, zone: ZoneInfo, start: datetime, end: datetime) -> Iterator[datetime]:
    """The instants (UTC, whole seconds) in ``(start, end]`` at which ``moment`` comes in ``zone``."""
    first = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date() + timedelta(days=1)
    day = first
    while day <= last:
        if day.weekday() in moment.days:
            at = _instant(day, moment.at, zone)
            if start < at <= end:
                yield at
        day += timedelta(days=1)


def _instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    return local_moment(datetime.combine(day, at), zone).astimezone(UTC)


def transitions(schedule: Schedule, zone: ZoneInfo, start: datetime, end: datetime) -> list[Transition]:
    """Every transition in ``(start, end]``, in order (a down and an up at one instant: down first)."""
    out = [Transition("down", t) for t in occurrences(schedule.down, zone, start, end)]
    if schedule.up is not None:
        out += [Transition("up", t) for t in occurrences(schedule.up, zone, start, end)]
    return sorted(out, key=lambda t: (t.at, t.kind != "down"))


def next_transition(schedule: Schedule, zone: ZoneInfo, after: datetime,
                    kind: TransitionKind | None = None) -> Transition | None:
    """The first transition (of ``kind``, if given) after ``after``; ``None`` only for a schedule with
    no days."""
    found = [t for t in transitions(schedule, zone, after, after + timedelta(days=_HORIZON_DAYS))
             if kind is None or t.kind == kind]
    return found[0] if found else None


def due_transition(schedule: Schedule, zone: ZoneInfo, since: datetime, now: datetime) -> Transition | None:
    """The transition to carry out now: the latest one in ``(since, now]``, or ``None``.

    Earlier ones in that stretch are superseded by it (a scale-down missed overnight is not done
    once the morning's scale-up has come). Only the last eight days are looked at.
    """
    start = max(since, now - timedelta(days=_HORIZON_DAYS))
    found = transitions(schedule, zone, start, now)
    return found[-1] if found else None


@dataclass(frozen=True)
class RunningSchedule:
    """A deployment's schedule where it stands: the zone it runs in, and ``since`` — when it was
    set or when fwbot last carried out one of its transitions, whichever is later. Transitions up
    to ``since`` are done (or were never due)."""

    schedule: Schedule
    zone: ZoneInfo
    since: datetime
    source: str | None = None  # the policy rule it comes from ("channel C0…"); None: the deployment's own

    @property
    def zone_name(self) -> str:
        return self.zone.key

    @property
    def from_policy(self) -> bool:
        return self.source is not None

    def describe(self) -> str:
        text = self.schedule.describe(self.zone_name)
        return f"{text}, from the team policy ({self.source})" if self.source else text

    def next(self, after: datetime, kind: TransitionKind | None = None) -> Transition | None:
        return next_transition(self.schedule, self.zone, max(after, self.since), kind)


def postponed_down(sched: RunningSchedule, postponed: datetime | None) -> tuple[datetime, bool] | None:
    """When fwbot next scales the deployment down, and whether a keep-warm or snooze moved it.

    A keep-warm or snooze that holds past a scale-down postpones it to when it ends; one that
    still holds when the next scale-up comes skips that night altogether.
    """
    after = sched.since
    for _ in range(3):
        down = next_transition(sched.schedule, sched.zone, after, "down")
        if down is None:
            return None
        if postponed is None or postponed <= down.at:
            return down.at, False
        up = next_transition(sched.schedule, sched.zone, down.at, "up")
        if up is None or postponed < up.at:
            return postponed, True
        after = postponed
    return None


def due_now(sched: RunningSchedule, now: datetime, postponed: datetime | None) -> tuple[Transition, datetime] | None:
    """The transition fwbot carries out now and the time it counts as due (later than the
    transition's own when a keep-warm or snooze postponed a scale-down), or ``None``."""
    t = due_transition(sched.schedule, sched.zone, sched.since, now)
    if t is None:
        return None
    if t.kind == "down" and postponed is not None and postponed > t.at:
        if now < postponed:
            return None  # kept warm or snoozed: wait (a scale-up that comes first supersedes it)
        return t, postponed
    return t, t.at


def is_days_text(text: str) -> bool:
    """Whether ``text`` is only days (``Mon-Fri``, ``Sat,Sun``, ``weekdays``): what may follow a
    time unquoted (``--down 19:00 Mon-Fri``)."""
    try:
        _days(text.replace("–", "-").replace("—", "-"), "")
    except ScheduleError:
        return False
    return bool(text.strip())
