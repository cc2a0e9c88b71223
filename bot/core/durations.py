"""Go ``time.ParseDuration`` syntax (as firectl takes it) and the API's ``"<seconds>s"`` form."""

from __future__ import annotations

import re

from bot.core.errors import UserFacingError

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


class DurationError(UserFacingError, ValueError):
    """A duration string that Go's ParseDuration would reject."""


def parse_go_duration(text: str) -> float:
    """Parse ``90s``, ``10m``, ``1h30m``, ``168h``, ``0`` into seconds.

    Follows Go's rules: a sequence of decimal numbers each with a unit, an optional sign, and a
    bare ``0`` allowed. Raises ``DurationError`` with a message fit to show a user.
    """
    s = text.strip()
    if not s:
        raise DurationError("empty duration")
    sign = 1.0
    if s[0] in "+-":
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    pos = 0
    total = 0.0
    while pos < len(s):
        m = _PART.match(s, pos)
        if not m:
            raise DurationError(
                f"invalid duration {text!r}: use Go syntax such as 90s, 10m, 1h30m or 168h"
            )
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return sign * total


def format_go_duration(seconds: float) -> str:
    """Seconds as a person would type them into a flag or a form field (Go syntax, no days; the
    largest whole unit): ``72h``, ``90m``, ``45s``. Whole seconds only."""
    s = int(round(seconds))
    for unit, size in (("h", 3600), ("m", 60)):
        if s and s % size == 0:
            return f"{s // size}{unit}"
    return f"{s}s"


def format_api_duration(seconds: float) -> str:
    """Seconds as the API's protobuf Duration string, e.g. ``"600s"``."""
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{seconds:.3f}".rstrip("0") + "s"


_API = re.compile(r"^(\d+(?:\.\d+)?)s\Z")


def parse_api_duration(text: str | None) -> float | None:
    """The API's ``"600s"`` back to seconds; ``None`` for missing or empty values."""
    if not text:
        return None
    m = _API.match(text.strip())
    if not m:
        raise DurationError(f"invalid API duration {text!r}")
    return float(m.group(1))


def humanize(seconds: float) -> str:
    """A short human form: ``45s``, ``10m``, ``3h20m``, ``7d``."""
    seconds = int(round(seconds))
    if seconds < 0:
        return "-" + humanize(-seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        m, s = divmod(seconds, 60)
        return f"{m}m{s}s" if s and m < 10 else f"{m}m"
    if seconds < 86400 * 2:
        h, rem = divmod(seconds, 3600)
        m = rem // 60
        return f"{h}h{m}m" if m else f"{h}h"
    d, rem = divmod(seconds, 86400)
    h = rem // 3600
    return f"{d}d{h}h" if h else f"{d}d"
