"""The simulators' clock: the system's, or one moved only when told (``POST /_sim/clock``).

The simulators stand in for servers fwbot does not own, so they share no code with fwbot; any
object with ``now()`` (fwbot's test clock included) can drive them.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


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


_GO_DURATION = re.compile(r"(?:(\d+(?:\.\d*)?)h)?(?:(\d+(?:\.\d*)?)m(?!s))?(?:(\d+(?:\.\d*)?)s)?")


def parse_hours_minutes_seconds(text: str) -> float:
    """``168h``, ``90m``, ``1h30m``, ``45s`` or ``0`` as seconds (the ``--auto-delete-after`` flag)."""
    m = _GO_DURATION.fullmatch(text.strip())
    if text.strip() == "0":
        return 0.0
    if not text.strip() or m is None or not any(m.groups()):
        raise ValueError(f"invalid duration {text!r}: use h, m and s, e.g. 168h, 90m or 1h30m")
    h, mins, s = (float(g) if g else 0.0 for g in m.groups())
    return h * 3600 + mins * 60 + s
