"""The ``/fw`` slash-command grammar (SPEC §4): tokenizer, one table of subcommands, parser, help.

Everything here is a pure function of the command text. The table ``_TABLE`` describes every
subcommand once — positionals, flags with their types, metavars, help and defaults, a summary and
an example — and both :func:`parse` and :func:`help_text` are generated from it, so the help can
never promise a flag the parser does not take.

Input arrives as Slack sends it: ``&amp; &lt; &gt;`` escaped, and (with "escape channels, users and
links" on in the manifest) mentions as ``<@U123|name>`` and channels as ``<#C123|name>``.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import ValidationError

from bot.core.durations import DurationError, humanize, parse_go_duration
from bot.core.errors import UserFacingError
from bot.core.names import (
    ACCELERATOR_SHORT_NAMES,
    PRECISIONS,
    REGION_EXAMPLES,
    AcceleratorNameError,
    ModelNameError,
    PrecisionNameError,
    RegionNameError,
    resolve_accelerator,
    resolve_model,
    resolve_precision,
    resolve_region,
    resource_id_problem,
    short_accelerator,
)
from bot.core.pricing import offered_accelerators
from bot.core.requests import (
    COST_GROUPINGS,
    DEFAULT_KEEP_S,
    DESCRIPTION_LIMIT,
    DISPLAY_NAME_LIMIT,
    LOAD_TARGET_KEYS,
    SHAPE_PRESETS,
    AdoptCommand,
    AuditCommand,
    BudgetCommand,
    CostCommand,
    CostPeriod,
    DeleteCommand,
    DeployCommand,
    DeploymentChange,
    DeploymentSpec,
    DeployModalCommand,
    GetCommand,
    HelpCommand,
    KeepCommand,
    ListCommand,
    LoraCommand,
    ModelsCommand,
    OwnerCommand,
    ParsedCommand,
    PolicyCommand,
    QueryCommand,
    QuotaCommand,
    ScaleCommand,
    ScheduleCommand,
    SpecError,
    UndeleteCommand,
    UpdateCommand,
    normalize_shape,
    spec_error_of,
)
from bot.core.schedules import ScheduleError, is_days_text, make_schedule
from bot.core.settings import LIST_PRICES_USD_PER_GPU_HOUR

# What /fw help can say of prices before any settings are read: the accelerators the list prices
# cover, and the rest (offered once FWBOT_PRICES prices them; bot.pricing.not_offered).
_LISTED = tuple(short_accelerator(a) for a in offered_accelerators(LIST_PRICES_USD_PER_GPU_HOUR))
_UNLISTED = tuple(s for s in ACCELERATOR_SHORT_NAMES if s not in _LISTED)

_INT32_MAX = 2**31 - 1


class UsageError(UserFacingError):
    """Bad ``/fw`` input, with a message written for the Slack user and the usage line to show.

    ``subcommand`` is the canonical subcommand the text was aimed at (``None`` when even that is
    unclear); ``flag`` names the offending flag (without dashes) when one is to blame, so a form
    can attach the error to the right field.
    """

    def __init__(self, message: str, subcommand: str | None = None, *, flag: str | None = None) -> None:
        message = message[:1].upper() + message[1:]
        super().__init__(message)
        self.message = message
        self.subcommand = subcommand
        self.flag = flag

    @property
    def usage(self) -> str:
        """The usage line of the subcommand (or of ``/fw`` itself)."""
        return usage_line(self.subcommand)

    def to_mrkdwn(self) -> str:
        """The whole ephemeral reply: problem, usage, where to read more."""
        more = f"/fw help {self.subcommand}" if self.subcommand else "/fw help"
        return f"{self.message}\n*Usage:* `{self.usage}`\nMore: `{more}`"


# --- tokenizer ---------------------------------------------------------------------------------

_DQ = '"“”'  # ASCII double quote and Slack's smart double quotes, interchangeable
_SQ = "'‘’"
_DQ_ESCAPABLE = _DQ + "\\"
_HTML_ENTITIES = (("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">"))
# A Slack entity: <@U123|name>, <#C123|name>, <!here>, <!subteam^S1|@team>, <https://x|label>.
_ENTITY_RE = re.compile(r"<([@#!][^<>|\s]+|[A-Za-z][A-Za-z0-9+.\-]*:[^<>|\s]+)(?:\|([^<>]*))?>")


@dataclass(frozen=True)
class Token:
    """One word of the command: its text after unquoting, and where it sits in the raw text."""

    text: str
    start: int
    end: int
    literal_start: bool  # the first character was quoted or escaped, so ``"--x"`` is not a flag


@dataclass(frozen=True)
class _Unit:
    text: str
    start: int
    end: int
    atomic: bool  # an entity: never a quote, backslash or space, whatever it decodes to


def _entity_text(body: str, label: str | None, plain: bool) -> str:
    """A Slack entity as a token (``<@U123>``: ids survive) or as plain text for prompts."""
    kind = body[0]
    if kind in "@#":
        return f"{kind}{label}" if plain and label else f"<{body}>"
    if kind == "!":
        name = body[1:]
        if name.startswith("subteam^"):
            return label if plain and label else f"<{body}>"
        if name in ("here", "channel", "everyone"):
            return f"@{name}"
        return label or name
    if body.startswith("mailto:"):
        return body.removeprefix("mailto:")
    return body


def _units(raw: str, plain: bool = False) -> list[_Unit]:
    units: list[_Unit] = []
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == "<" and (m := _ENTITY_RE.match(raw, i)):
            units.append(_Unit(_entity_text(m[1], m[2], plain), i, m.end(), True))
            i = m.end()
            continue
        if c == "&":
            for escaped, char in _HTML_ENTITIES:
                if raw.startswith(escaped, i):
                    units.append(_Unit(char, i, i + len(escaped), True))
                    i += len(escaped)
                    break
            else:
                units.append(_Unit(c, i, i + 1, False))
                i += 1
            continue
        units.append(_Unit(c, i, i + 1, False))
        i += 1
    return units


def _lex(raw: str, plain: bool = False) -> Iterator[Token]:
    """Tokens one at a time, so a caller can stop early and take the rest of the text verbatim."""
    units = _units(raw, plain)
    n = len(units)
    i = 0
    while True:
        while i < n and not units[i].atomic and units[i].text.isspace():
            i += 1
        if i >= n:
            return
        first = i
        buf: list[str] = []
        literal_start = False
        while i < n:
            u = units[i]
            if u.atomic:
                buf.append(u.text)
                i += 1
                continue
            c = u.text
            if c.isspace():
                break
            if c == "\\":
                if i == first:
                    literal_start = True
                if i + 1 < n:
                    buf.append(units[i + 1].text)
                    i += 2
                else:  # a trailing backslash escapes nothing: keep it
                    buf.append(c)
                    i += 1
                continue
            if c in _DQ or c in _SQ:
                if i == first:
                    literal_start = True
                closers = _DQ if c in _DQ else _SQ
                j = i + 1
                while True:
                    if j >= n:
                        snippet = raw[u.start : u.start + 24]
                        raise UsageError(
                            f"unbalanced quote: the {c} before `{snippet}` is never closed. "
                            f"Close it, or put a backslash before it (\\{c})"
                        )
                    v = units[j]
                    if not v.atomic and v.text in closers:
                        break
                    if (
                        closers == _DQ
                        and not v.atomic
                        and v.text == "\\"
                        and j + 1 < n
                        and not units[j + 1].atomic
                        and units[j + 1].text in _DQ_ESCAPABLE
                    ):
                        buf.append(units[j + 1].text)
                        j += 2
                        continue
                    buf.append(v.text)
                    j += 1
                i = j + 1
                continue
            buf.append(c)
            i += 1
        yield Token("".join(buf), units[first].start, units[i - 1].end, literal_start)


def tokenize(text: str) -> list[str]:
    """Split Slack command text into words, shell-style.

    Single, double and smart quotes group words; a backslash escapes the next character (inside
    double quotes only quotes and backslashes); ``&amp; &lt; &gt;`` are unescaped; user and channel
    mentions become ``<@U123>`` / ``<#C123>``, links their URL. Raises :class:`UsageError` for an
    unbalanced quote.
    """
    return [t.text for t in _lex(text)]


_SAFE_WORD = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")


def quote(args: Sequence[str]) -> str:
    """The inverse of :func:`tokenize`: text (Slack-escaped) that tokenizes back to ``args``."""
    out = []
    for arg in args:
        if not _SAFE_WORD.fullmatch(arg):  # not match with $: that passes "0\n"
            arg = '"' + "".join("\\" + c if c in _DQ_ESCAPABLE else c for c in arg) + '"'
        out.append(slack_escape(arg))
    return " ".join(out)


def slack_escape(text: str) -> str:
    """Escape ``& < >`` as Slack does for user-typed text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_to_plain(text: str) -> str:
    """Slack command text as a person reads it: entities unescaped, mentions as ``@name``."""
    return "".join(u.text for u in _units(text, plain=True))


# --- value types -------------------------------------------------------------------------------


class _Invalid(ValueError):
    """A value that does not convert; ``standalone`` messages already say what the value was."""

    def __init__(self, message: str, standalone: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.standalone = standalone


@dataclass(frozen=True)
class _Ctx:
    account_id: str
    choices: tuple[str, ...] = ()


def _int(text: str, minimum: int) -> int:
    s = text.strip()
    if not re.fullmatch(r"[+-]?[0-9]+", s):
        raise _Invalid(f"must be a whole number, not `{text}`")
    value = int(s)
    if value < 0 and minimum >= 0:
        raise _Invalid(f"can't be negative (got {value})")
    if value < minimum:
        raise _Invalid(f"must be at least {minimum} (got {value})")
    if value > _INT32_MAX:
        raise _Invalid(f"is too large ({value}); the most it takes is {_INT32_MAX}")
    return value


def _duration(text: str, positive: bool) -> float:
    try:
        seconds = parse_go_duration(text)
    except DurationError as e:
        raise _Invalid(f"is not a duration: {e}") from None
    if not math.isfinite(seconds):
        raise _Invalid(f"`{text}` is too long a duration")
    if seconds < 0:
        raise _Invalid(f"can't be negative (got `{text}`)")
    if positive and seconds == 0:
        raise _Invalid(f"must be longer than 0 (got `{text}`); e.g. `30m` or `2h`")
    return seconds


def _deployment_id(text: str, ctx: _Ctx) -> str:
    s = text.strip()
    m = re.fullmatch(r"accounts/([^/]+)/deployments/([^/]+)", s)
    if m:  # a pasted full resource name
        if m[1] != ctx.account_id:
            raise _Invalid(
                f"deployment `{s}` belongs to account `{m[1]}`, but this bot manages `{ctx.account_id}`", True
            )
        s = m[2]
    problem = resource_id_problem(s, "deployment id")
    if problem:
        raise _Invalid(problem, True)
    return s


def _model(text: str, account: str) -> str:
    try:
        return resolve_model(text, account)
    except ModelNameError as e:
        raise _Invalid(str(e), True) from None


def _accelerator(text: str) -> str:
    try:
        return resolve_accelerator(text)
    except AcceleratorNameError as e:
        raise _Invalid(str(e), True) from None


def _shape(text: str) -> str:
    try:
        return normalize_shape(text)
    except SpecError as e:
        raise _Invalid(e.message, True) from None


def _positive_float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def _load_targets(text: str) -> dict[str, float]:
    targets: dict[str, float] = {}
    for item in text.split(","):
        key, eq, value = (p.strip() for p in item.partition("="))
        if not item.strip():
            raise _Invalid("has an empty entry; give KEY=VALUE pairs separated by commas, e.g. `default=0.8`")
        if not eq or not key or not value:
            raise _Invalid(f"entry `{item.strip()}` is not KEY=VALUE, e.g. `default=0.8`")
        if key not in LOAD_TARGET_KEYS:
            close = difflib.get_close_matches(key, LOAD_TARGET_KEYS, n=1)
            hint = f" Did you mean `{close[0]}`?" if close else ""
            raise _Invalid(f"key `{key}` is unknown; use {', '.join(LOAD_TARGET_KEYS)}.{hint}")
        if key in targets:
            raise _Invalid(f"gives `{key}` twice")
        number = _positive_float(value)
        if number is None:
            raise _Invalid(f"value `{value}` for `{key}` must be a positive number")
        targets[key] = number
    return targets


def _choice(text: str, ctx: _Ctx) -> str:
    s = text.strip().lower()
    if s in ctx.choices:
        return s
    close = difflib.get_close_matches(s, ctx.choices, n=1)
    hint = f" Did you mean `{close[0]}`?" if close else ""
    raise _Invalid(f"must be one of {', '.join(f'`{c}`' for c in ctx.choices)}, not `{text}`.{hint}")


_USER_RE = re.compile(r"^<@([UW][A-Z0-9]+)>\Z|^([UW][A-Z0-9]{2,})\Z")
_CHANNEL_RE = re.compile(r"^<#([CG][A-Z0-9]+)>\Z|^([CG][A-Z0-9]{2,})\Z")


def _user(text: str) -> str:
    m = _USER_RE.match(text.strip())
    if m:
        return m[1] or m[2]
    raise _Invalid(f"`{text}` is not a Slack user: mention them with @ so Slack links the name", True)


def _channel(text: str) -> str:
    m = _CHANNEL_RE.match(text.strip())
    if m:
        return m[1] or m[2]
    raise _Invalid(
        f"`{text}` is not a Slack channel: pick it with # so Slack links it (e.g. #ml-team)", True
    )


def _policy_target(text: str) -> tuple[str, str]:
    """``/fw policy``'s target: ``("channel", C…)`` or ``("user", U…)``."""
    if _CHANNEL_RE.match(text.strip()):
        return ("channel", _channel(text))
    if _USER_RE.match(text.strip()):
        return ("user", _user(text))
    raise _Invalid(f"`{text}` is neither a channel nor a person: pick a channel with # or mention someone "
                   "with @ (e.g. `/fw policy #ml-team` or `/fw policy @ana`)", True)


OVERRIDE_REASON_LIMIT = 300


def _reason(text: str) -> str:
    text = text.strip()
    if not text:
        raise _Invalid("needs a reason: say why the policy should not apply this time")
    if len(text) > OVERRIDE_REASON_LIMIT:
        raise _Invalid(f"is {len(text)} characters long; keep the reason under {OVERRIDE_REASON_LIMIT}")
    return text


def _usd(text: str) -> float:
    s = text.strip()
    m = re.fullmatch(r"\$?([0-9][0-9,]*(?:\.[0-9]+)?|\.[0-9]+)", s)
    value = float(m[1].replace(",", "")) if m else None
    if value is None or not math.isfinite(value) or value <= 0:
        raise _Invalid(f"must be a positive amount of US dollars such as `500` or `$1,200`, not `{text}`")
    return value


_DATE = r"(\d{4}-\d{2}-\d{2})"


def _period(text: str) -> CostPeriod:
    s = text.strip().lower()
    if s in ("today", "week", "month"):
        return CostPeriod(s)  # type: ignore[arg-type]
    m = re.fullmatch(_DATE + r"(?:\.\." + _DATE + r")?", s)
    if not m:
        raise _Invalid(
            f"`{text}` is not a period: use `today`, `week`, `month`, a date `2026-11-01`, "
            "or a range `2026-11-01..2026-11-15`",
            True,
        )
    try:
        first = date.fromisoformat(m[1])
        last = date.fromisoformat(m[2]) if m[2] else first
    except ValueError:
        raise _Invalid(f"`{text}` contains a date that does not exist", True) from None
    if first > last:
        raise _Invalid(f"period `{text}` ends before it starts", True)
    return CostPeriod("range", first, last)


def _topic(text: str) -> str:
    name = _canonical(text.strip().lower())
    if name is None:
        raise _Invalid(f"there is no subcommand `{text}`.{_subcommand_hint(text)}", True)
    return name


def _display_name(text: str) -> str:
    if len(text) >= DISPLAY_NAME_LIMIT:
        raise _Invalid(f"is {len(text)} characters long; it must be under {DISPLAY_NAME_LIMIT}")
    return text


def _description(text: str) -> str:
    if len(text) >= DESCRIPTION_LIMIT:
        raise _Invalid(f"is {len(text)} characters long; it must be under {DESCRIPTION_LIMIT}")
    return text


def _precision(text: str) -> str:
    try:
        return resolve_precision(text)
    except PrecisionNameError as e:
        raise _Invalid(str(e)) from None


def _region(text: str) -> str:
    try:
        return resolve_region(text)
    except RegionNameError as e:
        raise _Invalid(str(e)) from None


FILTER_LIMIT = 1000
_ORDER_TERM = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*(?:\s+(?:asc|desc))?", re.I)
_DIRECTION_WORD = re.compile(r"(?:asc|desc)(?:,.*)?", re.I)


def _filter(text: str) -> str:
    """An AIP-160 filter: Fireworks judges it; here only that there is one of a sane length."""
    s = text.strip()
    if not s:
        raise _Invalid("needs a filter, e.g. `state=READY` (quote one with spaces: `'display_name=\"my model\"'`)")
    if len(s) > FILTER_LIMIT:
        raise _Invalid(f"is {len(s)} characters long; at most {FILTER_LIMIT}")
    return s


def _order_by(text: str) -> str:
    """firectl's ``--order-by``: fields separated by commas, each with an optional `` desc``."""
    parts = [p.strip() for p in text.split(",")]
    for part in parts:
        if not part:
            raise _Invalid(f"has an empty entry in `{text}`; separate field names with single commas")
        if not _ORDER_TERM.fullmatch(part):
            raise _Invalid(f"takes field names separated by commas, each optionally followed by `desc` "
                           f"(e.g. `create_time desc` or `state,display_name`); `{part}` is not one")
    return ",".join(" ".join(p.split()) for p in parts)


_CONVERTERS: dict[str, Callable[[str, _Ctx], Any]] = {
    "text": lambda s, c: s,
    "moment": lambda s, c: s,  # a schedule's time and days, judged with the whole schedule
    "filter": lambda s, c: _filter(s),
    "order_by": lambda s, c: _order_by(s),
    "display_name": lambda s, c: _display_name(s),
    "description": lambda s, c: _description(s),
    "precision": lambda s, c: _precision(s),
    "region": lambda s, c: _region(s),
    "count": lambda s, c: _int(s, 0),
    "positive_int": lambda s, c: _int(s, 1),
    "duration": lambda s, c: _duration(s, positive=False),
    "positive_duration": lambda s, c: _duration(s, positive=True),
    "deployment_id": _deployment_id,
    "model": lambda s, c: _model(s, "fireworks"),
    "addon_model": lambda s, c: _model(s, c.account_id),
    "accelerator": lambda s, c: _accelerator(s),
    "shape": lambda s, c: _shape(s),
    "load_targets": lambda s, c: _load_targets(s),
    "choice": _choice,
    "user": lambda s, c: _user(s),
    "channel": lambda s, c: _channel(s),
    "usd": lambda s, c: _usd(s),
    "period": lambda s, c: _period(s),
    "topic": lambda s, c: _topic(s),
    "policy_target": lambda s, c: _policy_target(s),
    "reason": lambda s, c: _reason(s),
}

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


# --- the table ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flag:
    """A ``--flag`` of a subcommand. ``kind`` names its value type; ``bool`` flags take no value."""

    name: str
    kind: str
    help: str
    metavar: str = ""
    default: str | None = None  # as shown in the help; None = nothing to say
    required: bool = False
    choices: tuple[str, ...] = ()

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")

    @property
    def is_bool(self) -> bool:
        return self.kind == "bool"

    @property
    def synopsis(self) -> str:
        return f"--{self.name}" if self.is_bool else f"--{self.name} {self.metavar}"


@dataclass(frozen=True)
class Positional:
    """A positional argument. ``rest`` takes the remaining text verbatim (prompts, searches)."""

    name: str
    metavar: str
    kind: str
    help: str
    required: bool = True
    rest: bool = False
    default: str | None = None
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Args:
    sub: Subcommand
    values: dict[str, Any]
    raw: str
    account_id: str
    dry_run: bool

    def has(self, dest: str) -> bool:
        return dest in self.values


@dataclass(frozen=True)
class Subcommand:
    """One row of the grammar: everything the parser and the help need about a subcommand."""

    name: str
    group: str
    summary: str
    build: Callable[[_Args], ParsedCommand]
    positionals: tuple[Positional, ...] = ()
    flags: tuple[Flag, ...] = ()
    aliases: tuple[str, ...] = ()
    example: str = ""
    details: str = ""
    examples_more: tuple[str, ...] = field(default=())

    @property
    def changes(self) -> bool:
        return any(f.name == "dry-run" for f in self.flags)

    def flag(self, name: str) -> Flag | None:
        return next((f for f in self.flags if f.name == name), None)

    @property
    def usage(self) -> str:
        parts = [f"/fw {self.name}"]
        for p in self.positionals:
            parts.append(p.metavar if p.required else f"[{p.metavar}]")
        for f in self.flags:
            parts.append(f.synopsis if f.required else f"[{f.synopsis}]")
        return " ".join(parts)

    @property
    def short_usage(self) -> str:
        parts = [f"/fw {self.name}"]
        parts += [p.metavar if p.required else f"[{p.metavar}]" for p in self.positionals]
        parts += [f.synopsis for f in self.flags if f.required]
        if any(not f.required and f.name != "dry-run" for f in self.flags):
            parts.append("[flags]")
        return " ".join(parts)


def _error(a: _Args, e: SpecError) -> UsageError:
    return UsageError(e.message, a.sub.name, flag=e.flag)


def _request_fields(a: _Args) -> dict[str, Any]:
    """Flag values → ``DeploymentSpec``/``DeploymentChange`` fields (only the flags given)."""
    if a.has("accelerator_count") and a.has("world_size"):
        raise UsageError(
            "give either `--accelerator-count` or `--world-size` (its older name), not both",
            a.sub.name,
            flag="world-size",
        )
    renames = {
        "accelerator_count": "accelerator_count",
        "world_size": "accelerator_count",
        "scale_up_window": "scale_up_window_s",
        "scale_down_window": "scale_down_window_s",
        "scale_to_zero_window": "scale_to_zero_window_s",
        "unused_auto_delete_duration": "unused_auto_delete_s",
    }
    passthrough = (
        "display_name",
        "deployment_shape",
        "min_replica_count",
        "max_replica_count",
        "accelerator_type",
        "load_targets",
        "enable_addons",
        "description",
        "precision",
        "region",
        "long_prompt",
        "max_context_length",
        "draft_model",
        "draft_token_count",
        "ngram_speculation_length",
        "disable_speculative_decoding",
        "enable_mtp",
        "enable_session_affinity",
    )
    out: dict[str, Any] = {}
    for dest, value in a.values.items():
        if dest in renames:
            out[renames[dest]] = value
        elif dest in passthrough:
            out[dest] = value
    return out


def _build_deploy(a: _Args) -> ParsedCommand:
    fields = _request_fields(a)
    if a.has("deployment_id"):
        fields["deployment_id"] = a.values["deployment_id"]
    try:
        spec = DeploymentSpec(base_model=a.values["model"], **fields)
    except ValidationError as e:
        raise _error(a, spec_error_of(e)) from None
    return DeployCommand(spec=spec, raw=a.raw, dry_run=a.dry_run, override=a.values.get("override"))


def _build_update(a: _Args) -> ParsedCommand:
    fields = _request_fields(a)
    if not fields:
        raise UsageError(
            "nothing to change: give at least one flag, e.g. `--max-replica-count 2` or "
            "`--scale-to-zero-window 30m`",
            a.sub.name,
        )
    try:
        change = DeploymentChange(**fields)
    except ValidationError as e:
        raise _error(a, spec_error_of(e)) from None
    return UpdateCommand(deployment_id=a.values["id"], change=change, raw=a.raw, dry_run=a.dry_run,
                         override=a.values.get("override"))


def _build_lora(a: _Args) -> ParsedCommand:
    action = a.values["action"]
    if action == "load" and not a.has("deployment"):
        raise UsageError("`--deployment <id>` is required for `/fw lora load`: the deployment to load the addon on "
                         "(only `unload` goes without one, from Fireworks' serverless platform)",
                         a.sub.name, flag="deployment")
    if action == "unload":
        for dest, flag in (("replace_merged_addon", "replace-merged-addon"), ("public", "public")):
            if a.values.get(dest):
                raise UsageError(f"`--{flag}` is for `/fw lora load` only; unloading takes `--deployment`",
                                 a.sub.name, flag=flag)
    return LoraCommand(action=action, addon_model=a.values["addon_model"],
                       deployment_id=a.values.get("deployment"), public=bool(a.values.get("public")),
                       replace_merged_addon=bool(a.values.get("replace_merged_addon")), raw=a.raw,
                       dry_run=a.dry_run)


def _simple(cls: type[ParsedCommand], **renames: str) -> Callable[[_Args], ParsedCommand]:
    """A builder that passes values on by name (``field=dest`` renames one)."""

    def build(a: _Args) -> ParsedCommand:
        kwargs = {fld: a.values[dest] for fld, dest in renames.items() if dest in a.values}
        return cls(raw=a.raw, dry_run=a.dry_run, **kwargs)

    return build


def _build_scale(a: _Args) -> ParsedCommand:
    """``/fw scale ID N`` or firectl's ``--replica-count N``: exactly one of them."""
    if a.has("replicas") and a.has("replica_count"):
        raise UsageError("give the replica count once: `<replicas>` or `--replica-count`, not both", a.sub.name,
                         flag="replica-count")
    if not (a.has("replicas") or a.has("replica_count")):
        raise UsageError("missing `<replicas>`: how many replicas? e.g. `/fw scale my-llama 2` "
                         "(or firectl's `--replica-count 2`)",
                         a.sub.name, flag="replica-count")
    replicas = a.values["replicas"] if a.has("replicas") else a.values["replica_count"]
    return ScaleCommand(raw=a.raw, dry_run=a.dry_run, deployment_id=a.values["id"], replicas=replicas)


def _build_schedule(a: _Args) -> ParsedCommand:
    """``/fw schedule ID``: show; ``--down``/``--up``/``--up-min`` set; ``--clear`` removes."""
    given = [f"`--{n.replace('_', '-')}`" for n in ("down", "up", "up_min") if a.has(n)]
    if a.values.get("clear"):
        if given:
            raise UsageError(f"`--clear` removes the schedule; it takes no {', '.join(given)}", a.sub.name, flag="clear")
        return ScheduleCommand(raw=a.raw, dry_run=a.dry_run, deployment_id=a.values["id"], clear=True)
    if not given:
        if a.dry_run:
            raise UsageError("showing a schedule changes nothing; `--dry-run` goes with `--down` or `--clear`",
                             a.sub.name, flag="dry-run")
        return ScheduleCommand(raw=a.raw, deployment_id=a.values["id"])
    if not a.has("down"):
        raise UsageError("a schedule needs `--down`: when to scale to zero, e.g. `--down \"19:00 Mon-Fri\"`",
                         a.sub.name, flag="down")
    try:
        schedule = make_schedule(a.values["down"], a.values.get("up"), a.values.get("up_min"))
    except ScheduleError as e:
        raise UsageError(e.message, a.sub.name) from None
    return ScheduleCommand(raw=a.raw, dry_run=a.dry_run, deployment_id=a.values["id"], schedule=schedule)


# Flags shared by deploy and update (firectl's names).
_ID_RULES = "lowercase letters, digits and `-`, starting with a letter, at most 63 characters"
_REQUEST_FLAGS: tuple[Flag, ...] = (
    Flag("deployment-id", "deployment_id", f"Id of the new deployment ({_ID_RULES}).", "ID", "generated by Fireworks"),
    Flag("display-name", "display_name", f"Human-readable name, under {DISPLAY_NAME_LIMIT} characters.", "TEXT"),
    Flag("description", "description", f"Description of the deployment, under {DESCRIPTION_LIMIT} characters; "
         "quote text with spaces.", "TEXT"),
    Flag(
        "deployment-shape",
        "shape",
        "A validated deployment shape: a preset ("
        + ", ".join(f"`{p}`" for p in SHAPE_PRESETS)
        + ") chosen for the model, or a shape name `accounts/<account>/deploymentShapes/<shape>`. "
        "The shape decides accelerator type and count.",
        "SHAPE",
    ),
    Flag("min-replica-count", "count", "Fewest replicas kept running; 0 lets it scale to zero when idle.", "N", "0"),
    Flag("max-replica-count", "count", "Most replicas the autoscaler may start; sets the worst-case cost. At least "
         "1: with 0 it could never serve a request.", "N", "1"),
    Flag(
        "accelerator-type",
        "accelerator",
        "GPU type, one fwbot has a price for: " + ", ".join(f"`{s}`" for s in _LISTED) + " (list prices), or "
        + ", ".join(f"`{s}`" for s in _UNLISTED) + " once `FWBOT_PRICES` prices it; or the API name "
        "(`NVIDIA_H100_80GB`).",
        "TYPE",
    ),
    Flag("accelerator-count", "positive_int", "GPUs per replica.", "N", "the smallest that fits the model"),
    Flag("world-size", "positive_int", "Older name of `--accelerator-count`; give one or the other.", "N"),
    Flag("scale-up-window", "duration", "How long load must stay high before adding a replica.", "D", "30s"),
    Flag("scale-down-window", "duration", "How long load must stay low before removing a replica.", "D", "10m"),
    Flag(
        "scale-to-zero-window",
        "duration",
        "Idle time after which Fireworks scales to zero replicas (only with min replicas 0; at least 5m).",
        "D",
        "1h",
    ),
    Flag(
        "unused-auto-delete-duration",
        "duration",
        "The bot deletes the deployment after this long without traffic (with warnings first); "
        "`0` turns bot auto-delete off for it.",
        "D",
        "168h",
    ),
    Flag(
        "load-targets",
        "load_targets",
        "Autoscaling targets as KEY=VALUE pairs, keys: " + ", ".join(f"`{k}`" for k in LOAD_TARGET_KEYS) + ".",
        "K=V,...",
        "default=0.8",
    ),
    Flag("enable-addons", "bool", "Allow LoRA addons on this deployment (`/fw lora load`).", "", "off"),
    Flag("precision", "precision", "Precision to serve the model at: " + ", ".join(f"`{p}`" for p in PRECISIONS)
         + " (any case). Not with `--deployment-shape`, which decides it.", "PRECISION", "Fireworks' choice"),
    Flag("region", "region", f"Pin the deployment to one region, e.g. {REGION_EXAMPLES} (any case). "
         "Single-region placement costs 1.5× the list price; it cannot be changed later.", "REGION",
         "global (multi-region)"),
    Flag("max-context-length", "count", "Longest context (prompt + answer) in tokens; `0` means the model's "
         "own maximum.", "N", "the model's"),
    Flag("long-prompt", "bool", "Tune the deployment for long prompts.", "", "off"),
    Flag("draft-model", "model", "Draft model for speculative decoding (a short id means the Fireworks catalog, "
         "as for the base model); needs `--draft-token-count`.", "MODEL", "the model's default draft model"),
    Flag("draft-token-count", "positive_int", "Tokens to guess per step with speculative decoding (typically "
         "4); required with `--draft-model` or `--ngram-speculation-length`.", "N"),
    Flag("ngram-speculation-length", "positive_int", "Speculate from n-grams of the prompt instead of a draft "
         "model: how much of the earlier input to consider. Not with `--draft-model`.", "N"),
    Flag("disable-speculative-decoding", "bool", "Turn speculative decoding off, even where the model has a "
         "default draft model; not with the other speculative flags. Only when creating.", "", "off"),
    Flag("enable-mtp", "bool", "Enable multi-token prediction.", "", "off"),
    Flag("enable-session-affinity", "bool", "Sticky routing: requests with the same `user` field go to the "
         "same replica.", "", "off"),
)
# Flags only a create takes, and why ``/fw update`` refuses them (said instead of "not a flag").
_CREATE_ONLY: dict[str, str] = {
    "region": "placement cannot be changed in place; a deployment stays where it was created. To move it, "
    "create a new one with `/fw deploy <model> --region …` and delete this one.",
    "disable-speculative-decoding": "Fireworks takes it only when a deployment is created. To run without "
    "speculative decoding, create a new deployment with `/fw deploy <model> --disable-speculative-decoding`.",
}
_DRY_RUN = Flag("dry-run", "bool", "Show what would happen, with the worst-case cost, and change nothing.")
_OVERRIDE = Flag("override", "reason", "Admins only: go ahead although the team policy (`/fw policy`) forbids "
                 "it, saying why; the override is audited with the rules it broke.", "REASON")
_DEPLOY_FLAGS = (*_REQUEST_FLAGS, _OVERRIDE, _DRY_RUN)
_UPDATE_FLAGS = (
    *(
        Flag(f.name, f.kind, f.help.replace("Id of the new deployment", "Id"), f.metavar, None, f.required, f.choices)
        for f in _REQUEST_FLAGS
        if f.name != "deployment-id" and f.name not in _CREATE_ONLY
    ),
    _OVERRIDE,
    _DRY_RUN,
)

_ID = Positional("id", "<id>", "deployment_id", "Deployment id (a full `accounts/…/deployments/…` name works too).")

GROUPS: tuple[str, ...] = ("Deployments", "LoRA", "Ownership & lifecycle", "Money", "Guardrails", "Other")

_TABLE: tuple[Subcommand, ...] = (
    Subcommand(
        "deploy",
        "Deployments",
        "Create a deployment (no arguments: open the deploy form)",
        _build_deploy,
        positionals=(
            Positional(
                "model",
                "<model>",
                "model",
                "Base model: a short id from the Fireworks catalog (`llama-v3p1-8b-instruct`), "
                "`<account>/<model>`, or `accounts/<account>/models/<model>`.",
            ),
        ),
        flags=_DEPLOY_FLAGS,
        example="/fw deploy llama-v3p1-8b-instruct --accelerator-type h100 --max-replica-count 2 --scale-to-zero-window 30m",
        examples_more=("/fw deploy llama-v3p1-8b-instruct --deployment-shape fast", "/fw deploy"),
        details="With no arguments it opens a form offering the model's validated shapes with their price. "
        "The reply states the worst-case hourly cost (max replicas × GPUs per replica × price per GPU-hour, "
        "× 1.5 with `--region`); expensive requests may need approval. Speculative decoding: the model's default "
        "unless `--draft-model` or `--ngram-speculation-length` (each with `--draft-token-count`), `--enable-mtp`, "
        "or `--disable-speculative-decoding`.",
    ),
    Subcommand(
        "list",
        "Deployments",
        "List deployments: yours, or everyone's",
        _simple(ListCommand, scope="scope", filter="filter", order_by="order_by", show_deleted="show_deleted"),
        positionals=(
            Positional("scope", "mine|all", "choice", "Whose deployments to list.", False, default="all",
                       choices=("mine", "all")),
        ),
        flags=(
            Flag("filter", "filter", "Only deployments matching this AIP-160 filter, applied by Fireworks: "
                 "`field=value` terms (also `!=` and `:`) joined by `AND`, e.g. `state=READY` or "
                 "`accelerator_type=NVIDIA_H100_80GB AND min_replica_count=0`. Quote a filter with spaces "
                 "inside a value: `'display_name=\"my model\"'`.", "FILTER"),
            Flag("order-by", "order_by", "Fields to sort by, comma-separated, each optionally followed by "
                 "`desc` (e.g. `create_time desc`, `display_name`). Quote it when it has a space.", "FIELDS",
                 "create_time"),
            Flag("show-deleted", "bool", "Include deleted deployments (until Fireworks purges them), marked "
                 "as deleted.", "", "off"),
        ),
        example="/fw list mine",
        examples_more=("/fw list all --filter state=READY --order-by 'create_time desc'",
                       "/fw list --show-deleted"),
        details="Fireworks filters and sorts; the reply shows 20 at a time with the total count and a "
        "*Next page* button. `mine` keeps those you own in fwbot, after Fireworks' filter.",
    ),
    Subcommand(
        "get",
        "Deployments",
        "Show one deployment: state, replicas, cost, owner, idle timers, schedule and lifetime",
        _simple(GetCommand, deployment_id="id"),
        positionals=(_ID,),
        aliases=("status",),
        example="/fw get my-llama",
        details="Times are in your Slack timezone, with how long ago or how soon. The idle timers are the ones "
        "fwbot warns about and acts on: when Fireworks scales it to zero, when it is auto-deleted (by fwbot, or by "
        "Fireworks' own schedule) and when fwbot reports it idle but paying; with a team policy's max_lifetime, "
        "also when fwbot deletes it at the end of its lifetime (a hard cap; only the warning's Renew button "
        "moves it). A deleted deployment has none, and shows when Fireworks purges it instead.",
    ),
    Subcommand(
        "update",
        "Deployments",
        "Change a deployment's settings; only the flags you give change",
        _build_update,
        positionals=(_ID,),
        flags=_UPDATE_FLAGS,
        example="/fw update my-llama --max-replica-count 4 --scale-to-zero-window 15m",
        details="Takes the same flags as `/fw deploy` except `--deployment-id`, `--region` and "
        "`--disable-speculative-decoding`, which only a create takes (placement cannot be changed in place); "
        "the reply shows before → after. A `--flag=false` turns an on/off setting off.",
    ),
    Subcommand(
        "scale",
        "Deployments",
        "Set the number of replicas now (0 scales to zero)",
        _build_scale,
        positionals=(_ID, Positional("replicas", "<replicas>", "count", "Replica count, 0 or more.", required=False)),
        flags=(Flag("replica-count", "count", "firectl's spelling of `<replicas>`; give one or the other.", "N"),
               _DRY_RUN),
        example="/fw scale my-llama 0",
        examples_more=("/fw scale my-llama --replica-count 2",),
        details="Scaling someone else's deployment to 0 asks for confirmation.",
    ),
    Subcommand(
        "delete",
        "Deployments",
        "Delete a deployment (its owner or an admin confirms once; anyone else asks an approver)",
        _simple(DeleteCommand, deployment_id="id", hard="hard", ignore_checks="ignore_checks"),
        positionals=(_ID,),
        flags=(
            Flag("hard", "bool", "Purge it at once instead of a soft delete that `/fw undelete` can reverse.",
                 "", "soft delete"),
            Flag("ignore-checks", "bool", "Skip Fireworks' check that the deployment is not in use (serving "
                 "traffic): it is deleted even then, and requests to it fail.", "", "off"),
            _DRY_RUN,
        ),
        example="/fw delete my-llama",
        examples_more=("/fw delete my-llama --ignore-checks",),
        details="The owner or an admin gets one confirmation; anyone else's delete becomes an approval request "
        "when approvals are on (you see who can approve it, and the owner is told by DM) and is refused when "
        "they are off. The Delete buttons on tracking messages and cost digests follow the same rule. When "
        "Fireworks refuses because the deployment is in use, you are told so and offered *Delete anyway*, "
        "which asks once more and then deletes it as `--ignore-checks` does (by the same rule).",
    ),
    Subcommand(
        "undelete",
        "Deployments",
        "Restore a soft-deleted deployment",
        _simple(UndeleteCommand, deployment_id="id"),
        positionals=(_ID,),
        flags=(_DRY_RUN,),
        example="/fw undelete my-llama",
        details="Only a deleted deployment can be undeleted, until Fireworks purges it (`/fw get` says when). It "
        "comes back through CREATING, with a cold start.",
    ),
    Subcommand(
        "lora",
        "LoRA",
        "Load or unload a LoRA addon on a deployment",
        _build_lora,
        positionals=(
            Positional("action", "load|unload", "choice", "What to do with the addon.", choices=("load", "unload")),
            Positional(
                "addon_model",
                "<addon-model>",
                "addon_model",
                "The LoRA model: a bare id means a model in this bot's Fireworks account; "
                "`<account>/<model>` or `accounts/<account>/models/<model>` for others.",
            ),
        ),
        flags=(
            Flag("deployment", "deployment_id", "The deployment to load it on (created with `--enable-addons`), or "
                 "to unload it from. Required for `load`; `unload` without it unloads the addon from Fireworks' "
                 "serverless platform, as firectl does.", "<id>"),
            Flag("replace-merged-addon", "bool", "`load` only: needed to load onto a hot-reload deployment; the "
                 "addon it has is replaced.", "", "off"),
            Flag("public", "bool", "`load` only: make the addon publicly available for inference.", "", "off"),
            _DRY_RUN,
        ),
        example="/fw lora load my-adapter --deployment my-llama",
        examples_more=("/fw lora unload my-adapter --deployment my-llama",
                       "/fw lora load my-adapter --deployment my-hot-llama --replace-merged-addon"),
        details="The reply says what was loaded or unloaded where (and what a `--replace-merged-addon` replaced).",
    ),
    Subcommand(
        "keep",
        "Ownership & lifecycle",
        "Keep a deployment warm and postpone idle actions for a while",
        _simple(KeepCommand, deployment_id="id", duration_s="duration"),
        positionals=(
            _ID,
            Positional("duration", "D", "positive_duration", "How long to keep it.", False, default=humanize(DEFAULT_KEEP_S)),
        ),
        flags=(_DRY_RUN,),
        example="/fw keep my-llama 3h",
        details="Keeps it warm and postpones scale-to-zero and auto-delete (and their warnings) for D; "
        "afterwards the deployment's own settings apply again.",
    ),
    Subcommand(
        "schedule",
        "Ownership & lifecycle",
        "Off-hours: scale a deployment to zero at set times and back up (show, set or clear)",
        _build_schedule,
        positionals=(_ID,),
        flags=(
            Flag("down", "moment", "When to scale to zero (min replicas 0, replicas 0): a 24-hour time and the days, "
                 "e.g. `\"19:00 Mon-Fri\"`, `\"22:00 daily\"`, `\"18:00 Fri\"`; days are `Mon`…`Sun`, ranges "
                 "(`Mon-Fri`), lists (`Sat,Sun`), `weekdays`, `weekends` or `daily` (the default).",
                 "\"TIME [DAYS]\""),
            Flag("up", "moment", "When to bring it back: min replicas back to `--up-min`, same form as `--down`. "
                 "Without it, it stays at zero until someone scales it.", "\"TIME [DAYS]\""),
            Flag("up-min", "positive_int", "The min replica count `--up` restores.", "N", "1"),
            Flag("clear", "bool", "Remove the schedule; replicas stay as they are.", "", "off"),
            _DRY_RUN,
        ),
        example='/fw schedule my-llama --down "19:00 Mon-Fri" --up "08:00 Mon-Fri"',
        examples_more=("/fw schedule my-llama", '/fw schedule my-llama --down "20:00 daily" --up "07:30 weekdays" '
                       "--up-min 2", "/fw schedule my-llama --clear"),
        details="Times are in the owner's Slack timezone (else `FWBOT_TIMEZONE`), daylight saving included; every "
        "reply names the zone. Only the owner or an admin sets or clears one; a new schedule replaces the old "
        "and counts from now. fwbot warns in the deployment's thread before each scale-down; *Keep warm* "
        "(or `/fw keep`) and *Snooze* postpone it until they end, and skip the night if they last past the "
        "next `--up`. `/fw get`, the tracking message and the App Home show it with its next transition. "
        "The team policy may set a schedule for a channel or group (`schedule` in the policy file); it "
        "applies to deployments without one of their own, and a schedule set here overrides it.",
    ),
    Subcommand(
        "owner",
        "Ownership & lifecycle",
        "Hand a deployment to someone else",
        _simple(OwnerCommand, deployment_id="id", user_id="user"),
        positionals=(_ID, Positional("user", "<@user>", "user", "The new owner, mentioned with @.")),
        flags=(_DRY_RUN,),
        example="/fw owner my-llama @alice",
    ),
    Subcommand(
        "adopt",
        "Ownership & lifecycle",
        "Claim a deployment created outside the bot",
        _simple(AdoptCommand, deployment_id="id"),
        positionals=(_ID,),
        example="/fw adopt ymlz8joa",
        details="You become its owner and this channel gets its warnings. One you own already stays as it is; "
        "one someone else owns needs them or an admin (`/fw owner`).",
    ),
    Subcommand(
        "audit",
        "Ownership & lifecycle",
        "Who did what, when and why: the newest actions on one deployment or all",
        _simple(AuditCommand, deployment_id="id"),
        positionals=(Positional("id", "<id>", "deployment_id", "Only this deployment.", False, default="all"),),
        example="/fw audit my-llama",
        details="Newest 25 entries, each with when (in your Slack timezone), who (by name), what changed "
        "(e.g. `Min replicas 1 → 2`, the value before taken from fwbot's own trail) and, for approved requests, "
        "who approved and why it needed approval; rejections show their reason. Older entries are counted, not shown.",
    ),
    Subcommand(
        "cost",
        "Money",
        "What deployments cost, grouped by owner, channel, deployment or model",
        _simple(CostCommand, period="period", by="by"),
        positionals=(
            Positional(
                "period",
                "today|week|month|<from>..<to>",
                "period",
                "`today`, `week` (since Monday), `month` (since the 1st), a date `2026-11-01` or an "
                "inclusive range `2026-11-01..2026-11-15`.",
                False,
                default="month",
            ),
        ),
        flags=(
            Flag("by", "choice", "How to group the costs.", "|".join(COST_GROUPINGS), "deployment",
                 choices=COST_GROUPINGS),
        ),
        example="/fw cost week --by owner",
    ),
    Subcommand(
        "budget",
        "Money",
        "Set a channel's monthly budget in USD",
        _simple(BudgetCommand, channel_id="channel", usd_per_month="usd"),
        positionals=(
            Positional("channel", "<#channel>", "channel", "The channel, picked with #."),
            Positional("usd", "<usd-per-month>", "usd", "Budget in US dollars per month, e.g. `500` or `$1,200`."),
        ),
        example="/fw budget #ml-team 2000",
    ),
    Subcommand(
        "policy",
        "Guardrails",
        "Show the team policy in force here (or for a channel or person), and where each rule comes from",
        _simple(PolicyCommand, target="target"),
        positionals=(Positional("target", "#channel|@user", "policy_target",
                                "A channel (picked with #) or a person (mentioned with @); default: you, here.",
                                False),),
        example="/fw policy",
        examples_more=("/fw policy #ml-team", "/fw policy @ana"),
        details="The team keeps its guardrails in a policy file (`FWBOT_POLICY_FILE`, or the `[policy]` table of "
        "`fwbot.toml`): allowed models, accelerators and regions, size limits, GPU quotas, the idle policy a "
        "deployment must have, a maximum lifetime, the $/h above which approval is needed, quiet hours. Rules "
        "apply per channel and per Slack user group; a group's rule beats a channel's, which beats the defaults. "
        "fwbot re-reads the file when it changes; a bad file is refused with its line, and the last good one stays.",
    ),
    Subcommand(
        "quota",
        "Guardrails",
        "Your GPUs and your team's, against the policy's quotas",
        _simple(QuotaCommand, user_id="user"),
        positionals=(Positional("user", "@user", "user", "Someone else (mentioned with @); default: you.", False),),
        example="/fw quota",
        details="A quota counts each live deployment at its worst case, max replicas × GPUs per replica, since "
        "autoscaling can reach it without asking anyone. A request that would go over is refused and nothing is "
        "created; scaling down and deleting are always allowed.",
    ),
    Subcommand(
        "models",
        "Other",
        "Base models you can deploy, with context length, size and LoRA support",
        _simple(ModelsCommand, query="query"),
        positionals=(Positional("query", "query", "text", "Words to search for.", False, rest=True),),
        example="/fw models llama 70b",
        details="When nothing matches, the closest model ids are suggested; `/fw deploy` does the same for a "
        "model it does not know.",
    ),
    Subcommand(
        "query",
        "Other",
        "Send one prompt to a deployment; shows the answer and latency",
        _simple(QueryCommand, deployment_id="id", prompt="prompt"),
        positionals=(_ID, Positional("prompt", "<prompt…>", "text", "Everything after the id, as typed.", rest=True)),
        example="/fw query my-llama Write a haiku about GPUs",
    ),
    Subcommand(
        "help",
        "Other",
        "This overview, or the details of one subcommand",
        _simple(HelpCommand, topic="topic"),
        positionals=(Positional("topic", "subcommand", "topic", "The subcommand to explain.", False),),
        example="/fw help deploy",
    ),
)

_BY_NAME: dict[str, Subcommand] = {s.name: s for s in _TABLE}
_ALIASES: dict[str, str] = {a: s.name for s in _TABLE for a in s.aliases}

SUBCOMMANDS: tuple[str, ...] = tuple(s.name for s in _TABLE)
"""Every ``/fw`` subcommand, in help order."""


def subcommand(name: str) -> Subcommand:
    """The table row of a subcommand (by name or alias); ``KeyError`` if there is none."""
    canonical = _canonical(name)
    if canonical is None:
        raise KeyError(name)
    return _BY_NAME[canonical]


def _canonical(name: str) -> str | None:
    name = name.lower()
    return name if name in _BY_NAME else _ALIASES.get(name)


def _all_names() -> list[str]:
    return [*_BY_NAME, *_ALIASES]


def _suggest(word: str, candidates: Sequence[str], before: str = "`", after: str = "`") -> str:
    close = difflib.get_close_matches(word.lower(), list(candidates), n=1, cutoff=0.6)
    return f" Did you mean {before}{close[0]}{after}?" if close else ""


def _subcommand_hint(word: str) -> str:
    """The closest subcommand, or the list of all when nothing is close."""
    hint = _suggest(word, _all_names(), "`/fw ", "`")
    return hint or " Subcommands: " + ", ".join(f"`{s}`" for s in SUBCOMMANDS) + "."


def usage_line(name: str | None) -> str:
    """The usage line of a subcommand, or of ``/fw`` itself for ``None``."""
    if name is None or _canonical(name) is None:
        return "/fw <subcommand> [arguments] — " + ", ".join(SUBCOMMANDS)
    return subcommand(name).usage


# --- parser ------------------------------------------------------------------------------------

_NUMBER_RE = re.compile(r"^-[0-9.]")
_HELP_FLAGS = ("--help", "-h")
# Slack clients on macOS (and many phones) turn a typed ``--`` into an em dash ``—`` and ``-``
# into an en dash ``–``; some keyboards give a minus sign ``−``. A word that starts with a run of
# such dashes, at least one of them typographic, and then a letter (or is only dashes) is read as
# ``--`` plus the rest, so ``—max-replica-count 2`` is ``--max-replica-count 2`` (and ``–h`` is
# ``-h``). Quoted or escaped words are left alone.
_TYPOGRAPHIC_DASHES = "\u2014\u2013\u2212"  # em dash, en dash, minus sign
_DASH_RUN_RE = re.compile(f"^[-{_TYPOGRAPHIC_DASHES}]+(?=[A-Za-z]|\\Z)")


def _ascii_dashes(t: Token) -> Token:
    """``t`` with a leading run of typographic dashes read as ``--`` (see above)."""
    if t.literal_start:
        return t
    m = _DASH_RUN_RE.match(t.text)
    if m is None or not any(c in _TYPOGRAPHIC_DASHES for c in m.group()):
        return t
    rest = t.text[m.end():]
    return Token(("-" if len(rest) == 1 else "--") + rest, t.start, t.end, False)  # a lone letter: ``-h``


def _looks_like_flag(t: Token) -> bool:
    return not t.literal_start and t.text.startswith("-") and len(t.text) > 1 and not _NUMBER_RE.match(t.text)


def _convert(kind: str, text: str, label: str, sub: str, ctx: _Ctx, flag: str | None) -> Any:
    try:
        return _CONVERTERS[kind](text, ctx)
    except _Invalid as e:
        message = e.message if e.standalone else f"{label} {e.message}"
        raise UsageError(message, sub, flag=flag) from None


def _unknown_flag(sub: Subcommand, text: str) -> UsageError:
    name = text.split("=", 1)[0]
    if sub.name == "update" and name.lstrip("-").lower() in _CREATE_ONLY:
        flag = name.lstrip("-").lower()
        return UsageError(f"`--{flag}` cannot be changed with `/fw update`: {_CREATE_ONLY[flag]}", sub.name, flag=flag)
    if name.lstrip("-") == "dry-run" and not sub.changes:
        return UsageError(f"`/fw {sub.name}` changes nothing, so it has no `--dry-run`", sub.name)
    candidates = [f"--{f.name}" for f in sub.flags]
    guess = name if name.startswith("--") else "-" + name
    hint = _suggest(guess, candidates)
    if not candidates:
        hint = f" `/fw {sub.name}` takes no flags."
    return UsageError(f"`{name}` is not a flag of `/fw {sub.name}`.{hint}", sub.name, flag=name.lstrip("-"))


def _rest_text(raw: str) -> str:
    """The verbatim rest of a command as a person typed it; one quoted word loses its quotes."""
    plain = slack_to_plain(raw).strip()
    try:
        tokens = list(_lex(raw, plain=True))
    except UsageError:  # an apostrophe in a prompt is not a syntax error
        return plain
    if len(tokens) == 1 and tokens[0].literal_start:
        return tokens[0].text
    return plain


def parse(text: str, *, account_id: str) -> ParsedCommand:
    """Parse the text after ``/fw`` into a command, or raise :class:`UsageError`.

    ``account_id`` is the bot's Fireworks account: bare LoRA model ids live there, and pasted
    ``accounts/<a>/deployments/<id>`` names must belong to it. Empty text means ``help``.
    """
    lexer = (_ascii_dashes(t) for t in _lex(text))
    first = next(lexer, None)
    if first is None or (first.text.lower() in _HELP_FLAGS and not first.literal_start):
        return HelpCommand(raw=text)
    name = _canonical(first.text)
    if name is None:
        raise UsageError(f"unknown subcommand `{first.text}`.{_subcommand_hint(first.text)}")
    sub = _BY_NAME[name]

    rest = next((p for p in sub.positionals if p.rest), None)
    tokens: list[Token] = []
    rest_value: str | None = None
    if rest is not None:
        # Fixed positionals first, then the text after them verbatim: quotes and apostrophes in a
        # prompt are the user's, not the grammar's.
        fixed = sub.positionals.index(rest)
        end = first.end
        while len(tokens) < fixed:
            tok = next(lexer, None)
            if tok is None:
                break
            if _looks_like_flag(tok):
                if tok.text.lower() in _HELP_FLAGS:
                    return HelpCommand(topic=sub.name, raw=text)
                raise _unknown_flag(sub, tok.text)
            tokens.append(tok)
            end = tok.end
        rest_value = _rest_text(text[end:]) if len(tokens) == fixed else ""
        if rest_value in _HELP_FLAGS:
            return HelpCommand(topic=sub.name, raw=text)
    else:
        try:
            tokens = list(lexer)
        except UsageError as e:
            raise UsageError(e.message, sub.name) from None

    if sub.name == "deploy" and not tokens:
        return DeployModalCommand(raw=text)

    values: dict[str, Any] = {}
    positionals: list[Token] = []
    i = 0
    only_positionals = False
    while i < len(tokens):
        tok = tokens[i]
        i += 1
        if not only_positionals and tok.text == "--" and not tok.literal_start:
            only_positionals = True
            continue
        if only_positionals or not _looks_like_flag(tok):
            positionals.append(tok)
            continue
        if tok.text.lower() in _HELP_FLAGS:
            return HelpCommand(topic=sub.name, raw=text)
        if not tok.text.startswith("--"):
            raise _unknown_flag(sub, tok.text)
        flag_name, eq, inline = tok.text[2:].partition("=")
        flag = sub.flag(flag_name.lower())
        if flag is None:
            raise _unknown_flag(sub, tok.text)
        label = f"`--{flag.name}`"
        if flag.dest in values:
            raise UsageError(f"{label} is given twice", sub.name, flag=flag.name)
        if flag.is_bool:
            if not eq:
                values[flag.dest] = True
            elif inline.lower() in _TRUE + _FALSE:
                values[flag.dest] = inline.lower() in _TRUE
            else:
                raise UsageError(f"{label} is on or off: write `{label[1:-1]}` or `{label[1:-1]}=false`",
                                 sub.name, flag=flag.name)
            continue
        if eq:
            value = inline
        elif i < len(tokens) and not (tokens[i].text.startswith("--") and not tokens[i].literal_start):
            value = tokens[i].text
            i += 1
            # `--order-by create_time desc` typed without quotes: the direction belongs to the fields.
            while flag.kind == "order_by" and i < len(tokens) and _DIRECTION_WORD.fullmatch(tokens[i].text):
                value += " " + tokens[i].text
                i += 1
            # `--down 19:00 Mon-Fri` typed without quotes: the days belong to the time.
            while flag.kind == "moment" and i < len(tokens) and is_days_text(tokens[i].text):
                value += " " + tokens[i].text
                i += 1
        else:
            raise UsageError(f"{label} needs a value: `{flag.synopsis}`", sub.name, flag=flag.name)
        values[flag.dest] = _convert(flag.kind, value, label, sub.name, _Ctx(account_id, flag.choices), flag.name)

    fixed_positionals = [p for p in sub.positionals if not p.rest]
    if len(positionals) > len(fixed_positionals):
        extra = " ".join(t.text for t in positionals[len(fixed_positionals):])
        takes = " ".join(p.metavar for p in fixed_positionals) or "no arguments"
        raise UsageError(f"too many arguments: `{extra}` — `/fw {sub.name}` takes {takes}", sub.name)
    for p, tok in zip(fixed_positionals, positionals, strict=False):
        values[p.name] = _convert(p.kind, tok.text, f"`{p.metavar}`", sub.name, _Ctx(account_id, p.choices), None)
    for p in fixed_positionals[len(positionals):]:
        if p.required:
            raise UsageError(f"missing `{p.metavar}` — {p.help[:1].lower()}{p.help[1:]}", sub.name)
    if rest is not None:
        if rest_value:
            values[rest.name] = rest_value
        elif rest.required:
            raise UsageError(f"missing `{rest.metavar}` — {rest.help[:1].lower()}{rest.help[1:]}", sub.name)
    for f in sub.flags:
        if f.required and f.dest not in values:
            raise UsageError(f"`{f.synopsis}` is required", sub.name, flag=f.name)

    dry_run = bool(values.pop("dry_run", False))
    return sub.build(_Args(sub, values, text, account_id, dry_run))


# --- help --------------------------------------------------------------------------------------


def _notes(sub: Subcommand) -> list[str]:
    kinds = {f.kind for f in sub.flags} | {p.kind for p in sub.positionals}
    notes = []
    if kinds & {"duration", "positive_duration"}:
        notes.append(_DURATION_NOTE)
    if "unused-auto-delete-duration" in {f.name for f in sub.flags}:
        notes.append(_AUTO_DELETE_NOTE)
    if "model" in kinds:
        notes.append(_MODEL_NOTE)
    if "accelerator" in kinds:
        notes.append(_ACCELERATOR_NOTE)
    return notes


_DURATION_NOTE = "Durations use Go syntax: `90s`, `10m`, `1h30m`, `168h`."
_AUTO_DELETE_NOTE = (
    "`--unused-auto-delete-duration 0` turns bot auto-delete off for that deployment "
    "(default: deleted after 168h without traffic, with warnings first)."
)
_MODEL_NOTE = (
    "Models: a short id means the Fireworks catalog (`llama-v3p1-8b-instruct` = "
    "`accounts/fireworks/models/llama-v3p1-8b-instruct`); `/fw models` lists them."
)
_ACCELERATOR_NOTE = (
    "Accelerators: " + ", ".join(f"`{s}`" for s in _LISTED) + " (those with a list price; others once "
    "`FWBOT_PRICES` prices them), or the API name such as `NVIDIA_H100_80GB` (any case)."
)


def _subcommand_help(sub: Subcommand) -> str:
    lines = [f"*/fw {sub.name}* — {sub.summary}", f"`{sub.usage}`"]
    if sub.aliases:
        lines.append("Also: " + ", ".join(f"`/fw {a}`" for a in sub.aliases))
    if sub.details:
        lines.append(sub.details)
    if sub.positionals:
        lines.append("*Arguments*")
        for p in sub.positionals:
            default = f" Default: {p.default}." if p.default else ""
            lines.append(f"• `{p.metavar}` — {p.help}{default}")
    if sub.flags:
        lines.append("*Flags*")
        for f in sub.flags:
            extra = " Required." if f.required else (f" Default: {f.default}." if f.default else "")
            lines.append(f"• `{f.synopsis}` — {f.help}{extra}")
    examples = [e for e in (sub.example, *sub.examples_more) if e]
    lines.append("*Examples*" if len(examples) > 1 else "*Example*")
    lines += [f"`{e}`" for e in examples]
    notes = _notes(sub)
    if notes:
        lines.append("*Good to know*")
        lines += [f"• {n}" for n in notes]
    return "\n".join(lines)


def _overview(extra_sections: Sequence[str]) -> str:
    lines = ["*`/fw` — Fireworks on-demand deployments from Slack*", "`/fw help <subcommand>` explains one in detail."]
    for group in GROUPS:
        lines.append(f"\n*{group}*")
        for sub in _TABLE:
            if sub.group == group:
                alias = f" (also `{'`, `'.join(sub.aliases)}`)" if sub.aliases else ""
                lines.append(f"• `{sub.short_usage}` — {sub.summary}{alias}")
    lines.append("\n*Good to know*")
    lines += [
        "• Commands that change something take `--dry-run`: see the result and the worst-case cost first.",
        f"• {_DURATION_NOTE}",
        f"• {_AUTO_DELETE_NOTE}",
        f"• {_MODEL_NOTE}",
        f"• {_ACCELERATOR_NOTE}",
        "• Flags are firectl's: `--flag value` or `--flag=value`; quote text with spaces.",
        "• When Slack turns `--` into `—` (macOS does), or `-` into `–`, fwbot still reads `—flag` as `--flag`; "
        "quote a value that starts with a dash.",
    ]
    text = "\n".join(lines)
    for section in extra_sections:
        text += "\n\n" + section
    return text


def help_text(topic: str | None = None, extra_sections: Sequence[str] = ()) -> str:
    """Slack mrkdwn help: the overview (plus ``extra_sections``), or one subcommand's details.

    Raises :class:`UsageError` for a topic that is not a subcommand.
    """
    if topic is None or not topic.strip():
        return _overview(extra_sections)
    name = _canonical(topic.strip())
    if name is None:
        raise UsageError(f"there is no subcommand `{topic}`.{_subcommand_hint(topic)}", "help")
    return _subcommand_help(_BY_NAME[name])
