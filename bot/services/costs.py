"""Stored history in, cost results out: the one place that feeds :mod:`bot.core.costs` the history.

The reconcile loop stores replica change points and the metrics scraper serving/idle change
points; this module decides which points matter for a window (plus the one before it, which
sets the state the window opens with) and which whole days come from the rollup cache, has
:mod:`storage.costs` read them, and integrates them with the deployments' ownership. It also
fetches Fireworks' own ``billingUsage`` for the same whole days, so a reply can show how far
our figure is from the invoice.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from bot.core.clock import iso
from bot.core.costs import (
    DeploymentCost,
    Pricer,
    Reconciliation,
    SplitDay,
    Tally,
    deployment_cost,
    epoch_us,
    local_midnight,
    month_bounds,
    month_projection,
    reconcile_billing,
    results_for,
    tally_days,
    window_days,
)
from bot.core.pricing import SINGLE_REGION_MULTIPLIER, price_per_gpu_hour
from bot.services.container import Services
from storage.costs import rollup_rows
from storage.store import Store

# billingUsage refuses spans longer than 31 days; ask in chunks of whole local days.
BILLING_CHUNK_DAYS = 28


def deployment_meta(store: Store) -> dict[str, dict[str, Any]]:
    """Owner, channel, model and name of every deployment the bot has known (gone ones too)."""
    return {
        r.id: {
            "owner": r.owner,
            "channel": r.channel,
            "base_model": r.base_model,
            "display_name": r.display_name,
            "single_region": r.single_region,
            "live": not r.gone and r.state not in ("DELETED", "DELETING"),
            "min_replicas": r.min_replicas,
        }
        for r in store.deployments(include_gone=True)
    }


def _tally(split: SplitDay) -> Tally:
    acc_type, single, serving_us, idle_us = split
    tally: Tally = {}
    if serving_us:
        tally[(acc_type, single, True)] = serving_us
    if idle_us:
        tally[(acc_type, single, False)] = idle_us
    return tally


def _sum(a: Tally, b: Tally) -> Tally:
    total = dict(a)
    for key, gpu_us in b.items():
        total[key] = total.get(key, 0) + gpu_us
    return total


def _less(whole: Tally, part: Tally) -> Tally:
    """What is left of a day's tally without a part of it (both exact, so nothing goes negative)."""
    return {key: rest for key, gpu_us in whole.items() if (rest := gpu_us - part.get(key, 0))}


def _after_read(services: Services) -> None:
    """Seam between the read of the history and the write of its rollups (tests race here)."""


def costs_between(services: Services, start: datetime, end: datetime) -> dict[str, DeploymentCost]:
    """GPU-seconds, dollars and serving/idle split per deployment over ``[start, end)`` (up to now).

    The same figures as :func:`bot.core.costs.integrate` over ``store.replica_history(since=start)``
    and ``store.traffic_points(since=start)``. Whole local days that have ended are taken from
    ``cost_rollups`` (per deployment and day, serving and idle GPU time per accelerator type and
    placement) where there is one, and the rest is integrated from the change points; the whole
    days integrated here are then cached, unless the history changed meanwhile. Triggers on the
    history tables drop the rollups a change point affects, so every writer of history keeps
    the cache right; dollars are priced afresh on every call.
    """
    tz, tz_name = services.settings.tz, services.settings.timezone
    start_utc = start.astimezone(UTC)
    end_utc = max(start_utc, min(end, services.clock.now()).astimezone(UTC))
    s_us, e_us = epoch_us(start_utc), epoch_us(end_utc)
    days = window_days(start_utc, end_utc, tz)
    n = len(days)
    bounds = [local_midnight(d, tz) for d in (*days, days[-1] + timedelta(days=1))]
    starts = [epoch_us(b) for b in bounds]  # starts[i + 1] is where day i ends
    since = [iso(b) for b in bounds]
    start_iso, end_iso = iso(start_utc), iso(end_utc)
    # Days i0 .. i1 - 1 are whole and over (the window starts at or before them and now is past
    # their end). i0 is 1 when the window starts mid-day: that day (``lead``) is over too, and
    # it is cached whole; the window's part of it is then the cached day less the part before
    # the window, when that part is the shorter one to read.
    closed = [i for i in range(n) if starts[i] >= s_us and starts[i + 1] <= e_us]
    i0, i1 = (closed[0], closed[-1] + 1) if closed else (0, 0)
    lead = i0 == 1
    cached = range(0 if lead else i0, i1)

    store = services.store
    with store.cost_snapshot() as history:  # one snapshot for the generation, the rollups and the points
        gen = history.generation()
        first = history.first_points()
        # Per deployment, one entry per day of the window: its rollup, or None.
        rolled: dict[str, list[Tally | SplitDay | None]] = {}
        if cached:
            day_index = {days[i].isoformat(): i for i in cached}
            for dep_id, day, acc_type, single, serving_us, idle_us in history.rollups(
                tz_name, days[cached[0]].isoformat(), days[i1 - 1].isoformat()
            ):
                per = rolled.get(dep_id)
                if per is None:
                    per = rolled[dep_id] = [None] * n
                i = day_index[day]
                split = (acc_type, single, serving_us, idle_us)
                had = per[i]
                if had is None:
                    per[i] = split
                else:  # more than one accelerator type or placement that day
                    tally = had if had.__class__ is dict else _tally(had)  # type: ignore[arg-type]
                    tally.update(_tally(split))  # type: ignore[union-attr]
                    per[i] = tally
        # Per deployment, the first day integrated from points (f): the first whole day it
        # needs (it had a replica point before the day ended) and has no rollup of, else the
        # first day after the whole ones. A span that would start on the first whole day starts
        # at the window's start instead (at the start of its day, when that day is ``lead``).
        fresh_from: dict[str, int] = {}
        trailing: dict[str, str] = {}
        lead_to_end: dict[str, str] = {}  # [start of day 0 or of the window, end of day 0)
        lead_before: dict[str, str] = {}  # [start of day 0, start of the window)
        prefix_shorter = lead and s_us - starts[0] < starts[1] - s_us
        none: list = [None] * n
        for dep_id, first_us in first.items():
            if first_us >= e_us:
                continue  # nothing ran in the window: no day to read or cache
            per = rolled.get(dep_id, none)
            k = i0
            while k < i1 and (first_us >= starts[k + 1] or per[k] is not None):
                k += 1
            f = 0 if k == i0 else k
            fresh_from[dep_id] = f
            if f < n:
                trailing[dep_id] = since[f] if f or lead else start_iso
            if f and lead and first_us < starts[1]:
                if per[0] is None:
                    lead_to_end[dep_id] = since[0]  # the whole day, to cache it
                elif prefix_shorter:
                    lead_before[dep_id] = since[0]
                else:
                    lead_to_end[dep_id] = start_iso
        replicas = history.replica_points(trailing, end_iso)
        serving = history.serving_points(trailing, end_iso)
        lead_replicas = history.replica_points(lead_to_end, since[1])
        lead_serving = history.serving_points(lead_to_end, since[1])
        before_replicas = history.replica_points(lead_before, start_iso)
        before_serving = history.serving_points(lead_before, start_iso)

    pricer = Pricer(services.prices)
    results: dict[str, DeploymentCost] = {}
    cache: list[tuple] = []
    nothing: tuple = ()
    for dep_id, first_us in first.items():
        f = fresh_from.get(dep_id)
        if f is None:  # first point at or after the window's end
            results[dep_id] = deployment_cost(dep_id, days, [None] * n, pricer)
            continue
        # Days before f: their rollups (None where the deployment had not started yet).
        per_day = rolled.get(dep_id) or [None] * n
        day0 = None
        if lead:
            day0, per_day[0] = per_day[0], None  # the whole of day 0; the window has part of it
        if f < n:
            rps, sps = replicas.get(dep_id, nothing), serving.get(dep_id, nothing)
            if f == 0 and lead:  # from the start of day 0, cut at the window's start
                segments = tally_days(rps, sps, starts[0], e_us, [s_us, *starts[1:n]])
                before, per_day[:] = segments[0], segments[1:]
                if first_us < starts[1]:
                    cache += rollup_rows(tz_name, dep_id, days[0].isoformat(), since[1],
                                         _sum(before, per_day[0]))  # type: ignore[arg-type]
            else:
                per_day[f:] = tally_days(rps, sps, starts[f] if f else s_us, e_us, starts[f + 1:n])
            for i in range(max(f, i0), i1):
                if first_us >= starts[i + 1]:
                    continue  # no replica point before the day ended: no rollup needed
                cache += rollup_rows(tz_name, dep_id, days[i].isoformat(), since[i + 1], per_day[i])  # type: ignore[arg-type]
        if dep_id in lead_before:
            before = tally_days(before_replicas.get(dep_id, nothing), before_serving.get(dep_id, nothing),
                                starts[0], s_us, ())[0]
            per_day[0] = _less(day0 if day0.__class__ is dict else _tally(day0), before)  # type: ignore[arg-type]
        elif dep_id in lead_to_end:
            rps, sps = lead_replicas.get(dep_id, nothing), lead_serving.get(dep_id, nothing)
            if day0 is None:
                before, per_day[0] = tally_days(rps, sps, starts[0], starts[1], [s_us])
                cache += rollup_rows(tz_name, dep_id, days[0].isoformat(), since[1], _sum(before, per_day[0]))
            else:
                per_day[0] = tally_days(rps, sps, s_us, starts[1], ())[0]
        results[dep_id] = deployment_cost(dep_id, days, per_day, pricer)

    _after_read(services)
    if cache:
        store.cache_rollups(gen, cache)  # unless the history changed since the read
    return results


class BillingCheck(NamedTuple):
    """Our GPU-seconds against Fireworks' ``billingUsage`` over the same whole local days."""

    rows: list[Reconciliation]  # per deployment, biggest disagreement first
    ours_s: float
    theirs_s: float
    billed_usd: float | None  # billed seconds at list price; None when a type has no price

    @property
    def diff_pct(self) -> float | None:
        if self.theirs_s:
            return (self.ours_s - self.theirs_s) / self.theirs_s * 100
        return 0.0 if not self.ours_s else None


def billing_rows(services: Services, start: datetime, end: datetime) -> list[dict]:
    """``dedicatedCosts`` rows for the local days ``[start, end)`` touches, chunked to the API's limit."""
    tz = services.settings.tz
    first = start.astimezone(tz).date()
    last = (min(end, services.clock.now()) - timedelta(microseconds=1)).astimezone(tz).date()
    rows: list[dict] = []
    day = first
    while day <= last:
        upto = min(last, day + timedelta(days=BILLING_CHUNK_DAYS - 1))
        # Whole days: the API only looks at the date part, and today's bucket runs up to now.
        rows += services.gateway.billing_usage(
            local_midnight(day, tz), local_midnight(upto + timedelta(days=1), tz), timezone=services.settings.timezone
        )
        day = upto + timedelta(days=1)
    return rows


def billing_check(
    services: Services, start: datetime, end: datetime, meta: Mapping[str, Mapping[str, Any]] | None = None
) -> BillingCheck:
    """Compare with ``billingUsage`` (authoritative) over the whole local days of ``[start, end)``.

    Raises :class:`bot.adapters.fireworks.FireworksError` when Fireworks cannot answer.
    """
    tz = services.settings.tz
    day_start = local_midnight(start.astimezone(tz).date(), tz)
    last = (min(end, services.clock.now()) - timedelta(microseconds=1)).astimezone(tz).date()
    day_end = local_midnight(last + timedelta(days=1), tz)
    ours = {d: r.gpu_seconds for d, r in costs_between(services, day_start, day_end).items() if r.gpu_seconds}
    rows = billing_rows(services, day_start, day_end)
    meta = meta if meta is not None else deployment_meta(services.store)
    billed_usd: float | None = 0.0
    for row in rows:
        price = price_per_gpu_hour(row.get("acceleratorType") or None, services.prices)
        if price is None or billed_usd is None:
            billed_usd = None
            continue
        dep = str(row.get("deploymentId") or "").rsplit("/", 1)[-1]
        single = bool((meta.get(dep) or {}).get("single_region"))
        billed_usd += (
            float(row.get("acceleratorSeconds") or 0) / 3600 * price * (SINGLE_REGION_MULTIPLIER if single else 1.0)
        )
    recs = reconcile_billing(ours, rows)
    return BillingCheck(recs, sum(r.ours_s for r in recs), sum(r.theirs_s for r in recs), billed_usd)


# Before a day of the month has passed, one hour's burn times 720 is noise, not a forecast: the
# projection is then the spend so far.
PROJECT_AFTER = timedelta(days=1)


class MonthSpend(NamedTuple):
    """One channel's spend this local calendar month and where it is heading."""

    month_start: datetime
    month_end: datetime
    spent: float  # priced part
    projected: float
    price_known: bool
    results: dict[str, DeploymentCost]  # the channel's deployments only

    @property
    def label(self) -> str:
        return f"{self.month_start:%B %Y}"


def channel_month(
    services: Services, channel: str, month_results: Mapping[str, DeploymentCost] | None = None,
    meta: Mapping[str, Mapping[str, Any]] | None = None,
) -> MonthSpend:
    """Spend so far this month of the deployments tracked in ``channel``, and its projection.

    ``month_results``: the month's results of every deployment, when the caller has them already.
    """
    now = services.clock.now()
    tz = services.settings.tz
    start, end = month_bounds(now, tz)
    # The label should read in the team's timezone, not UTC.
    start_local, end_local = start.astimezone(tz), end.astimezone(tz)
    if month_results is None:
        month_results = costs_between(services, start, end)
    meta = meta if meta is not None else deployment_meta(services.store)
    mine = results_for(month_results, meta, channel=channel)
    spent = sum(r.known_usd for r in mine.values())
    projected = spent if now - start < PROJECT_AFTER else month_projection(spent, start, now, end)
    return MonthSpend(start_local, end_local, spent, projected, all(r.price_known for r in mine.values()), mine)
