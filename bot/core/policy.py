"""Guardrails: the team's policy file, what it means for one request, and the checks it implies (pure).

A team sharing one Fireworks account keeps its rules in version control, as a ``[policy]`` table
(in ``fwbot.toml`` beside the settings, which ignore it, or in a file of its own). The table holds
the *defaults*; each ``[[policy.rule]]`` is scoped to one Slack channel (``channel = "C…"``) or
one user group (``usergroup = "S…"``) and overrides the settings it names. See :data:`EXAMPLE`.

Settings
    ``models``              globs matched (``fnmatch``) against the full model name,
                            ``accounts/<account>/models/<id>``; a short id in a request means
                            ``accounts/fireworks/models/<id>``. A pattern must start with
                            ``accounts/`` or a wildcard, since nothing else can match a full name.
    ``accelerators``        accelerator types, as API enums or short names (``h100``).
    ``regions``             globs over region names (``US_*``). A request that pins no region
                            (the default multi-region placement) is outside any region list.
    ``max_gpus_per_deployment``, ``max_replicas``, ``max_gpus_per_person`` (GPUs running at
    once), ``max_gpus_per_team``: whole numbers ≥ 1.
    ``max_usd_per_hour_without_approval``: dollars; above it a request needs approval.
    ``require_idle_policy`` (bool), with ``max_unused_auto_delete`` and ``max_scale_to_zero_window``:
                            an unused deployment must stop costing money within these bounds:
                            delete itself when unused (``--unused-auto-delete-duration``), or have
                            min replicas 0 and scale to zero in time (its window, or Fireworks'
                            default hour). Min replicas 1 or more never scales to zero, so only
                            the auto-delete counts then. The two bounds mean nothing without
                            ``require_idle_policy``.
    ``max_lifetime``        how long a deployment may live at all.
    ``quiet_hours``         ``"19:00-08:00"`` (may wrap midnight), with ``working_days``
                            (``["Mon", …, "Fri"]``, default every day): days not listed are quiet
                            all day. The caller decides what quiet hours do, and in which zone.
    ``schedule``            an off-hours schedule for every deployment the rule governs, in the
                            syntax of ``/fw schedule``: ``"down 19:00 Mon-Fri, up 08:00 Mon-Fri"``
                            (the up part is optional; ``"(min 2)"`` after it comes back up with 2).
                            A deployment's own ``/fw schedule`` wins over it. When several of
                            someone's groups set one, the first group by id gives it.

Durations use Go syntax (``90s``, ``1h30m``, ``168h``) plus a leading ``d`` for days of 24 hours
(``14d``, ``1d12h``), because lifetimes are counted in days.

Which value applies (:func:`effective_policy`)
    Per setting, the most specific rule that sets it: a user-group rule beats a channel rule,
    which beats the defaults. So a group rule can *loosen* a channel's limit for its members, on
    purpose: the group says who someone is, the channel only where they are. When several of
    someone's groups set the same setting, the strictest wins: the lowest limit, the
    intersection of allow-lists and working days, ``require_idle_policy`` if any says so, and
    the union of quiet hours. Every effective value carries its source, so ``/fw policy`` can
    say where it comes from.

Nothing here reads files, Slack or the clock: callers pass the text, the user's groups and the
time. Counting running GPUs and making a quota check atomic with the create are the caller's job.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
import math
import re
import tomllib
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo

from bot.core.clock import DAYS, local_moment
from bot.core.durations import DurationError, format_go_duration, humanize, parse_go_duration
from bot.core.errors import UserFacingError
from bot.core.names import (
    AcceleratorNameError,
    ModelNameError,
    resolve_accelerator,
    resolve_model,
    short_accelerator,
    short_model,
)
from bot.core.pricing import format_usd
from bot.core.requests import DEFAULT_SCALE_TO_ZERO_WINDOW_S
from bot.core.schedules import Schedule, ScheduleError, parse_schedule_text, schedule_text

EXAMPLE = """\
# fwbot guardrails: what may be asked for at all. Reviewed like code.
[policy]
# Everyone, everywhere: public models on H100/H200 in US regions, with an idle policy.
models = ["accounts/fireworks/models/*"]
accelerators = ["h100", "h200"]
regions = ["US_*"]
max_gpus_per_deployment = 8
max_replicas = 2
max_gpus_per_person = 8
max_gpus_per_team = 32
max_usd_per_hour_without_approval = 40.0
require_idle_policy = true
max_unused_auto_delete = "72h"
max_scale_to_zero_window = "2h"
max_lifetime = "14d"
quiet_hours = "19:00-08:00"
working_days = ["Mon", "Tue", "Wed", "Thu", "Fri"]

# The platform channel is for quick experiments with small models.
[[policy.rule]]
channel = "C0MLPLAT"
models = ["accounts/fireworks/models/llama-v3p1-8b*", "accounts/fireworks/models/qwen*"]
max_gpus_per_deployment = 2
max_lifetime = "3d"

# The ML team runs bigger deployments, B200s and its own fine-tunes, wherever it asks.
[[policy.rule]]
usergroup = "S0MLTEAM"
models = ["accounts/fireworks/models/*", "accounts/acme/models/*"]
accelerators = ["h100", "h200", "b200"]
max_gpus_per_deployment = 16
max_replicas = 4
max_gpus_per_person = 16
max_usd_per_hour_without_approval = 120.0
"""
"""A realistic policy: defaults, a channel rule and a user-group rule. The README shows it as is."""

DEFAULT_FILENAME = "fwbot.toml"
_DAY_NAMES = {name.lower(): i for i, name in enumerate(DAYS)} | {
    full: i for i, full in enumerate(("monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                                      "sunday"))
}
_CHANNEL_RE = re.compile(r"^[CG][A-Z0-9]{2,}\Z")
_USERGROUP_RE = re.compile(r"^S[A-Z0-9]{2,}\Z")
_TIME_RANGE_RE = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\Z")
_DAYS_PART_RE = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)d")
SCOPES = ("channel", "usergroup")


class PolicyError(UserFacingError, ValueError):
    """A policy file fwbot will not use, with every problem found and the line it is on.

    The message is one ``<file> line <n>: <reason>`` per problem, fit to show whoever edits the
    file (and for CI to fail on). ``problems`` holds ``(line, reason)`` pairs; a line is ``None``
    when the text gives no place to point at.
    """

    def __init__(self, filename: str, problems: Iterable[tuple[int | None, str]]) -> None:
        self.filename = filename
        self.problems = tuple(sorted(problems, key=lambda p: (p[0] is None, p[0] or 0)))
        lines = [f"{filename} line {line}: {reason}" if line else f"{filename}: {reason}"
                 for line, reason in self.problems]
        super().__init__("\n".join(lines))

    @property
    def line(self) -> int | None:
        """The line of the first problem."""
        return self.problems[0][0] if self.problems else None


# -- values ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class QuietHours:
    """A daily quiet window in minutes after midnight; ``start > end`` wraps midnight."""

    start: int
    end: int  # up to 1440 (24:00)

    def contains(self, minute: float) -> bool:
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end

    def __str__(self) -> str:
        return f"{_hhmm(self.start)}-{_hhmm(self.end)}"


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class AllowList:
    """What an allow-list lets through: a value must match one pattern of *every* part.

    One part when one rule sets it; several when several of a user's groups do (their
    intersection, which globs cannot always spell as one list). Accelerators are exact names.
    """

    parts: tuple[tuple[str, ...], ...]
    exact: bool = False

    def allows(self, value: str) -> bool:
        if self.exact:
            return all(value in part for part in self.parts)
        return all(any(fnmatch.fnmatchcase(value, p) for p in part) for part in self.parts)

    def __str__(self) -> str:
        shown = [", ".join(short_accelerator(v) for v in part) if self.exact else ", ".join(part)
                 for part in self.parts]
        return " and also ".join(s or "none" for s in shown)


T = TypeVar("T")


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One effective setting: its value (``None`` when no rule sets it) and where it comes from."""

    name: str
    value: T | None = None
    source: str | None = None  # "defaults", "channel C…", "usergroup S… (handle)"; None when unset

    @property
    def is_set(self) -> bool:
        return self.value is not None

    def cite(self) -> str:
        """``max_replicas, from channel C0X``: how messages name the rule they apply."""
        return f"{self.name}, from {self.source}"


@dataclass(frozen=True)
class Rule:
    """One ``[[policy.rule]]`` (or the defaults, with ``scope`` ``None``): the settings it sets."""

    scope: str | None  # "channel" | "usergroup" | None for the defaults
    scope_id: str | None
    line: int | None
    values: Mapping[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> str:
        return "defaults" if self.scope is None else f"{self.scope} {self.scope_id}"


@dataclass(frozen=True)
class Policy:
    """A parsed, valid policy. An absent ``[policy]`` table is an empty policy: no guardrails."""

    defaults: Rule
    rules: tuple[Rule, ...] = ()

    def rule_for(self, scope: str, scope_id: str | None) -> Rule | None:
        return next((r for r in self.rules if r.scope == scope and r.scope_id == scope_id), None)


@dataclass(frozen=True)
class EffectivePolicy:
    """The settings that apply to one person in one channel, each with its source.

    Durations are seconds; ``quiet_hours`` is a tuple of windows (several groups' windows add up).
    """

    models: Setting[AllowList]
    accelerators: Setting[AllowList]
    regions: Setting[AllowList]
    max_gpus_per_deployment: Setting[int]
    max_replicas: Setting[int]
    max_gpus_per_person: Setting[int]
    max_gpus_per_team: Setting[int]
    max_usd_per_hour_without_approval: Setting[float]
    require_idle_policy: Setting[bool]
    max_unused_auto_delete: Setting[float]
    max_scale_to_zero_window: Setting[float]
    max_lifetime: Setting[float]
    quiet_hours: Setting[tuple[QuietHours, ...]]
    working_days: Setting[frozenset[int]]
    schedule: Setting[Schedule]

    def settings(self) -> tuple[Setting[Any], ...]:
        return tuple(getattr(self, name) for name in SETTINGS)

    def describe(self) -> list[str]:
        """One line per setting that is set, ``name: value (from source)``: for ``/fw policy``."""
        return [f"{s.name}: {format_value(s.name, s.value)} (from {s.source})"
                for s in self.settings() if s.is_set]


# -- parsing single values -------------------------------------------------------------------------
class _Bad(Exception):
    """One value is wrong; ``needle`` is the text to point at inside a multi-line value."""

    def __init__(self, reason: str, needle: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.needle = needle


def _show(raw: Any) -> str:
    """A value as the file spells it (``"four"``, ``true``, ``4.5``), for error messages."""
    return json.dumps(raw, ensure_ascii=False, default=str)


def _whole(name: str, raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise _Bad(f"{name} must be a whole number ≥ 1, not {_show(raw)}")
    return raw


def _dollars(name: str, raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw) or raw < 0:
        raise _Bad(f"{name} must be an amount of US dollars per hour ≥ 0 such as 40.0, not {_show(raw)}")
    return float(raw)


def _flag(name: str, raw: Any) -> bool:
    if not isinstance(raw, bool):
        raise _Bad(f"{name} must be true or false, not {_show(raw)}")
    return raw


def parse_policy_duration(text: str) -> float:
    """Seconds in a Go duration with an optional leading ``<n>d`` (days of 24 hours): ``14d``,
    ``1d12h``, ``72h``. Raises :class:`DurationError`."""
    s = text.strip()
    m = _DAYS_PART_RE.match(s)
    if not m:
        return parse_go_duration(s)
    rest = s[m.end():]
    return float(m.group(1)) * 86400 + (parse_go_duration(rest) if rest else 0.0)


def _duration(name: str, raw: Any) -> float:
    reason = f'{name} must be a duration such as "90m", "72h" or "14d", not {_show(raw)}'
    if not isinstance(raw, str):
        raise _Bad(reason)
    try:
        seconds = parse_policy_duration(raw)
    except DurationError:
        raise _Bad(reason) from None
    if seconds <= 0:
        raise _Bad(f"{name} must be longer than zero, not {_show(raw)}")
    return seconds


def _strings(name: str, raw: Any) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        raise _Bad(f'{name} must be a list of strings such as ["a", "b"], not {_show(raw)}')
    return raw


def _unclosed_bracket(pattern: str) -> bool:
    """Whether a ``[`` never closes; ``fnmatch`` would silently take it for a literal ``[``."""
    i, n = 0, len(pattern)
    while i < n:
        if pattern[i] == "[":
            j = i + 1
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                return True
            i = j
        i += 1
    return False


def _glob_problem(pattern: str) -> str | None:
    if not pattern.strip():
        return "is empty"
    if pattern != pattern.strip() or any(c.isspace() for c in pattern):
        return "contains spaces"
    if _unclosed_bracket(pattern):
        return 'has a "[" that is never closed'
    return None


def _model_globs(name: str, raw: Any) -> tuple[str, ...]:
    out = []
    for pattern in _strings(name, raw):
        problem = _glob_problem(pattern)
        if problem is None and pattern != pattern.lower():
            problem = "has uppercase letters, but model names are lowercase"
        if problem is None and not (pattern.startswith("accounts/") or pattern[0] in "*?["):
            problem = ("can never match a full model name; write "
                       f'"accounts/fireworks/models/{pattern}" (or start it with *)')
        if problem:
            raise _Bad(f"{name}: the pattern {_show(pattern)} {problem}", needle=pattern)
        out.append(pattern)
    return tuple(out)


def _region_globs(name: str, raw: Any) -> tuple[str, ...]:
    out = []
    for pattern in _strings(name, raw):
        problem = _glob_problem(pattern)
        if problem is None and not re.fullmatch(r"[A-Za-z0-9_*?\[\]!]+", pattern):
            problem = "may only hold letters, digits, _ and the wildcards * ? [ ]"
        if problem:
            raise _Bad(f"{name}: the pattern {_show(pattern)} {problem}", needle=pattern)
        out.append(pattern.upper())
    return tuple(out)


def _accelerators(name: str, raw: Any) -> tuple[str, ...]:
    out: list[str] = []
    for text in _strings(name, raw):
        try:
            enum = resolve_accelerator(text)
        except AcceleratorNameError as e:
            raise _Bad(f"{name}: {e.message}", needle=text) from None
        if enum not in out:
            out.append(enum)
    return tuple(out)


def _quiet_hours(name: str, raw: Any) -> QuietHours:
    reason = f'{name} must be a range of 24-hour times such as "19:00-08:00", not {_show(raw)}'
    m = _TIME_RANGE_RE.match(raw.strip()) if isinstance(raw, str) else None
    if not m:
        raise _Bad(reason)
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2):
        raise _Bad(reason)
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start == end % 1440:
        raise _Bad(f"{name} {_show(raw)} starts and ends at the same time; to make whole days quiet, "
                   "leave them out of working_days")
    return QuietHours(start, end)


def _working_days(name: str, raw: Any) -> frozenset[int]:
    days: set[int] = set()
    for text in _strings(name, raw):
        day = _DAY_NAMES.get(text.strip().lower())
        if day is None:
            raise _Bad(f"{name}: {_show(text)} is not a day; use {', '.join(DAYS)}", needle=text)
        days.add(day)
    if not days:
        raise _Bad(f"{name} must name at least one day")
    return frozenset(days)


def _schedule(name: str, raw: Any) -> Schedule:
    if not isinstance(raw, str):
        raise _Bad(f'{name} must be a string such as "down 19:00 Mon-Fri, up 08:00 Mon-Fri", not {_show(raw)}')
    try:
        return parse_schedule_text(raw)
    except ScheduleError as e:
        reason = e.message.replace("`--up-min`", "min").replace("`--down`", "down").replace("`--up`", "up")
        raise _Bad(f"{name} {_show(raw)}: {reason}") from None


def _channel(name: str, raw: Any) -> str:
    if not isinstance(raw, str) or not _CHANNEL_RE.match(raw):
        raise _Bad(f'channel must be a Slack channel id such as "C0123ABCD", not {_show(raw)}')
    return raw


def _usergroup(name: str, raw: Any) -> str:
    if not isinstance(raw, str) or not _USERGROUP_RE.match(raw):
        raise _Bad(f'usergroup must be a Slack user-group id such as "S0123ABCD", not {_show(raw)}')
    return raw


# How several of a user's groups combine (see the module docstring).
_LOWEST, _ALL_OF, _ANY_TRUE, _UNION, _INTERSECT = "lowest", "all_of", "any_true", "union", "intersect"
_FIRST = "first"  # the first group by id: two schedules have no "stricter" one

_SPECS: dict[str, tuple[Callable[[str, Any], Any], str]] = {
    "models": (_model_globs, _ALL_OF),
    "accelerators": (_accelerators, _ALL_OF),
    "regions": (_region_globs, _ALL_OF),
    "max_gpus_per_deployment": (_whole, _LOWEST),
    "max_replicas": (_whole, _LOWEST),
    "max_gpus_per_person": (_whole, _LOWEST),
    "max_gpus_per_team": (_whole, _LOWEST),
    "max_usd_per_hour_without_approval": (_dollars, _LOWEST),
    "require_idle_policy": (_flag, _ANY_TRUE),
    "max_unused_auto_delete": (_duration, _LOWEST),
    "max_scale_to_zero_window": (_duration, _LOWEST),
    "max_lifetime": (_duration, _LOWEST),
    "quiet_hours": (_quiet_hours, _UNION),
    "working_days": (_working_days, _INTERSECT),
    "schedule": (_schedule, _FIRST),
}
SETTINGS: tuple[str, ...] = tuple(_SPECS)
"""Every setting a rule may hold, in the order ``/fw policy`` shows them."""


# -- where things are in the text ------------------------------------------------------------------
_HEADER_RE = re.compile(r"^\s*(\[\[?)([^\[\]#]*)\]\]?\s*(?:#.*)?$")


@dataclass(frozen=True)
class _Section:
    name: str  # "" for the keys before any header
    array: bool
    line: int  # 1-based line of the header (1 for the top)
    end: int  # 1-based line after the last one


class _Locator:
    """Finds the line of a table or key, since ``tomllib`` gives no positions.

    It reads table headers and ``key =`` lines, which covers files written the usual way; for
    anything else (inline tables, dotted keys) it falls back to the nearest thing it can find.
    """

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        starts: list[tuple[str, bool, int]] = [("", False, 1)]
        for no, line in enumerate(self.lines, 1):
            m = _HEADER_RE.match(line)
            if m:
                starts.append((re.sub(r"[\s\"']", "", m.group(2)), m.group(1) == "[[", no))
        ends = [s[2] for s in starts[1:]] + [len(self.lines) + 1]
        self.sections = [_Section(n, a, ln, end) for (n, a, ln), end in zip(starts, ends, strict=True)]

    def section(self, rule: int | None) -> _Section | None:
        """The ``[policy]`` section (``rule`` ``None``) or the ``rule``-th ``[[policy.rule]]``."""
        if rule is None:
            return next((s for s in self.sections if s.name == "policy" and not s.array), None)
        found = [s for s in self.sections if s.name == "policy.rule" and s.array]
        return found[rule] if rule < len(found) else None

    def header(self, rule: int | None) -> int | None:
        s = self.section(rule)
        return s.line if s else None

    def key(self, rule: int | None, key: str, needle: str | None = None) -> int | None:
        """The line of ``key`` in that table (or of ``needle`` in its value, when given)."""
        pattern = re.compile(rf"""^\s*(?:{re.escape(key)}|"{re.escape(key)}"|'{re.escape(key)}')\s*=""")
        s = self.section(rule)
        if s is not None:
            for no in range(s.line, s.end):
                if pattern.match(self.lines[no - 1]):
                    return self._needle(no, s.end, needle)
        for sub in self.sections:  # a sub-table such as [policy.rules] or [policy.rule.x]
            if sub.name.endswith("." + key) or sub.name == key:
                return sub.line
        loose = re.compile(rf"(?:^|[.\s\"']){re.escape(key)}[\"']?\s*=")
        for no, line in enumerate(self.lines, 1):
            if loose.search(line):
                return self._needle(no, len(self.lines) + 1, needle)
        return s.line if s else None

    def _needle(self, start: int, end: int, needle: str | None) -> int:
        if needle is None:
            return start
        quoted = (json.dumps(needle, ensure_ascii=False), f"'{needle}'")
        for no in range(start, end):
            if any(q in self.lines[no - 1] for q in quoted):
                return no
        return start


# -- parsing the file ------------------------------------------------------------------------------
def parse_policy(text: str, filename: str = DEFAULT_FILENAME) -> Policy:
    """The policy in ``text`` (TOML), or :class:`PolicyError` listing every problem with its line.

    Only the ``policy`` table is read; other top-level keys belong to the settings. A rule may not
    repeat a scope another rule has, so each setting has one value per channel and per group.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
        if m:
            reason = msg[:m.start()].strip()
            raise PolicyError(filename, [(int(m.group(1)), f"not valid TOML: {reason} (column {m.group(2)})")]
                              ) from None
        raise PolicyError(filename, [(None, f"not valid TOML: {msg}")]) from None
    where = _Locator(text)
    problems: list[tuple[int | None, str]] = []
    table = data.get("policy", {})
    if not isinstance(table, dict):
        raise PolicyError(filename, [(where.key(None, "policy"), "policy must be a table: write [policy]")])

    raw_rules = table.get("rule", [])
    defaults_raw = {k: v for k, v in table.items() if k != "rule"}
    defaults = _parse_rule(defaults_raw, None, where, problems)
    rules: list[Rule] = []
    if not isinstance(raw_rules, list) or not all(isinstance(r, dict) for r in raw_rules):
        problems.append((where.key(None, "rule"), "rule must be a list of tables: write each as [[policy.rule]]"))
        raw_rules = []
    seen: dict[tuple[str | None, str | None], int | None] = {}
    for i, raw in enumerate(raw_rules):
        rule = _parse_rule(raw, i, where, problems)
        if rule.scope is None:
            continue
        key = (rule.scope, rule.scope_id)
        if key in seen:
            first = f" at line {seen[key]}" if seen[key] else ""
            problems.append((where.key(i, rule.scope) or rule.line,
                             f"{rule.scope} {rule.scope_id} already has a rule{first}; put its settings in one rule"))
            continue
        seen[key] = where.key(i, rule.scope) or rule.line
        rules.append(rule)
    if problems:
        raise PolicyError(filename, problems)
    return Policy(defaults, tuple(rules))


def _parse_rule(raw: Mapping[str, Any], index: int | None, where: _Locator,
                problems: list[tuple[int | None, str]]) -> Rule:
    """One table's settings; problems are appended, so one parse reports all of them."""
    values: dict[str, Any] = {}
    scopes: dict[str, str] = {}
    for key, value in raw.items():
        if key in SCOPES:
            if index is None:
                problems.append((where.key(None, key), f"the defaults in [policy] apply everywhere, so they take no "
                                                       f"{key}; put {key} rules in [[policy.rule]] tables"))
                continue
            try:
                scopes[key] = (_channel if key == "channel" else _usergroup)(key, value)
            except _Bad as bad:
                problems.append((where.key(index, key), bad.reason))
            continue
        spec = _SPECS.get(key)
        if spec is None:
            close = difflib.get_close_matches(key, [*SETTINGS, *SCOPES], n=1)
            hint = f"; did you mean {close[0]}?" if close else f"; the settings are {', '.join(SETTINGS)}"
            table = "[policy]" if index is None else "[[policy.rule]]"
            problems.append((where.key(index, key), f"unknown setting {key!r} in {table}{hint}"))
            continue
        try:
            values[key] = spec[0](key, value)
        except _Bad as bad:
            problems.append((where.key(index, key, bad.needle), bad.reason))
    line = where.header(index)
    if index is None:
        return Rule(None, None, line, values)
    if len(scopes) > 1 or (len(scopes) == 1 and sum(k in raw for k in SCOPES) > 1):
        problems.append((where.key(index, "usergroup"),
                         "a rule has both channel and usergroup; give exactly one (split it into two rules)"))
        return Rule(None, None, line, values)
    if not scopes:
        if not any(k in raw for k in SCOPES):  # a bad id was reported already
            problems.append((line, "this [[policy.rule]] has neither channel nor usergroup; give exactly one"))
        return Rule(None, None, line, values)
    (scope, scope_id), = scopes.items()
    return Rule(scope, scope_id, line, values)


# -- which value applies ---------------------------------------------------------------------------
def effective_policy(policy: Policy, *, channel: str | None, usergroups: Collection[str] = (),
                     group_names: Mapping[str, str] | None = None) -> EffectivePolicy:
    """The settings for someone in ``usergroups`` asking in ``channel``, each with its source.

    ``group_names`` maps group ids to handles, only to show them (``usergroup S0ML (ml-team)``).
    Groups are taken in id order, so a tie between equally strict groups names the same one
    every time.
    """
    names = group_names or {}
    group_rules = [r for g in sorted(set(usergroups)) if (r := policy.rule_for("usergroup", g))]
    channel_rule = policy.rule_for("channel", channel) if channel else None

    def source(rule: Rule) -> str:
        handle = names.get(rule.scope_id or "") if rule.scope == "usergroup" else None
        return f"{rule.source} ({handle})" if handle else rule.source

    settings: dict[str, Setting[Any]] = {}
    for name, (_, combine) in _SPECS.items():
        setters = [(r.values[name], source(r)) for r in group_rules if name in r.values]
        if not setters:
            for rule in (channel_rule, policy.defaults):
                if rule is not None and name in rule.values:
                    setters = [(rule.values[name], source(rule))]
                    break
        settings[name] = _combine(name, combine, setters) if setters else Setting(name)
    return EffectivePolicy(**settings)


def _combine(name: str, how: str, setters: list[tuple[Any, str]]) -> Setting[Any]:
    """One setting from the rules that set it: one rule, or several of a user's groups."""
    values = [v for v, _ in setters]
    sources = [s for _, s in setters]
    if how == _LOWEST:
        value, src = min(setters, key=lambda vs: vs[0])
        return Setting(name, value, src)
    if how == _FIRST:
        return Setting(name, setters[0][0], setters[0][1])
    if how == _ANY_TRUE:
        value, src = next(((v, s) for v, s in setters if v), setters[0])
        return Setting(name, value, src)
    joined = sources[0] if len(sources) == 1 else ", ".join(sources[:-1]) + " and " + sources[-1]
    if how == _ALL_OF:
        if name == "accelerators":
            common = tuple(a for a in values[0] if all(a in v for v in values[1:]))
            return Setting(name, AllowList((common,), exact=True), joined)
        return Setting(name, AllowList(tuple(values)), joined)
    if how == _UNION:
        return Setting(name, tuple(dict.fromkeys(values)), joined)
    assert how == _INTERSECT
    return Setting(name, frozenset.intersection(*values), joined)


def format_value(name: str, value: Any) -> str:
    """A setting's value as ``/fw policy`` and the messages show it."""
    if value is None:
        return "not set"
    if name in ("max_unused_auto_delete", "max_scale_to_zero_window", "max_lifetime"):
        return humanize(value)
    if name == "max_usd_per_hour_without_approval":
        return format_usd(value)
    if name == "require_idle_policy":
        return "yes" if value else "no"
    if name == "quiet_hours":
        return ", ".join(str(w) for w in value)
    if name == "working_days":
        return ", ".join(DAYS[d] for d in sorted(value)) or "none"
    if name == "schedule":
        return schedule_text(value)
    return str(value)


# -- checks ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Violation:
    """A request breaks ``rule`` (a setting name) as set by ``source``; ``message`` says so to a person."""

    rule: str
    source: str
    message: str


def _violation(setting: Setting[Any], text: str) -> Violation:
    return Violation(setting.name, setting.source or "defaults", text)


@dataclass(frozen=True)
class DeploymentAsk:
    """What a create or update would make, as the policy sees it.

    ``model`` as typed (a short id means the public catalog) or in full; ``accelerator_count`` is
    per replica (``None`` counts as 1); ``region`` ``None`` is the default multi-region placement;
    the idle options are in seconds, ``None`` when not given; ``usd_per_hour`` is the worst case
    (``pricing.worst_case_usd_per_hour``), ``None`` when not priced.
    """

    model: str
    accelerator_type: str | None
    accelerator_count: int | None
    region: str | None
    min_replicas: int
    max_replicas: int
    unused_auto_delete_s: float | None = None
    scale_to_zero_s: float | None = None
    usd_per_hour: float | None = None

    @property
    def worst_case_gpus(self) -> int:
        return self.max_replicas * (self.accelerator_count or 1)


def check_request(effective: EffectivePolicy, ask: DeploymentAsk) -> list[Violation]:
    """Every rule the request breaks, in the order the settings are listed; empty when it may go on.

    Money is not a violation: whether it needs approval is :func:`needs_approval`. Quotas need
    counts of what runs, so they are :func:`check_quota`.
    """
    out: list[Violation] = []
    e = effective
    if e.models.value is not None:
        try:
            model = resolve_model(ask.model)
        except ModelNameError:
            model = ask.model
        if not e.models.value.allows(model):
            out.append(_violation(e.models, f"`{short_model(model)}` is not an allowed model here "
                                            f"(models: {e.models.value}, {_from(e.models)})"))
    if e.accelerators.value is not None:
        if ask.accelerator_type is None:
            out.append(_violation(e.accelerators, "name an accelerator type: only some are allowed here "
                                                  f"(accelerators: {e.accelerators.value}, {_from(e.accelerators)})"))
        else:
            try:
                acc = resolve_accelerator(ask.accelerator_type)
            except AcceleratorNameError:
                acc = ask.accelerator_type
            if not e.accelerators.value.allows(acc):
                out.append(_violation(e.accelerators, f"`{short_accelerator(acc)}` is not an allowed accelerator "
                                                      f"here (accelerators: {e.accelerators.value}, "
                                                      f"{_from(e.accelerators)})"))
    if e.regions.value is not None:
        if ask.region is None:
            out.append(_violation(e.regions, "pin the deployment to a region: only some are allowed here "
                                             f"(regions: {e.regions.value}, {_from(e.regions)})"))
        else:
            region = ask.region.strip().upper().replace("-", "_")
            if not e.regions.value.allows(region):
                out.append(_violation(e.regions, f"`{region}` is not an allowed region here "
                                                 f"(regions: {e.regions.value}, {_from(e.regions)})"))
    limit = e.max_gpus_per_deployment.value
    if limit is not None and ask.worst_case_gpus > limit:
        out.append(_violation(e.max_gpus_per_deployment,
                              f"this deployment could run {ask.worst_case_gpus} GPUs ({ask.max_replicas} "
                              f"{_plural(ask.max_replicas, 'replica')} × {ask.accelerator_count or 1} "
                              f"{_plural(ask.accelerator_count or 1, 'GPU')}); "
                              f"the limit here is {limit} ({e.max_gpus_per_deployment.cite()})"))
    limit = e.max_replicas.value
    if limit is not None and ask.max_replicas > limit:
        out.append(_violation(e.max_replicas, f"at most {limit} {_plural(limit, 'replica')} {'is' if limit == 1 else 'are'} allowed here, "
                                              f"not {ask.max_replicas} ({e.max_replicas.cite()})"))
    if e.require_idle_policy.value and not _idles(e, ask):
        out.append(_violation(e.require_idle_policy, _idle_refusal(e, ask)))
    return out


def _idles(e: EffectivePolicy, ask: DeploymentAsk) -> bool:
    """The idle policy holds: an unused deployment stops costing money within the bounds.

    Fireworks scales a deployment to zero only when its min replicas is 0, after its scale-to-zero
    window (the API's default when not given); one with min replicas 1 or more never scales down,
    so only fwbot's unused auto-delete retires it. A bound that is not set accepts any value.
    """
    unused, unused_bound = ask.unused_auto_delete_s, e.max_unused_auto_delete.value
    if unused is not None and unused > 0 and (unused_bound is None or unused <= unused_bound):
        return True
    if ask.min_replicas == 0:
        window = ask.scale_to_zero_s if ask.scale_to_zero_s is not None else DEFAULT_SCALE_TO_ZERO_WINDOW_S
        bound = e.max_scale_to_zero_window.value
        return bound is None or window <= bound
    return False


def _idle_refusal(e: EffectivePolicy, ask: DeploymentAsk) -> str:
    def bound(setting: Setting[float]) -> str:
        return "" if setting.value is None else f" of {format_go_duration(setting.value)} or less"

    cite = _cite_all(e.require_idle_policy, e.max_unused_auto_delete, e.max_scale_to_zero_window)
    if ask.min_replicas == 0:
        window = ask.scale_to_zero_s if ask.scale_to_zero_s is not None else DEFAULT_SCALE_TO_ZERO_WINDOW_S
        given = "" if ask.scale_to_zero_s is not None else " (Fireworks' default)"
        return (f"its scale-to-zero window, {humanize(window)}{given}, is longer than allowed here: give a "
                f"`--scale-to-zero-window`{bound(e.max_scale_to_zero_window)} or an "
                f"`--unused-auto-delete-duration`{bound(e.max_unused_auto_delete)} ({cite})")
    replicas = f"{ask.min_replicas} {_plural(ask.min_replicas, 'replica')}"
    return (f"a deployment that keeps {replicas} up never scales to zero, so it needs an "
            f"`--unused-auto-delete-duration`{bound(e.max_unused_auto_delete)} here, or min replicas 0 with a "
            f"scale-to-zero window{bound(e.max_scale_to_zero_window)} ({cite})")


def _cite_all(*settings: Setting[Any]) -> str:
    """``a and b, from defaults; c, from channel C0X``: the rules a message applies, by source."""
    by_source: dict[str, list[str]] = {}
    for setting in settings:
        if setting.is_set:
            by_source.setdefault(setting.source or "defaults", []).append(setting.name)
    return "; ".join(f"{_joined(names)}, from {source}" for source, names in by_source.items())


def _joined(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _from(setting: Setting[Any]) -> str:
    return f"from {setting.source}"


def _plural(n: int, word: str) -> str:
    return word if n == 1 else word + "s"


def check_quota(effective: EffectivePolicy, *, person_gpus_running: int, team_gpus_running: int,
                asking_gpus: int) -> list[Violation]:
    """Whether adding ``asking_gpus`` GPUs (the worst case of the change) breaks a GPU quota.

    Pure arithmetic on the caller's counts. A change that adds no GPUs never breaks a quota, so
    someone over their limit (after it was lowered) can still scale down or delete. "Team" is
    whatever the caller counts for ``team_gpus_running``: the whole account, normally.
    """
    if asking_gpus <= 0:
        return []
    out: list[Violation] = []
    person = effective.max_gpus_per_person
    if person.value is not None and person_gpus_running + asking_gpus > person.value:
        out.append(_violation(person, f"this would run {person_gpus_running + asking_gpus} GPUs for you at once; "
                                      f"your limit is {person.value} ({person.cite()})"))
    team = effective.max_gpus_per_team
    if team.value is not None and team_gpus_running + asking_gpus > team.value:
        out.append(_violation(team, f"this would run {team_gpus_running + asking_gpus} GPUs for the team at once; "
                                    f"the team's limit is {team.value} ({team.cite()})"))
    return out


def needs_approval(effective: EffectivePolicy, usd_per_hour: float | None) -> bool | None:
    """Whether a worst case of ``usd_per_hour`` needs approval under the policy's threshold.

    ``None`` when the policy sets no threshold: the global setting decides then. An unknown price
    needs approval, since its worst case cannot be bounded (as in ``approvals.approval_reason``).
    """
    threshold = effective.max_usd_per_hour_without_approval.value
    if threshold is None:
        return None
    return usd_per_hour is None or usd_per_hour > threshold


# -- time ------------------------------------------------------------------------------------------
def lifetime_due(effective: EffectivePolicy, created_at: datetime) -> datetime | None:
    """When a deployment made at ``created_at`` has lived as long as it may; ``None`` for no limit."""
    limit = effective.max_lifetime.value
    return None if limit is None else created_at + timedelta(seconds=limit)


def _require_aware(when: datetime) -> None:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("give an aware datetime: a naive one could be in any zone")


def in_quiet_hours(effective: EffectivePolicy, when: datetime, tz: ZoneInfo) -> bool:
    """Whether ``when`` falls in quiet hours in the team's zone ``tz``.

    Quiet: on a day not in ``working_days``, or in a ``quiet_hours`` window (which may wrap
    midnight, so ``19:00-08:00`` is quiet on a working Tuesday at 07:00). Without either setting
    nothing is quiet.
    """
    _require_aware(when)
    local = when.astimezone(tz)
    days = effective.working_days.value
    if days is not None and local.weekday() not in days:
        return True
    minute = local.hour * 60 + local.minute + local.second / 60 + local.microsecond / 60e6
    return any(w.contains(minute) for w in effective.quiet_hours.value or ())


def next_working_moment(effective: EffectivePolicy, when: datetime, tz: ZoneInfo) -> datetime | None:
    """``when`` itself if it is not quiet, else the first moment after it that is not, in ``tz``.

    Quiet time ends at the end of a window or at a midnight, so those are the only candidates,
    looked for over the next eight days. ``None`` only when several groups' quiet hours and
    working days together leave no working moment in a week.
    """
    if not in_quiet_hours(effective, when, tz):
        return when.astimezone(tz)
    local = when.astimezone(tz)
    boundaries = sorted({0} | {w.end for w in effective.quiet_hours.value or () if w.end < 1440})
    for offset in range(9):
        day = local.date() + timedelta(days=offset)
        for minute in boundaries:
            candidate = local_moment(datetime.combine(day, time(minute // 60, minute % 60)), tz)
            if candidate > when and not in_quiet_hours(effective, candidate, tz):
                return candidate
    return None
