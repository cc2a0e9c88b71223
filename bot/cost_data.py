"""Stored history in, cost results out: the one place that feeds :mod:`bot.costs` from SQLite.

The reconcile loop stores replica change points and the metrics scraper serving/idle change
points; this module loads the points that matter for a window (plus the one before it, which
sets the state the window opens with) and the deployments' ownership, and integrates them. It
also fetches Fireworks' own ``billingUsage`` for the same whole days, so a reply can show how far
our figure is from the invoice.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from bot.costs import (
    DeploymentCost,
    Reconciliation,
    integrate,
    local_midnight,
    month_bounds,
    month_projection,
    reconcile_billing,
    results_for,
)
from bot.pricing import SINGLE_REGION_MULTIPLIER, price_per_gpu_hour
from bot.services import Services
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


def costs_between(services: Services, start: datetime, end: datetime) -> dict[str, DeploymentCost]:
    """GPU-seconds, dollars and serving/idle split per deployment over ``[start, end)`` (up to now)."""
    store = services.store
    return integrate(
        store.replica_history(since=start),
        store.traffic_points(since=start),
        start,
        end,
        prices=services.prices,
        tz=services.settings.tz,
        now=services.clock.now(),
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
