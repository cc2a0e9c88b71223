"""Worst-case money: what a deployment can cost per hour at most (SPEC §4, contract §4).

Cost = max replicas × accelerators per replica × price per GPU-hour, × 1.5 when the placement is
restricted to specific regions. Prices come from the caller (``Settings.price_table``), because
they change often; an accelerator without a price is *unknown*, never free.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.core.names import (
    ACCELERATOR_TYPES,
    AcceleratorNameError,
    accelerator_label,
    resolve_accelerator,
    short_accelerator,
)

SINGLE_REGION_MULTIPLIER = 1.5

UNKNOWN_PRICE_TEXT = "unknown price — set FWBOT_PRICES"


def price_per_gpu_hour(accelerator_type: str | None, prices: Mapping[str, float]) -> float | None:
    """USD per GPU-hour for an accelerator (API enum or short name); ``None`` when not priced."""
    if not accelerator_type:
        return None
    if accelerator_type in prices:
        return float(prices[accelerator_type])
    try:
        enum = resolve_accelerator(accelerator_type)
    except AcceleratorNameError:
        return None
    price = prices.get(enum)
    return None if price is None else float(price)


def not_offered(accelerator_type: str, prices: Mapping[str, float]) -> str | None:
    """The one rule for what fwbot offers: an accelerator it has a price for, from the list prices
    or the operator's ``FWBOT_PRICES``; ``None`` when offered, else the sentence saying why not and
    how to offer it. A worst case fwbot cannot state is a deployment it does not make.

    Fireworks' list (contract §4) prices H100, H200, B200 and B300 (and a GB300, for which the API
    names no accelerator type). The older third-party
    figures for the A100 80GB (2025) and the MI300X (mid-2025) predate price rises of a third to a
    double on every listed GPU, so they are not used: an estimate that low would let a deploy
    slip under the approval threshold.
    """
    if price_per_gpu_hour(accelerator_type, prices) is not None:
        return None
    try:
        enum = resolve_accelerator(accelerator_type)
    except AcceleratorNameError:
        enum = accelerator_type
    offered = ", ".join(f"`{short_accelerator(a)}`" for a in offered_accelerators(prices))
    return (f"fwbot has no price for {accelerator_label(enum)} (`{enum}`), so it does not offer it; whoever runs "
            f"fwbot can set one in `FWBOT_PRICES` (`FWBOT_PRICES={enum}=<USD per GPU-hour>`). "
            f"It offers {offered or 'none'}.")


def offered_accelerators(prices: Mapping[str, float]) -> tuple[str, ...]:
    """Every accelerator fwbot offers (:func:`not_offered`), in ``ACCELERATOR_TYPES`` order."""
    return tuple(acc for acc in ACCELERATOR_TYPES if price_per_gpu_hour(acc, prices) is not None)


def worst_case_usd_per_hour(
    max_replicas: int,
    accelerator_count: int | None,
    accelerator_type: str | None,
    prices: Mapping[str, float],
    single_region: bool = False,
) -> float | None:
    """The most a deployment can cost per hour; ``None`` when the accelerator has no price.

    ``accelerator_count`` ``None`` counts as 1 (the smallest a replica can be). A deployment that
    cannot run any replica (max 0) costs nothing whatever the price.
    """
    if max_replicas <= 0:
        return 0.0
    price = price_per_gpu_hour(accelerator_type, prices)
    if price is None:
        return None
    gpus = max_replicas * (accelerator_count if accelerator_count is not None else 1)
    total = gpus * price
    return total * SINGLE_REGION_MULTIPLIER if single_region else total


def usd_per_day(usd_per_hour: float | None) -> float | None:
    """An hourly amount over 24 hours; ``None`` stays unknown."""
    return None if usd_per_hour is None else usd_per_hour * 24


def format_usd(amount: float | None, unit: str = "/h") -> str:
    """``$16.00/h``, ``$1,234.50/day`` (with ``unit="/day"``); an unknown amount says how to fix it."""
    if amount is None:
        return UNKNOWN_PRICE_TEXT
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount):,.2f}{unit}"


def format_gpu_time(seconds: float, hour_unit: str = "GPU-h") -> str:
    """GPU time with the precision its size needs, so a small amount never reads as zero next to
    the dollars it cost: ``40 GPU-s``, ``2.9 GPU-min``, ``25 GPU-min``, ``1.3 GPU-h``,
    ``1,412.0 GPU-h``; ``no GPU time`` for none. ``hour_unit`` names hours (``GPU-hours``)."""
    if seconds <= 0:
        return "no GPU time"
    if seconds < 59.5:
        return f"{max(1, round(seconds))} GPU-s"
    minutes = seconds / 60
    if minutes < 9.95:
        return f"{minutes:.1f} GPU-min"
    if minutes < 59.5:
        return f"{minutes:.0f} GPU-min"
    return f"{seconds / 3600:,.1f} {hour_unit}"


def is_single_region(placement: Mapping[str, Any] | None) -> bool:
    """Whether a wire ``placement`` pins the deployment to specific regions (billed 1.5×).

    ``region`` or ``regions`` restrict it; ``multiRegion`` (or no placement) does not.
    """
    if not placement:
        return False
    return bool(placement.get("region") or placement.get("regions"))


def deployment_worst_case(wire: Mapping[str, Any], prices: Mapping[str, float]) -> float | None:
    """Worst-case USD per hour of a camelCase wire Deployment dict.

    Missing ``maxReplicaCount`` follows the API default max(min, 1); missing ``acceleratorCount``
    counts as 1.
    """
    min_replicas = int(wire.get("minReplicaCount") or 0)
    raw_max = wire.get("maxReplicaCount")
    max_replicas = int(raw_max) if raw_max is not None else max(min_replicas, 1)
    raw_count = wire.get("acceleratorCount")
    count = int(raw_count) if raw_count else 1
    return worst_case_usd_per_hour(
        max_replicas,
        count,
        wire.get("acceleratorType"),
        prices,
        single_region=is_single_region(wire.get("placement")),
    )
