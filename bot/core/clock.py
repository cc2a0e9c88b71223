"""The one clock of fwbot.

Every piece of time-dependent logic takes a ``Clock`` (or a plain ``now`` value) so tests drive
time explicitly instead of sleeping through real windows.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock that only moves when told to. Thread-safe."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float = 0, **kwargs: float) -> datetime:
        with self._lock:
            self._now += timedelta(seconds=seconds, **kwargs)
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = when


def iso(dt: datetime | None) -> str | None:
    """Times are stored as RFC3339 UTC text, which sorts correctly as text."""
    if dt is None:
        return None
    if dt.tzinfo is not UTC:
        dt = dt.astimezone(UTC)
    return dt.isoformat(timespec="microseconds")[:-6] + "Z"  # "+00:00" → "Z"


def parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    # Python 3.11 reads a trailing "Z" itself.
    return datetime.fromisoformat(text)


DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")  # index = datetime.weekday()


def local_moment(naive: datetime, tz: ZoneInfo) -> datetime:
    """The first moment in ``tz`` whose wall clock reads ``naive`` or later.

    That is ``naive`` itself (its first occurrence, when the clocks go back), or, for a wall time
    skipped when the clocks go forward, the end of the gap: quiet hours ending at 02:30 on such a
    night end at 03:00.
    """
    moment = naive.replace(tzinfo=tz).astimezone(UTC)
    if moment.astimezone(tz).replace(tzinfo=None) == naive:
        return moment.astimezone(tz)
    minute = timedelta(minutes=1)  # in a gap: step back (in UTC) to where the wall clock jumped
    while (moment - minute).astimezone(tz).replace(tzinfo=None) >= naive:
        moment -= minute
    return moment.astimezone(tz)
