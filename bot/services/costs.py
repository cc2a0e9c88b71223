"""Stored history in, cost results out: the one place that feeds :mod:`bot.core.costs` from SQLite.

The reconcile loop stores replica change points and the metrics scraper serving/idle change
points; this module loads the points that matter for a window (plus the one before it, which
sets the state the window opens with) and the deployments' ownership, and integrates them. It
also fetches Fireworks' own ``billingUsage`` for the same whole days, so a reply can show how far
our figure is from the invoice.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import operator
import sqlite3
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from itertools import groupby
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
    point_time,
    reconcile_billing,
    results_for,
    tally_days,
    window_days,
)
from bot.core.pricing import SINGLE_REGION_MULTIPLIER, price_per_gpu_hour
from bot.services.container import Services
from storage.store import Store

log = logging.getLogger("fwbot.costs")

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


# A stored time as integer microseconds since the epoch, computed by SQLite for the one format
# fwbot writes (``iso``: ``YYYY-MM-DDTHH:MM:SS.ffffffZ``); any other text comes back as is and
# is parsed in Python. A month of history is hundreds of thousands of points: parsing each into
# a datetime was most of a cost summary.
def _at_us(col: str) -> str:
    # The whole seconds from the text without its fraction: SQLite keeps times in milliseconds
    # and rounds, so ``…:53.999950Z`` would come back as 54 s. unixepoch() (SQLite 3.38) is the
    # cheaper of the two.
    whole = f"substr({col}, 1, 19)"
    seconds = f"unixepoch({whole})" if sqlite3.sqlite_version_info >= (3, 38) else f"CAST(strftime('%s', {whole}) AS INTEGER)"
    return f"""CASE WHEN length({col}) = 27 AND substr({col}, 20, 1) = '.' AND substr({col}, 27) = 'Z'
                 THEN {seconds} * 1000000 + CAST(substr({col}, 21, 6) AS INTEGER)
                 ELSE {col} END"""


def _span_sql(table: str, columns: str) -> str:
    """Per deployment in ``:want`` (a JSON object ``{deployment_id: since}``): its rows in
    ``[since, :until)`` and the last one before ``since`` (it sets the state the span opens
    with), as tuples normalised the way ``ReplicaPoint`` and ``ServingPoint`` read a row. One
    range of the primary key (deployment_id, at) each, so a span of one day reads one day."""
    return f"""
    SELECT r.deployment_id, {_at_us("r.at")}, {columns} FROM json_each(:want) w JOIN {table} r
        ON r.deployment_id = w.key
       AND r.at >= COALESCE((SELECT MAX(h.at) FROM {table} h WHERE h.deployment_id = w.key AND h.at < w.value),
                            w.value)
       AND r.at < :until"""


_REPLICA_SPAN = _span_sql("replica_history", """MAX(0, COALESCE(r.replicas, 0)), NULLIF(r.accelerator_type, ''),
    CASE WHEN r.accelerator_count THEN MAX(1, r.accelerator_count) ELSE 1 END, r.single_region != 0""")
# The serving/idle split, and the bound it honours. The metrics endpoint gives a request *rate
# over the minute before each scrape*, not when requests came, so the scraper records a serving
# stretch (storage.history.HistoryRepo.record_traffic_many with the rate window) from the earliest its first
# request can have come — the later of the previous scrape that saw none and the first scrape that
# saw one less the window — to the latest its last one can have come — the earlier of the last
# scrape that saw one and the first that saw none less the window. That is the shortest span the
# scrapes guarantee holds every request of the stretch; replica time in it counts as serving, the
# rest as idle. So idle is never claimed while a request may have been served, and serving is
# never placed after the requests. One 24 ms request counts as at most one scrape interval of
# serving when the minute is a whole number of intervals (10 s at 6 scrapes a minute, 60 s at the
# default one), under two otherwise; before, it counted at least the whole minute the rate window
# kept it visible, placed after the request. Finer than that the metrics cannot say.
_SERVING_SPAN = _span_sql("traffic_history", "COALESCE(r.serving, 0) != 0")

# Every deployment with a replica point, and the time of its first: one index seek each (a skip
# scan over the primary key) instead of a scan of the whole history.
_FIRST_POINTS = f"""
    WITH RECURSIVE ids(id) AS (
        SELECT MIN(deployment_id) FROM replica_history
        UNION ALL
        SELECT (SELECT MIN(deployment_id) FROM replica_history WHERE deployment_id > ids.id)
        FROM ids WHERE ids.id IS NOT NULL)
    SELECT id, (SELECT {_at_us("at")} FROM replica_history WHERE deployment_id = ids.id ORDER BY at LIMIT 1)
    FROM ids WHERE id IS NOT NULL"""

_ROLLUPS = """SELECT deployment_id, day, accelerator_type, single_region, serving_us, idle_us FROM cost_rollups
              WHERE tz = ? AND day >= ? AND day <= ?"""
_CACHE = """INSERT OR REPLACE INTO cost_rollups (tz, deployment_id, day, day_end, accelerator_type, single_region,
                                               serving_us, idle_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"""


def _points(cursor: sqlite3.Cursor, sql: str, want: Mapping[str, str], until: str) -> dict[str, list[tuple]]:
    by: dict[str, list[tuple]] = {}
    if not want:
        return by
    rows = cursor.execute(sql, {"want": json.dumps(want), "until": until}).fetchall()
    if any(row[1].__class__ is not int for row in rows):
        rows = [row if row[1].__class__ is int else (row[0], epoch_us(row[1]), *row[2:]) for row in rows]
    for dep_id, points in groupby(rows, _deployment):
        got = by.get(dep_id)
        if got is None:
            by[dep_id] = list(points)
        else:
            got.extend(points)
    for points in by.values():
        points.sort(key=point_time)
    return by


_deployment = operator.itemgetter(0)


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


def _rollup_rows(tz_name: str, dep_id: str, day: str, day_end: str, tally: Tally) -> list[tuple]:
    """``cost_rollups`` rows of one deployment's day: serving and idle GPU time per accelerator
    type and placement, or one marker row when nothing ran."""
    split: dict[tuple[str, int], list[int]] = {}
    for (acc_type, single, is_serving), gpu_us in tally.items():
        pair = split.setdefault((acc_type or "", int(single)), [0, 0])
        pair[0 if is_serving else 1] += gpu_us
    if not split:
        return [(tz_name, dep_id, day, day_end, "", 0, 0, 0)]
    return [(tz_name, dep_id, day, day_end, acc_type, single, s_us, i_us)
            for (acc_type, single), (s_us, i_us) in split.items()]


def _after_read(services: Services) -> None:
    """Seam between the read of the history and the write of its rollups (tests race here)."""


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """A month of a large fleet is a few hundred thousand small objects, none of them in a cycle;
    the cyclic collector would walk them again and again while they are built (a quarter of
    the time). Reference counting still frees everything as usual."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


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
    with _no_cyclic_gc():
        return _costs_between(services, start, end)


def _costs_between(services: Services, start: datetime, end: datetime) -> dict[str, DeploymentCost]:
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

    db = services.store.db
    conn = db.conn
    cursor = db.tuples()  # a Row per point would cost more than the point
    own_txn = not conn.in_transaction
    if own_txn:
        cursor.execute("BEGIN")  # one snapshot for the generation, the rollups and the points
    try:
        gen = cursor.execute("SELECT gen FROM cost_rollup_state WHERE id = 1").fetchone()[0]
        first = {dep_id: at if at.__class__ is int else epoch_us(at)
                 for dep_id, at in cursor.execute(_FIRST_POINTS)}
        # Per deployment, one entry per day of the window: its rollup, or None.
        rolled: dict[str, list[Tally | SplitDay | None]] = {}
        if cached:
            day_index = {days[i].isoformat(): i for i in cached}
            for dep_id, day, acc_type, single, serving_us, idle_us in cursor.execute(
                _ROLLUPS, (tz_name, days[cached[0]].isoformat(), days[i1 - 1].isoformat())
            ):
                per = rolled.get(dep_id)
                if per is None:
                    per = rolled[dep_id] = [None] * n
                i = day_index[day]
                split = (acc_type or None, single, serving_us, idle_us)
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
        replicas = _points(cursor, _REPLICA_SPAN, trailing, end_iso)
        serving = _points(cursor, _SERVING_SPAN, trailing, end_iso)
        lead_replicas = _points(cursor, _REPLICA_SPAN, lead_to_end, since[1])
        lead_serving = _points(cursor, _SERVING_SPAN, lead_to_end, since[1])
        before_replicas = _points(cursor, _REPLICA_SPAN, lead_before, start_iso)
        before_serving = _points(cursor, _SERVING_SPAN, lead_before, start_iso)
    finally:
        if own_txn:
            conn.commit()

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
                    cache += _rollup_rows(tz_name, dep_id, days[0].isoformat(), since[1],
                                          _sum(before, per_day[0]))  # type: ignore[arg-type]
            else:
                per_day[f:] = tally_days(rps, sps, starts[f] if f else s_us, e_us, starts[f + 1:n])
            for i in range(max(f, i0), i1):
                if first_us >= starts[i + 1]:
                    continue  # no replica point before the day ended: no rollup needed
                cache += _rollup_rows(tz_name, dep_id, days[i].isoformat(), since[i + 1], per_day[i])  # type: ignore[arg-type]
        if dep_id in lead_before:
            before = tally_days(before_replicas.get(dep_id, nothing), before_serving.get(dep_id, nothing),
                                starts[0], s_us, ())[0]
            per_day[0] = _less(day0 if day0.__class__ is dict else _tally(day0), before)  # type: ignore[arg-type]
        elif dep_id in lead_to_end:
            rps, sps = lead_replicas.get(dep_id, nothing), lead_serving.get(dep_id, nothing)
            if day0 is None:
                before, per_day[0] = tally_days(rps, sps, starts[0], starts[1], [s_us])
                cache += _rollup_rows(tz_name, dep_id, days[0].isoformat(), since[1], _sum(before, per_day[0]))
            else:
                per_day[0] = tally_days(rps, sps, s_us, starts[1], ())[0]
        results[dep_id] = deployment_cost(dep_id, days, per_day, pricer)

    _after_read(services)
    if cache:
        try:
            with db.write() as wconn:
                if wconn.execute("SELECT gen FROM cost_rollup_state WHERE id = 1").fetchone()[0] == gen:
                    wconn.executemany(_CACHE, cache)
        except sqlite3.Error as e:  # the figures stand; the next call computes them again
            log.warning("cost rollups not cached: %s", e)
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
