"""Stored history in, cost results out: the one place that feeds :mod:`bot.costs` from SQLite.

The reconcile loop stores replica change points and the metrics scraper serving/idle change
points; this module loads the points that matter for a window (plus the one before it, which
sets the state the window opens with) and the deployments' ownership, and integrates them. It
also fetches Fireworks' own ``billingUsage`` for the same whole days, so a reply can show how far
our figure is from the invoice.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from bot.costs import (
    DeploymentCost,
    Reconciliation,
    epoch_us,
    integrate_us,
    local_midnight,
    month_bounds,
    month_projection,
    reconcile_billing,
    results_for,
)
from bot.pricing import SINGLE_REGION_MULTIPLIER, price_per_gpu_hour
from bot.services import Services
from storage.db import iso
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


# A stored time as integer microseconds since the epoch, computed by SQLite for the one format
# fwbot writes (``iso``: ``YYYY-MM-DDTHH:MM:SS.ffffffZ``); any other text comes back as is and
# is parsed in Python. A month of history is hundreds of thousands of points: parsing each into
# a datetime was most of a cost summary.
_AT_US = """CASE WHEN length(at) = 27 AND substr(at, 20, 1) = '.' AND substr(at, 27) = 'Z'
                 THEN CAST(strftime('%s', at) AS INTEGER) * 1000000 + CAST(substr(at, 21, 6) AS INTEGER)
                 ELSE at END"""

# The rows of a table from ``since`` on, plus each deployment's last row before ``since`` (it
# sets the state the window opens with), as tuples normalised the way ``ReplicaPoint`` and
# ``ServingPoint`` read a row.
_REPLICA_POINTS = f"""
    SELECT deployment_id, {_AT_US}, MAX(0, COALESCE(replicas, 0)), NULLIF(accelerator_type, ''),
           CASE WHEN accelerator_count THEN MAX(1, accelerator_count) ELSE 1 END, single_region != 0
    FROM replica_history WHERE at >= :since OR (deployment_id, at) IN (
        SELECT deployment_id, MAX(at) FROM replica_history WHERE at < :since GROUP BY deployment_id)
    ORDER BY deployment_id, at"""
_SERVING_POINTS = f"""
    SELECT deployment_id, {_AT_US}, COALESCE(serving, 0) != 0
    FROM traffic_history WHERE at >= :since OR (deployment_id, at) IN (
        SELECT deployment_id, MAX(at) FROM traffic_history WHERE at < :since GROUP BY deployment_id)
    ORDER BY deployment_id, at"""


def _points(store: Store, sql: str, since: datetime) -> dict[str, list[tuple]]:
    by: dict[str, list[tuple]] = {}
    cursor = store.db.conn.cursor()
    cursor.row_factory = None  # plain tuples: a Row per point costs more than the point
    for row in cursor.execute(sql, {"since": iso(since)}):
        if row[1].__class__ is not int:
            row = (row[0], epoch_us(row[1]), *row[2:])
        points = by.get(row[0])
        if points is None:
            by[row[0]] = [row]
        else:
            points.append(row)
    return by


def costs_between(services: Services, start: datetime, end: datetime) -> dict[str, DeploymentCost]:
    """GPU-seconds, dollars and serving/idle split per deployment over ``[start, end)`` (up to now).

    The same figures as :func:`bot.costs.integrate` over ``store.replica_history(since=start)``
    and ``store.traffic_points(since=start)``, read as plain tuples with integer times.
    """
    store = services.store
    start_utc, end_utc = start.astimezone(UTC), min(end, services.clock.now()).astimezone(UTC)
    end_utc = max(start_utc, end_utc)
    return integrate_us(
        _points(store, _REPLICA_POINTS, start),
        _points(store, _SERVING_POINTS, start),
        start_utc,
        end_utc,
        prices=services.prices,
        tz=services.settings.tz,
    )


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

    Raises :class:`bot.fireworks.FireworksError` when Fireworks cannot answer.
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
