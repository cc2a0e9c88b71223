"""Worst-case money (bot/core/pricing.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.pricing import (
    UNKNOWN_PRICE_TEXT,
    deployment_worst_case,
    format_usd,
    is_single_region,
    price_per_gpu_hour,
    usd_per_day,
    worst_case_usd_per_hour,
)
from bot.core.settings import LIST_PRICES_USD_PER_GPU_HOUR

PRICES = dict(LIST_PRICES_USD_PER_GPU_HOUR)


@pytest.mark.parametrize(
    ("accelerator", "price"),
    [
        ("NVIDIA_H100_80GB", 8.0),
        ("h100", 8.0),
        ("H200", 8.0),
        ("NVIDIA_B200_180GB", 13.0),
        ("b300", 15.0),
        ("NVIDIA_GB300_288GB", None),  # listed, but the API has no accelerator type for it
        # No published price: unknown, never free.
        ("NVIDIA_A100_80GB", None),
        ("mi300x", None),
        ("ACCELERATOR_TYPE_UNSPECIFIED", None),
        ("NVIDIA_FUTURE_GPU", None),
        ("", None),
        (None, None),
    ],
)
def test_price_per_gpu_hour(accelerator: str | None, price: float | None) -> None:
    assert price_per_gpu_hour(accelerator, PRICES) == price


def test_price_overrides_and_unknown_enum_in_table() -> None:
    prices = {**PRICES, "NVIDIA_A100_80GB": 2.9, "NVIDIA_FUTURE_GPU": 30}
    assert price_per_gpu_hour("a100", prices) == 2.9
    assert price_per_gpu_hour("NVIDIA_FUTURE_GPU", prices) == 30.0


def test_worst_case() -> None:
    assert worst_case_usd_per_hour(2, 1, "NVIDIA_H100_80GB", PRICES) == 16.0
    assert worst_case_usd_per_hour(3, 8, "NVIDIA_B200_180GB", PRICES) == 3 * 8 * 13.0
    assert worst_case_usd_per_hour(2, 1, "NVIDIA_H100_80GB", PRICES, single_region=True) == 24.0
    assert worst_case_usd_per_hour(2, None, "h100", PRICES) == 16.0  # count unknown → 1 per replica
    assert worst_case_usd_per_hour(2, 1, "NVIDIA_A100_80GB", PRICES) is None
    assert worst_case_usd_per_hour(1, 1, None, PRICES) is None


def test_no_replicas_costs_nothing_even_without_a_price() -> None:
    assert worst_case_usd_per_hour(0, 4, "NVIDIA_H100_80GB", PRICES) == 0.0
    assert worst_case_usd_per_hour(0, 4, "NVIDIA_A100_80GB", PRICES) == 0.0


@given(st.integers(0, 100), st.integers(0, 100), st.integers(1, 8), st.booleans())
def test_worst_case_grows_with_replicas(a: int, b: int, count: int, single: bool) -> None:
    lo, hi = sorted((a, b))
    low = worst_case_usd_per_hour(lo, count, "h100", PRICES, single)
    high = worst_case_usd_per_hour(hi, count, "h100", PRICES, single)
    assert low is not None and high is not None
    assert 0 <= low <= high
    assert high == pytest.approx(hi * count * 8.0 * (1.5 if single else 1.0))


def test_usd_per_day() -> None:
    assert usd_per_day(16.0) == 384.0
    assert usd_per_day(None) is None


@pytest.mark.parametrize(
    ("amount", "unit", "text"),
    [
        (16.0, "/h", "$16.00/h"),
        (0.0, "/h", "$0.00/h"),
        (1234.5, "/day", "$1,234.50/day"),
        (1_000_000, "", "$1,000,000.00"),
        (0.005, "/h", "$0.01/h"),
        (-12.5, "", "-$12.50"),
        (None, "/h", UNKNOWN_PRICE_TEXT),
    ],
)
def test_format_usd(amount: float | None, unit: str, text: str) -> None:
    assert format_usd(amount, unit) == text


def test_format_usd_default_unit_and_unknown_text() -> None:
    assert format_usd(16) == "$16.00/h"
    assert "FWBOT_PRICES" in format_usd(None)


@pytest.mark.parametrize(
    ("placement", "single"),
    [
        (None, False),
        ({}, False),
        ({"multiRegion": "GLOBAL"}, False),
        ({"multiRegion": "US"}, False),
        ({"region": "US_IOWA_1"}, True),
        ({"regions": ["US_IOWA_1", "US_VIRGINIA_1"]}, True),
    ],
)
def test_is_single_region(placement: dict | None, single: bool) -> None:
    assert is_single_region(placement) is single


def test_deployment_worst_case_from_wire() -> None:
    wire = {"maxReplicaCount": 2, "acceleratorCount": 4, "acceleratorType": "NVIDIA_H100_80GB"}
    assert deployment_worst_case(wire, PRICES) == 64.0
    assert deployment_worst_case({**wire, "placement": {"region": "EU_FRANKFURT_1"}}, PRICES) == 96.0
    assert deployment_worst_case({**wire, "placement": {"multiRegion": "EUROPE"}}, PRICES) == 64.0
    # acceleratorCount missing (or 0 as grpc-gateway may emit) → 1
    assert deployment_worst_case({"maxReplicaCount": 3, "acceleratorType": "NVIDIA_H200_141GB"}, PRICES) == 24.0
    assert deployment_worst_case({"maxReplicaCount": 3, "acceleratorCount": 0, "acceleratorType": "h200"}, PRICES) == 24.0
    # maxReplicaCount missing → API default max(min, 1)
    assert deployment_worst_case({"minReplicaCount": 3, "acceleratorType": "h100"}, PRICES) == 24.0
    assert deployment_worst_case({"acceleratorType": "h100"}, PRICES) == 8.0
    assert deployment_worst_case({"maxReplicaCount": 0, "acceleratorType": "h100"}, PRICES) == 0.0
    assert deployment_worst_case({"maxReplicaCount": 1, "acceleratorType": "NVIDIA_A100_80GB"}, PRICES) is None
    assert deployment_worst_case({"maxReplicaCount": 1}, PRICES) is None
