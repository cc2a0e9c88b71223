"""Wire-format details of the Fireworks gateway: errors, times, durations, page tokens, field names.

The gateway is grpc-gateway in front of protobuf services, so JSON keys are lowerCamelCase, int64
values are strings, durations are ``"<seconds>s"`` and errors are ``google.rpc.Status`` bodies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

# gRPC canonical codes and the HTTP status grpc-gateway maps each to (contract §3).
GRPC_CODES: dict[str, tuple[int, int]] = {
    "OK": (0, 200),
    "CANCELLED": (1, 499),
    "UNKNOWN": (2, 500),
    "INVALID_ARGUMENT": (3, 400),
    "DEADLINE_EXCEEDED": (4, 504),
    "NOT_FOUND": (5, 404),
    "ALREADY_EXISTS": (6, 409),
    "PERMISSION_DENIED": (7, 403),
    "RESOURCE_EXHAUSTED": (8, 429),
    "FAILED_PRECONDITION": (9, 400),
    "ABORTED": (10, 409),
    "OUT_OF_RANGE": (11, 400),
    "UNIMPLEMENTED": (12, 501),
    "INTERNAL": (13, 500),
    "UNAVAILABLE": (14, 503),
    "DATA_LOSS": (15, 500),
    "UNAUTHENTICATED": (16, 401),
}

# The code used when a fault is injected with a bare HTTP status.
CODE_FOR_HTTP = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                 404: "NOT_FOUND", 409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
                 501: "UNIMPLEMENTED", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


class ApiError(Exception):
    """A control-plane error, rendered as ``{"code": <int>, "message": ..., "details": []}``."""

    def __init__(self, code: str, message: str, *, retry_after: float | None = None,
                 status: int | None = None, details: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after
        # grpc-gateway answers some routing errors with a status of their own (405 carries
        # UNIMPLEMENTED); everything else uses the code's mapping from contract §3.
        self.status = status
        self.details = details or []
        self.headers = headers or {}

    @property
    def http_status(self) -> int:
        return self.status or GRPC_CODES[self.code][1]

    def body(self) -> dict[str, Any]:
        return {"code": GRPC_CODES[self.code][0], "message": self.message, "details": list(self.details)}


def invalid(message: str) -> ApiError:
    return ApiError("INVALID_ARGUMENT", message)


def precondition(message: str) -> ApiError:
    return ApiError("FAILED_PRECONDITION", message)


def not_found(message: str) -> ApiError:
    return ApiError("NOT_FOUND", message)


# --- times -------------------------------------------------------------------------------------

def ts(seconds: float | None) -> str | None:
    """POSIX seconds as RFC3339 UTC, with fractional seconds only when there are any."""
    if seconds is None:
        return None
    dt = datetime.fromtimestamp(seconds, UTC)
    # Four-digit years always (strftime's %Y writes year 71 as "71").
    text = f"{dt.year:04d}-{dt:%m-%dT%H:%M:%S}"
    if dt.microsecond:
        return f"{text}.{dt.microsecond:06d}".rstrip("0") + "Z"
    return text + "Z"


def parse_ts(text: str, field: str) -> float:
    """RFC3339 (``Z`` or offset) to POSIX seconds; 400 INVALID_ARGUMENT otherwise."""
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise invalid(f"invalid {field}: {text!r} is not an RFC3339 timestamp") from None
    if dt.tzinfo is None:
        raise invalid(f"invalid {field}: {text!r} has no timezone offset")
    try:
        dt.astimezone(UTC)  # a Timestamp lies within years 1..9999 in UTC
    except OverflowError:
        raise invalid(f"invalid {field}: {text!r} is outside years 1 to 9999") from None
    return dt.timestamp()


# --- durations ---------------------------------------------------------------------------------

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)s$")


def parse_duration(text: Any, field: str) -> float:
    """A protobuf Duration string (``"600s"``) to seconds; anything else is 400 (contract §0)."""
    # assumption: only "<decimal>s" is accepted (no "10m", no numbers), as contract §0 proposes.
    if not isinstance(text, str) or not (m := _DURATION.match(text)):
        raise invalid(f"invalid duration for {field}: {text!r}; expected a string such as \"600s\"")
    return float(m.group(1))


def fmt_duration(seconds: float) -> str:
    """Always ``"<int>s"`` on the way out (contract §0)."""
    return f"{int(round(seconds))}s"


# --- field names -------------------------------------------------------------------------------

def camel(path: str) -> str:
    """``autoscaling_policy.scale_to_zero_window`` -> ``autoscalingPolicy.scaleToZeroWindow``."""
    out = []
    for part in path.split("."):
        head, *rest = part.split("_")
        out.append(head + "".join(p[:1].upper() + p[1:] for p in rest))
    return ".".join(out)


def get_path(obj: dict[str, Any], path: str) -> tuple[bool, Any]:
    """(present, value) at a dotted field path such as ``autoscalingPolicy.loadTargets``."""
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return False, None
        cur = cur[part]
    return True, cur


def set_path(obj: dict[str, Any], path: str, value: Any) -> None:
    """Set the value at a dotted field path, making the objects on the way."""
    parts = path.split(".")
    cur = obj
    for part in parts[:-1]:
        if not isinstance(cur.get(part), dict):
            cur[part] = {}
        cur = cur[part]
    cur[parts[-1]] = value


# --- page tokens -------------------------------------------------------------------------------

def fingerprint(params: dict[str, Any]) -> str:
    """A short digest of the list parameters a page token was issued for."""
    raw = json.dumps(params, sort_keys=True, default=str).encode()
    return hashlib.sha256(raw).hexdigest()[:12]


def encode_page_token(offset: int, params: dict[str, Any]) -> str:
    raw = json.dumps({"o": offset, "f": fingerprint(params)}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str, params: dict[str, Any]) -> int:
    """The offset in ``token``; 400 when it is garbage or was issued for other parameters."""
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        offset = int(data["o"])
        issued_for = str(data["f"])
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise invalid(f"invalid page token {token!r}") from None
    if offset < 0:
        raise invalid(f"invalid page token {token!r}")
    if issued_for != fingerprint(params):
        raise invalid("page token does not match the other list parameters of the call that issued it")
    return offset


def paginate(items: list[Any], key: str, query: dict[str, list[str]], params: dict[str, Any]) -> dict[str, Any]:
    """One page of ``items`` as ``{key: [...], nextPageToken, totalSize}`` (contract §2, §5)."""
    size = int_param(query, "pageSize", 0)
    if size < 0:
        raise invalid("page_size must not be negative")
    size = 50 if size == 0 else min(size, 200)
    token = first(query, "pageToken")
    offset = decode_page_token(token, params) if token else 0
    page = items[offset : offset + size]
    nxt = encode_page_token(offset + size, params) if offset + size < len(items) else ""
    return {key: page, "nextPageToken": nxt, "totalSize": len(items)}


# --- integers ----------------------------------------------------------------------------------

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def check_range(value: int, name: str, fmt: str = "int32") -> int:
    """``value`` when it fits the OpenAPI ``format`` (int32/int64); 400 INVALID_ARGUMENT otherwise,
    as protojson refuses a number that overflows its field."""
    lo, hi = (INT64_MIN, INT64_MAX) if fmt == "int64" else (INT32_MIN, INT32_MAX)
    if not lo <= value <= hi:
        raise invalid(f"invalid value for {name}: {value} is out of range for {fmt}")
    return value


# --- query parameters --------------------------------------------------------------------------

def first(query: dict[str, list[str]], name: str, default: str | None = None) -> str | None:
    values = query.get(name)
    return values[0] if values else default


# grpc-gateway parses a bool query parameter with Go's strconv.ParseBool: exactly these spellings.
# An empty value (``?hard=``) is handed to the same parser, which refuses it, so it is 400 too.
TRUE_WORDS = frozenset({"true", "True", "TRUE", "t", "T", "1"})
FALSE_WORDS = frozenset({"false", "False", "FALSE", "f", "F", "0"})


def bool_param(query: dict[str, list[str]], name: str) -> bool:
    """A bool query parameter; absent is false, a spelling ParseBool refuses (or none) is 400."""
    for value in query.get(name) or []:
        if value not in TRUE_WORDS | FALSE_WORDS:
            raise invalid(f"invalid value for boolean parameter {name}: {value!r}; expected true or false")
    value = first(query, name)
    return value in TRUE_WORDS


def int_param(query: dict[str, list[str]], name: str, default: int, fmt: str = "int32") -> int:
    """An integer query parameter (decimal, within its OpenAPI format); absent is ``default``,
    anything else (an empty value included: strconv.ParseInt refuses it) is 400."""
    value = first(query, name)
    if value is None:
        return default
    if not re.fullmatch(r"[-+]?[0-9]+", value):
        raise invalid(f"invalid value for integer parameter {name}: {value!r}")
    return check_range(int(value), name, fmt)
