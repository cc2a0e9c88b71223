"""What GPU time cost: the accounting core.

Everything here is a pure function of data and a clock. The inputs are the change points the
bot records (``replica_history`` and ``traffic_history``): each point holds until the next one,
so integrating them is exact — no sampling. Time is summed in whole microseconds (``timedelta``
is exact there), dollars are derived from GPU-seconds only at the end, per price key.

A price that is unknown stays unknown: the dollars are ``None`` and the GPU-seconds are kept and
flagged, so nobody reads an unpriced A100 as free.
"""

from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, Literal, NamedTuple

from bot.core.clock import parse_iso
from bot.core.errors import UserFacingError
from bot.core.names import short_model
from bot.core.pricing import SINGLE_REGION_MULTIPLIER, format_gpu_time, price_per_gpu_hour

BUDGET_THRESHOLDS: tuple[int, ...] = (80, 100)
# "Mostly idle": more than this share of the replica time saw no requests.
MOSTLY_IDLE_FRACTION = 0.5
TOP_GROUPS = 5
UNKNOWN_ACCELERATOR = "unknown accelerator"

_MICROS = 1_000_000
_US = timedelta(microseconds=1)

GroupBy = Literal["owner", "channel", "deployment", "model"]
PeriodName = Literal["today", "week", "month"]


# -- inputs ----------------------------------------------------------------------------------
def _as_utc(value: str | datetime) -> datetime:
    when = parse_iso(value) if isinstance(value, str) else value
    if when is None:
        raise ValueError("change point without a time")
    # Stored times are UTC; a naive value can only mean UTC here.
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class ReplicaPoint:
    """From ``at`` on (until the next point), ``replicas`` replicas of this shape were running."""

    deployment_id: str
    at: datetime
    replicas: int
    accelerator_type: str | None
    accelerator_count: int
    single_region: bool

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ReplicaPoint:
        """A ``replica_history`` row (``at`` as RFC3339 text or datetime)."""
        count = row.get("accelerator_count")
        return cls(
            deployment_id=str(row["deployment_id"]),
            at=_as_utc(row["at"]),
            replicas=max(0, int(row.get("replicas") or 0)),
            accelerator_type=row.get("accelerator_type") or None,
            # The API always reports a count for a running deployment; 1 is the floor, so a
            # missing value undercounts rather than invents spend.
            accelerator_count=max(1, int(count)) if count else 1,
            single_region=bool(row.get("single_region")),
        )


@dataclass(frozen=True, slots=True)
class ServingPoint:
    """From ``at`` on, the metrics did (``serving``) or did not show requests."""

    deployment_id: str
    at: datetime
    serving: bool

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ServingPoint:
        """A ``traffic_history`` row."""
        return cls(
            deployment_id=str(row["deployment_id"]),
            at=_as_utc(row["at"]),
            serving=bool(int(row.get("serving") or 0)),
        )


# -- results ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class CostFigures:
    """GPU time and its price over some span.

    ``usd``/``idle_usd`` are ``None`` when any of the GPU time has no known price;
    ``known_usd``/``known_idle_usd`` are then the priced part only (a lower bound).
    """

    gpu_seconds: float = 0.0
    serving_gpu_seconds: float = 0.0
    idle_gpu_seconds: float = 0.0
    usd: float | None = 0.0
    idle_usd: float | None = 0.0
    known_usd: float = 0.0
    known_idle_usd: float = 0.0
    unpriced_gpu_seconds: float = 0.0
    unknown_price_types: tuple[str, ...] = ()

    @property
    def gpu_hours(self) -> float:
        return self.gpu_seconds / 3600

    @property
    def serving_usd(self) -> float | None:
        return None if self.usd is None or self.idle_usd is None else self.usd - self.idle_usd

    @property
    def idle_fraction(self) -> float:
        """Share of the replica time that saw no requests (0 when nothing ran)."""
        return self.idle_gpu_seconds / self.gpu_seconds if self.gpu_seconds else 0.0

    @property
    def price_known(self) -> bool:
        return not self.unknown_price_types


@dataclass(frozen=True, slots=True, kw_only=True)
class DayCost(CostFigures):
    """One local calendar day (in the team timezone) of one deployment."""

    day: date


@dataclass(frozen=True, slots=True, kw_only=True)
class DeploymentCost(CostFigures):
    """One deployment over a window, with its per-day buckets (every local day of the window)."""

    deployment_id: str
    days: tuple[DayCost, ...] = ()


# A tally is GPU-microseconds per price key: (accelerator type, single region, serving).
_Key = tuple[str | None, bool, bool]
Tally = dict[_Key, int]


class Pricer:
    """Price lookups per accelerator type, done once per type rather than once per tally; and
    the empty :class:`DayCost` of each date, shared (it is immutable)."""

    __slots__ = ("cache", "nothing", "prices")

    def __init__(self, prices: Mapping[str, float]) -> None:
        self.prices = prices
        self.cache: dict[str | None, float | None] = {}
        self.nothing: dict[date, DayCost] = {}

    def price(self, accelerator_type: str | None) -> float | None:
        try:
            return self.cache[accelerator_type]
        except KeyError:
            price = self.cache[accelerator_type] = price_per_gpu_hour(accelerator_type, self.prices)
            return price


def _key_order(item: tuple[_Key, int]) -> tuple[str, bool, bool]:
    acc_type, single_region, is_serving = item[0]
    return acc_type or "", bool(single_region), bool(is_serving)


def _sums(tally: Mapping[_Key, int], pricer: Pricer) -> tuple[int, int, int, float, float, set[str] | None]:
    """GPU-µs in all, serving and unpriced; known and known idle dollars; the unpriced types."""
    cache = pricer.cache
    total = serving = unpriced = 0
    known_usd = known_idle_usd = 0.0
    unknown: set[str] | None = None
    # Dollars are float sums: with three keys or more, add them in one fixed order of the keys,
    # so a tally merged from cached days gives exactly the figures of one integrated in one pass
    # (with two, 0.0 + a + b is b + a exactly).
    items = sorted(tally.items(), key=_key_order) if len(tally) > 2 else tally.items()
    for (acc_type, single_region, is_serving), gpu_us in items:
        if not gpu_us:
            continue
        total += gpu_us
        if is_serving:
            serving += gpu_us
        price = cache[acc_type] if acc_type in cache else pricer.price(acc_type)
        if price is None:
            unpriced += gpu_us
            if unknown is None:
                unknown = set()
            unknown.add(acc_type or UNKNOWN_ACCELERATOR)
            continue
        usd = gpu_us / _MICROS / 3600 * price * (SINGLE_REGION_MULTIPLIER if single_region else 1.0)
        known_usd += usd
        if not is_serving:
            known_idle_usd += usd
    return total, serving, unpriced, known_usd, known_idle_usd, unknown


def _figures(tally: Mapping[_Key, int], prices: Mapping[str, float] | Pricer) -> dict[str, Any]:
    total, serving, unpriced, known_usd, known_idle_usd, unknown = _sums(
        tally, prices if isinstance(prices, Pricer) else Pricer(prices))
    return {
        "gpu_seconds": total / _MICROS,
        "serving_gpu_seconds": serving / _MICROS,
        "idle_gpu_seconds": (total - serving) / _MICROS,
        "usd": None if unknown else known_usd,
        "idle_usd": None if unknown else known_idle_usd,
        "known_usd": known_usd,
        "known_idle_usd": known_idle_usd,
        "unpriced_gpu_seconds": unpriced / _MICROS,
        "unknown_price_types": tuple(sorted(unknown)) if unknown else (),
    }


_new = object.__new__
_set = object.__setattr__  # what a frozen dataclass's own __init__ uses


def _day_cost(day: date, tally: Mapping[_Key, int], pricer: Pricer) -> DayCost:
    """``DayCost(day=day, **_figures(tally, pricer))``, built the way the frozen dataclass's
    ``__init__`` builds it but without its keyword handling: a month of a large fleet is tens of
    thousands of days, and that ``__init__`` was a third of building them."""
    total, serving, unpriced, known_usd, known_idle_usd, unknown = _sums(tally, pricer)
    cost = _new(DayCost)
    _set(cost, "day", day)
    _set(cost, "gpu_seconds", total / _MICROS)
    _set(cost, "serving_gpu_seconds", serving / _MICROS)
    _set(cost, "idle_gpu_seconds", (total - serving) / _MICROS)
    _set(cost, "usd", None if unknown else known_usd)
    _set(cost, "idle_usd", None if unknown else known_idle_usd)
    _set(cost, "known_usd", known_usd)
    _set(cost, "known_idle_usd", known_idle_usd)
    _set(cost, "unpriced_gpu_seconds", unpriced / _MICROS)
    _set(cost, "unknown_price_types", tuple(sorted(unknown)) if unknown else ())
    return cost


# _day_cost and _split_day_cost set every field; a field added to DayCost must be added there.
if [f.name for f in fields(DayCost)] != [
    "gpu_seconds", "serving_gpu_seconds", "idle_gpu_seconds", "usd", "idle_usd", "known_usd", "known_idle_usd",
    "unpriced_gpu_seconds", "unknown_price_types", "day",
]:
    raise TypeError("DayCost changed: update _day_cost and _split_day_cost")


def local_midnight(day: date, tz: tzinfo) -> datetime:
    """The instant (UTC) a local calendar day begins; correct across DST changes."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def window_days(start: datetime, end: datetime, tz: tzinfo) -> list[date]:
    """The local days (in ``tz``) that ``[start, end)`` touches; one when it is empty."""
    first = start.astimezone(tz).date()
    last = (end - _US).astimezone(tz).date() if end > start else first
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def integrate(
    replica_points: Iterable[ReplicaPoint | Mapping[str, Any]],
    serving_points: Iterable[ServingPoint | Mapping[str, Any]],
    start: datetime,
    end: datetime,
    *,
    prices: Mapping[str, float],
    tz: tzinfo = UTC,
    now: datetime | None = None,
) -> dict[str, DeploymentCost]:
    """GPU-seconds and dollars per deployment over ``[start, end)``.

    Each change point holds until the next; the last holds until ``end`` (or ``now`` when that is
    earlier). The point at or before ``start`` sets the state the window opens with; before a
    deployment's first replica point it had no replicas, and before its first serving point it is
    taken as idle. Every deployment with a replica point appears in the result, with one
    :class:`DayCost` for each local day (in ``tz``) of the window.
    """
    start, end = _as_utc(start), _as_utc(end)
    if now is not None:
        end = min(end, _as_utc(now))
    end = max(start, end)

    replicas_by: dict[str, list[tuple]] = defaultdict(list)
    for p in replica_points:
        rp = p if isinstance(p, ReplicaPoint) else ReplicaPoint.from_row(p)
        replicas_by[rp.deployment_id].append((rp.deployment_id, epoch_us(rp.at), rp.replicas, rp.accelerator_type,
                                              rp.accelerator_count, rp.single_region))
    serving_by: dict[str, list[tuple]] = defaultdict(list)
    for p in serving_points:
        sp = p if isinstance(p, ServingPoint) else ServingPoint.from_row(p)
        serving_by[sp.deployment_id].append((sp.deployment_id, epoch_us(sp.at), sp.serving))
    return integrate_us(replicas_by, serving_by, start, end, prices=prices, tz=tz)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_us(value: str | datetime) -> int:
    """Microseconds since the epoch of a stored time (RFC3339 text or datetime); exact."""
    return (_as_utc(value) - _EPOCH) // _US


# The time (integer microseconds) of a normalised change point.
point_time = operator.itemgetter(1)


def integrate_us(
    replicas_by: Mapping[str, list[tuple]],
    serving_by: Mapping[str, list[tuple]],
    start: datetime,
    end: datetime,
    *,
    prices: Mapping[str, float],
    tz: tzinfo = UTC,
) -> dict[str, DeploymentCost]:
    """The core of :func:`integrate`, over change points already normalised, times in integer
    microseconds since the epoch (so no datetime is built per point):
    ``(deployment_id, at_us, replicas, accelerator_type, accelerator_count, single_region)`` and
    ``(deployment_id, at_us, serving)``, grouped by deployment. ``[start, end)`` is the window
    already cut at ``now``. The lists are sorted here (stably: of two points at one instant the
    later one wins).
    """
    days = window_days(start, end, tz)
    s_us, e_us = epoch_us(start), epoch_us(end)
    midnights = day_starts_us(days, tz)[1:]
    pricer = Pricer(prices)
    results: dict[str, DeploymentCost] = {}
    for dep_id, rps in replicas_by.items():
        rps.sort(key=point_time)
        sps = sorted(serving_by.get(dep_id, ()), key=point_time)
        results[dep_id] = deployment_cost(dep_id, days, tally_days(rps, sps, s_us, e_us, midnights), pricer)
    return results


def day_starts_us(days: Sequence[date], tz: tzinfo) -> list[int]:
    """The instant each local day begins, in microseconds since the epoch."""
    return [epoch_us(local_midnight(d, tz)) for d in days]


def tally_days(rps: Sequence[tuple], sps: Sequence[tuple], s_us: int, e_us: int,
               midnights: Sequence[int]) -> list[Tally]:
    """GPU-microseconds per price key of one deployment over ``[s_us, e_us)``, one tally per
    local day: ``midnights`` are the local midnights strictly inside the span, so there are
    ``len(midnights) + 1`` days.

    ``rps``/``sps`` are that deployment's points as for :func:`integrate_us`, sorted by time:
    those inside the span and the last one at or before ``s_us``. A day's tally depends only on
    the points up to its end, so the tallies of adjacent spans can be put side by side.
    """
    per_day: list[Tally] = [{} for _ in range(len(midnights) + 1)]
    n_r, n_s = len(rps), len(sps)
    if not n_r or rps[0][1] >= e_us:
        return per_day  # no replicas before the span ends: nothing ran
    cuts = sorted(
        {s_us, e_us, *midnights}
        | {p[1] for p in rps if s_us < p[1] < e_us}
        | {p[1] for p in sps if s_us < p[1] < e_us}
    )
    n_mid = len(midnights)
    # One pass over the cuts, each pointer moving to the last point at or before the cut.
    ri = si = -1
    di = 0
    for k in range(len(cuts) - 1):
        a = cuts[k]
        while ri + 1 < n_r and rps[ri + 1][1] <= a:
            ri += 1
        if ri < 0:
            continue
        rp = rps[ri]
        if rp[2] == 0:
            continue
        while si + 1 < n_s and sps[si + 1][1] <= a:
            si += 1
        while di < n_mid and midnights[di] <= a:
            di += 1
        key: _Key = (rp[3], rp[5], sps[si][2] if si >= 0 else False)
        day = per_day[di]
        day[key] = day.get(key, 0) + rp[2] * rp[4] * (cuts[k + 1] - a)
    return per_day


# A day of one accelerator type and placement, as :mod:`bot.services.costs` caches it:
# ``(accelerator_type, single_region, serving_us, idle_us)``; the tally
# ``{(type, single, True): serving_us, (type, single, False): idle_us}`` without its dict.
SplitDay = tuple[str | None, bool, int, int]


def _split_day_cost(day: date, split: SplitDay, pricer: Pricer, whole: dict[_Key, int]) -> DayCost:
    """:func:`_day_cost` of a :data:`SplitDay`, exactly (two keys add up in either order), with
    its GPU time added to ``whole``."""
    acc_type, single_region, serving, idle = split
    total = serving + idle
    if not total:
        return _nothing(day, pricer)
    if serving:
        key = (acc_type, single_region, True)
        whole[key] = whole.get(key, 0) + serving
    if idle:
        key = (acc_type, single_region, False)
        whole[key] = whole.get(key, 0) + idle
    cache = pricer.cache
    price = cache[acc_type] if acc_type in cache else pricer.price(acc_type)
    cost = _new(DayCost)
    _set(cost, "day", day)
    _set(cost, "gpu_seconds", total / _MICROS)
    _set(cost, "serving_gpu_seconds", serving / _MICROS)
    _set(cost, "idle_gpu_seconds", idle / _MICROS)
    if price is None:
        _set(cost, "usd", None)
        _set(cost, "idle_usd", None)
        _set(cost, "known_usd", 0.0)
        _set(cost, "known_idle_usd", 0.0)
        _set(cost, "unpriced_gpu_seconds", total / _MICROS)
        _set(cost, "unknown_price_types", (acc_type or UNKNOWN_ACCELERATOR,))
        return cost
    multiplier = SINGLE_REGION_MULTIPLIER if single_region else 1.0
    idle_usd = idle / _MICROS / 3600 * price * multiplier
    usd = serving / _MICROS / 3600 * price * multiplier + idle_usd
    _set(cost, "usd", usd)
    _set(cost, "idle_usd", idle_usd)
    _set(cost, "known_usd", usd)
    _set(cost, "known_idle_usd", idle_usd)
    _set(cost, "unpriced_gpu_seconds", 0.0)
    _set(cost, "unknown_price_types", ())
    return cost


def _nothing(day: date, pricer: Pricer) -> DayCost:
    cost = pricer.nothing.get(day)
    if cost is None:
        cost = pricer.nothing[day] = DayCost(day=day)  # the defaults: nothing ran
    return cost


def deployment_cost(dep_id: str, days: Sequence[date], per_day: Sequence[Mapping[_Key, int] | SplitDay | None],
                    prices: Mapping[str, float] | Pricer) -> DeploymentCost:
    """One deployment's figures from its per-day tallies (one per local day of the window; a
    :data:`SplitDay` or ``None`` for nothing will do too)."""
    pricer = prices if isinstance(prices, Pricer) else Pricer(prices)
    whole: dict[_Key, int] = {}
    day_costs = []
    for d, tally in zip(days, per_day, strict=True):
        if not tally:
            day_costs.append(_nothing(d, pricer))
        elif tally.__class__ is tuple:
            day_costs.append(_split_day_cost(d, tally, pricer, whole))  # type: ignore[arg-type]
        else:
            for key, gpu_us in tally.items():  # type: ignore[union-attr]
                whole[key] = whole.get(key, 0) + gpu_us
            day_costs.append(_day_cost(d, tally, pricer))  # type: ignore[arg-type]
    return DeploymentCost(deployment_id=dep_id, days=tuple(day_costs), **_figures(whole, pricer))


# -- periods ---------------------------------------------------------------------------------
class PeriodError(UserFacingError, ValueError):
    """A period a user asked for that makes no sense; the message is written for them."""


class Window(NamedTuple):
    """A half-open span ``[start, end)`` in UTC and how to call it."""

    start: datetime
    end: datetime
    label: str


def _short(d: date) -> str:
    return f"{d:%a} {d.day} {d:%b}"


def period_window(
    name: PeriodName | tuple[date, date], now: datetime, tz: tzinfo
) -> Window:
    """The window a ``/fw cost`` period means, in the team timezone.

    ``today``, ``week`` (from Monday) and ``month`` (calendar month) run up to ``now``; an explicit
    ``(date_from, date_to)`` covers both dates whole.
    """
    now = _as_utc(now)
    today = now.astimezone(tz).date()
    if isinstance(name, tuple):
        date_from, date_to = name
        if date_to < date_from:
            raise PeriodError(f"the range ends ({date_to}) before it starts ({date_from})")
        label = _short(date_from) if date_from == date_to else f"{_short(date_from)} – {_short(date_to)}"
        if date_from.year != today.year or date_to.year != today.year:
            label += f" {date_to.year}"
        return Window(local_midnight(date_from, tz), local_midnight(date_to + timedelta(days=1), tz), label)
    if name == "today":
        return Window(local_midnight(today, tz), now, f"today ({_short(today)})")
    if name == "week":
        monday = today - timedelta(days=today.weekday())
        return Window(local_midnight(monday, tz), now, f"this week (since {_short(monday)})")
    if name == "month":
        first = today.replace(day=1)
        return Window(local_midnight(first, tz), now, f"{first:%B %Y} so far")
    raise PeriodError(f"unknown period {name!r}: use today, week or month")


def previous_window(start: datetime, end: datetime, tz: tzinfo = UTC) -> Window:
    """The window of the same length immediately before ``[start, end)``.

    Length is measured on the wall clock of ``tz`` so whole local days map to whole local days
    across a DST change (a 23- or 25-hour day is still "one day").
    """
    local_start = start.astimezone(tz).replace(tzinfo=None)
    local_end = end.astimezone(tz).replace(tzinfo=None)
    prev_local = local_start - (local_end - local_start)
    prev_start = prev_local.replace(tzinfo=tz).astimezone(UTC)
    return Window(prev_start, _as_utc(start), "previous period")


def month_bounds(now: datetime, tz: tzinfo) -> tuple[datetime, datetime]:
    """The local calendar month containing ``now``: ``(first instant, first instant of next)``."""
    first = now.astimezone(tz).date().replace(day=1)
    nxt = (first + timedelta(days=32)).replace(day=1)
    return local_midnight(first, tz), local_midnight(nxt, tz)


# -- grouping and reports --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Change:
    """Spend now against the previous period."""

    previous_usd: float
    delta_usd: float
    pct: float | None  # None when the previous period had no spend
    is_new: bool  # spend now, none before


def change_between(current: float, previous: float) -> Change:
    """Absolute and relative change; "new" when there was nothing before."""
    delta = current - previous
    if previous == 0:
        return Change(previous, delta, None if current else 0.0, current > 0)
    return Change(previous, delta, delta / previous * 100, False)


@dataclass(frozen=True, slots=True)
class GroupCost:
    """Spend of one owner, channel, deployment or model."""

    key: str | None  # None: no owner / no channel / no model known
    name: str  # display name for deployments and models, else the key
    usd: float  # priced part; see ``price_known``
    idle_usd: float
    gpu_hours: float
    deployments: tuple[str, ...]
    price_known: bool
    change: Change | None = None


@dataclass(frozen=True, slots=True)
class DailySpend:
    day: date
    usd: float
    idle_usd: float

    @property
    def serving_usd(self) -> float:
        return self.usd - self.idle_usd


@dataclass(frozen=True, slots=True)
class CostReport:
    """Totals, the biggest groups, the change vs the previous period and what has no price."""

    by: GroupBy
    label: str
    usd: float  # priced part only when ``price_known`` is False
    idle_usd: float
    gpu_hours: float
    price_known: bool
    groups: tuple[GroupCost, ...]  # all, biggest first
    daily: tuple[DailySpend, ...]
    change: Change | None
    unknown_price_notes: tuple[str, ...] = ()
    top_n: int = TOP_GROUPS

    @property
    def top(self) -> tuple[GroupCost, ...]:
        return self.groups[: self.top_n]

    @property
    def rest(self) -> tuple[GroupCost, ...]:
        return self.groups[self.top_n :]

    @property
    def idle_share(self) -> float:
        return self.idle_usd / self.usd if self.usd else 0.0


def group_key(deployment_id: str, meta: Mapping[str, Mapping[str, Any]], by: GroupBy) -> tuple[str | None, str]:
    """The group a deployment falls in, and the group's display name."""
    m = meta.get(deployment_id) or {}
    if by == "owner":
        return m.get("owner") or None, m.get("owner") or "unowned"
    if by == "channel":
        return m.get("channel") or None, m.get("channel") or "no channel"
    if by == "model":
        model = short_model(m["base_model"]) if m.get("base_model") else None
        return model, model or "unknown model"
    if by == "deployment":
        return deployment_id, m.get("display_name") or deployment_id
    raise ValueError(f"cannot group by {by!r}: use owner, channel, deployment or model")


def unknown_price_notes(results: Mapping[str, DeploymentCost]) -> tuple[str, ...]:
    """One line per deployment whose GPU time has no price, for the bottom of a report."""
    return tuple(
        f"`{dep}`: {format_gpu_time(r.unpriced_gpu_seconds, 'GPU-hours')} on {', '.join(r.unknown_price_types)} "
        "at unknown price (set FWBOT_PRICES); not in the totals"
        for dep, r in sorted(results.items())
        if r.unknown_price_types and r.unpriced_gpu_seconds > 0
    )


def _group(
    results: Mapping[str, DeploymentCost], meta: Mapping[str, Mapping[str, Any]], by: GroupBy
) -> dict[str | None, tuple[str, list[DeploymentCost]]]:
    groups: dict[str | None, tuple[str, list[DeploymentCost]]] = {}
    for dep, r in sorted(results.items()):
        key, name = group_key(dep, meta, by)
        groups.setdefault(key, (name, []))[1].append(r)
    return groups


def cost_report(
    results: Mapping[str, DeploymentCost],
    meta: Mapping[str, Mapping[str, Any]],
    by: GroupBy = "owner",
    previous: Mapping[str, DeploymentCost] | None = None,
    *,
    label: str = "",
    top_n: int = TOP_GROUPS,
) -> CostReport:
    """Group per-deployment results by owner, channel, deployment or model.

    Dollar figures are the priced part; GPU time at an unknown price is listed in
    ``unknown_price_notes`` and makes ``price_known`` False instead of counting as $0.
    Deployments that ran no GPU time are left out.
    """
    ran = {d: r for d, r in results.items() if r.gpu_seconds > 0}
    prev_groups = _group(previous, meta, by) if previous is not None else {}

    groups = []
    for key, (name, members) in _group(ran, meta, by).items():
        usd = sum(r.known_usd for r in members)
        change = None
        if previous is not None:
            prev_members = prev_groups.get(key, ("", []))[1]
            change = change_between(usd, sum(r.known_usd for r in prev_members))
        groups.append(
            GroupCost(
                key=key,
                name=name,
                usd=usd,
                idle_usd=sum(r.known_idle_usd for r in members),
                gpu_hours=sum(r.gpu_seconds for r in members) / 3600,
                deployments=tuple(r.deployment_id for r in members),
                price_known=all(r.price_known for r in members),
                change=change,
            )
        )
    # Biggest spend first; GPU time breaks ties so unpriced groups still rank sensibly.
    groups.sort(key=lambda g: (-g.usd, -g.gpu_hours, g.name))

    daily: dict[date, list[float]] = {}
    for r in results.values():
        for d in r.days:
            acc = daily.setdefault(d.day, [0.0, 0.0])
            acc[0] += d.known_usd
            acc[1] += d.known_idle_usd

    usd = sum(r.known_usd for r in ran.values())
    return CostReport(
        by=by,
        label=label,
        usd=usd,
        idle_usd=sum(r.known_idle_usd for r in ran.values()),
        gpu_hours=sum(r.gpu_seconds for r in ran.values()) / 3600,
        price_known=all(r.price_known for r in ran.values()),
        groups=tuple(groups),
        daily=tuple(DailySpend(d, u, i) for d, (u, i) in sorted(daily.items())),
        change=None if previous is None else change_between(usd, sum(r.known_usd for r in previous.values())),
        unknown_price_notes=unknown_price_notes(ran),
        top_n=top_n,
    )


def results_for(
    results: Mapping[str, DeploymentCost],
    meta: Mapping[str, Mapping[str, Any]],
    *,
    owner: str | None = None,
    channel: str | None = None,
) -> dict[str, DeploymentCost]:
    """The results of one owner's and/or one channel's deployments."""
    out = {}
    for dep, r in results.items():
        m = meta.get(dep) or {}
        if owner is not None and m.get("owner") != owner:
            continue
        if channel is not None and m.get("channel") != channel:
            continue
        out[dep] = r
    return out


# -- billing reconciliation ------------------------------------------------------------------
class Reconciliation(NamedTuple):
    """Our GPU-seconds against Fireworks' billed accelerator-seconds for one deployment."""

    deployment_id: str
    ours_s: float
    theirs_s: float
    diff_pct: float | None  # (ours - theirs) / theirs; None when they billed nothing but we counted


def _billing_deployment_id(row: Mapping[str, Any]) -> str | None:
    name = row.get("deploymentId") or (row.get("group") or {}).get("deployment_name")
    # deploymentId is the bare id, group.deployment_name the full resource name; accept either.
    return str(name).rstrip("/").rsplit("/", 1)[-1] if name else None


def reconcile_billing(
    ours: Mapping[str, float], billing_rows: Iterable[Mapping[str, Any]]
) -> list[Reconciliation]:
    """Compare our GPU-seconds with ``billingUsage`` ``dedicatedCosts`` rows.

    Billing buckets are whole days, so ``ours`` must be integrated over the same whole days.
    ``acceleratorSeconds`` is an int64 sent as a string; rows for one deployment (several days
    or accelerator types) are summed. Biggest disagreement (in seconds) first.
    """
    theirs: dict[str, float] = defaultdict(float)
    for row in billing_rows:
        dep = _billing_deployment_id(row)
        if dep is None:
            continue
        theirs[dep] += float(row.get("acceleratorSeconds") or 0)
    out = []
    for dep in set(ours) | set(theirs):
        o, t = float(ours.get(dep, 0.0)), theirs.get(dep, 0.0)
        pct = (o - t) / t * 100 if t else (0.0 if o == 0 else None)
        out.append(Reconciliation(dep, o, t, pct))
    out.sort(key=lambda r: (-abs(r.ours_s - r.theirs_s), r.deployment_id))
    return out


# -- budgets ---------------------------------------------------------------------------------
def month_projection(spent_so_far: float, month_start: datetime, now: datetime, month_end: datetime) -> float:
    """Linear projection of this month's spend to ``month_end``."""
    elapsed = (now - month_start).total_seconds()
    if elapsed <= 0 or now >= month_end:
        return spent_so_far
    return spent_so_far * (month_end - month_start).total_seconds() / elapsed


def budget_alerts_due(projected: float, budget: float, already_sent: set[int] | frozenset[int]) -> list[int]:
    """Thresholds (percent of budget) the projection has reached and nobody was told about yet.

    The caller records each sent one under :func:`budget_alert_key` so it goes out once a month.
    """
    if budget <= 0:
        return []
    return [t for t in BUDGET_THRESHOLDS if projected >= budget * t / 100 and t not in already_sent]


def budget_alert_key(channel: str, month: date, threshold: int) -> str:
    """Idempotency key of one budget alert, e.g. ``budget:C123:2026-11:80``."""
    return f"budget:{channel}:{month:%Y-%m}:{threshold}"


def sent_thresholds(keys: Iterable[str], channel: str, month: date) -> set[int]:
    """The thresholds already alerted for ``channel`` this month, from stored keys."""
    prefix = f"budget:{channel}:{month:%Y-%m}:"
    return {int(k[len(prefix) :]) for k in keys if k.startswith(prefix) and k[len(prefix) :].isdigit()}


# -- owner digest ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DeploymentLine:
    """One deployment in a digest."""

    deployment_id: str
    name: str
    base_model: str | None
    channel: str | None
    cost: DeploymentCost

@dataclass(frozen=True, slots=True)
class OwnerDigest:
    """What one person's deployments cost over a week, and which are burning money idle."""

    owner: str
    label: str
    deployment_count: int  # every deployment the note is about: live ones and deleted ones that ran
    usd: float  # priced part
    idle_usd: float
    price_known: bool
    lines: tuple[DeploymentLine, ...]  # every owned deployment that ran, biggest first
    idle: tuple[DeploymentLine, ...]  # candidates for scale-to-zero / delete buttons
    unknown_price_notes: tuple[str, ...] = field(default=())
    live_count: int | None = None  # owned and not deleted; None: all of deployment_count
    deleted_ran: int = 0  # lines of deployments deleted since

    @property
    def biggest(self) -> DeploymentLine | None:
        return self.lines[0] if self.lines else None

    @property
    def owned_now(self) -> int:
        """How many deployments the owner has now (deleted ones that ran are not among them)."""
        return self.deployment_count if self.live_count is None else self.live_count


def _is_idle_candidate(r: DeploymentCost) -> bool:
    # Unpriced idle time is still money burnt, just of unknown amount.
    paying_idle = r.known_idle_usd > 0 or (not r.price_known and r.idle_gpu_seconds > 0)
    return paying_idle and r.idle_fraction > MOSTLY_IDLE_FRACTION


def owner_digest(
    owner: str,
    results: Mapping[str, DeploymentCost],
    meta: Mapping[str, Mapping[str, Any]],
    *,
    label: str = "this week",
) -> OwnerDigest:
    """The weekly note to one owner: how many deployments, what they cost, which sit idle."""
    owned = sorted(d for d, m in meta.items() if (m or {}).get("owner") == owner)
    owned_set = set(owned)
    mine = {d: r for d, r in results.items() if d in owned_set and r.gpu_seconds > 0}

    def line(dep: str) -> DeploymentLine:
        m = meta.get(dep) or {}
        return DeploymentLine(dep, m.get("display_name") or dep, m.get("base_model"), m.get("channel"), mine[dep])

    lines = sorted((line(d) for d in mine), key=lambda x: (-x.cost.known_usd, -x.cost.gpu_seconds, x.deployment_id))
    deleted = {d for d in owned if not (meta.get(d) or {}).get("live", True)}
    idle = sorted(  # a deployment deleted since gets no buttons to scale or delete it
        (x for x in lines if _is_idle_candidate(x.cost) and x.deployment_id not in deleted),
        key=lambda x: (-x.cost.known_idle_usd, -x.cost.idle_gpu_seconds, x.deployment_id),
    )
    return OwnerDigest(
        owner=owner,
        label=label,
        deployment_count=len(owned),
        live_count=len(owned) - len(deleted),
        deleted_ran=sum(1 for d in mine if d in deleted),
        usd=sum(r.known_usd for r in mine.values()),
        idle_usd=sum(r.known_idle_usd for r in mine.values()),
        price_known=all(r.price_known for r in mine.values()),
        lines=tuple(lines),
        idle=tuple(idle),
        unknown_price_notes=unknown_price_notes(mine),
    )
