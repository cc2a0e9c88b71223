"""From the SQLite file to figures: stored change points, integrated over windows, hand-computed.

A real SQLite file through the real Store; the gateway is a recording fake (billingUsage only).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.core.clock import FakeClock
from bot.core.settings import Settings
from bot.services import costs as cost_data
from bot.services.container import Services
from storage.db import Database
from storage.store import Store

NY = ZoneInfo("America/New_York")


class BillingGateway:
    """billingUsage answers from a fixed table of (deployment, day, seconds); records the calls."""

    def __init__(self, rows=()):
        self.rows = list(rows)
        self.calls: list[tuple[datetime, datetime, str]] = []

    def billing_usage(self, start, end, *, group_by=("deployment_name", "accelerator_type"), timezone="UTC"):
        assert end - start <= timedelta(days=31), "billingUsage refuses more than 31 days"
        self.calls.append((start, end, timezone))
        return [r for r in self.rows if start <= r["_day"] < end]


def services(tmp_path, now: datetime, *, tz="UTC", prices="", gateway=None) -> Services:
    db = Database(tmp_path / "fwbot.db")
    db.migrate()
    env = {"FWBOT_TIMEZONE": tz, "FWBOT_DB": str(tmp_path / "fwbot.db")}
    if prices:
        env["FWBOT_PRICES"] = prices
    return Services(settings=Settings(_env_file=None, **env), store=Store(db), gateway=gateway or BillingGateway(),
                    clock=FakeClock(now), poster=None, simulated=False)  # type: ignore[arg-type]


def h(day: int, hour: float = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, tzinfo=UTC) + timedelta(hours=hour)


def own(s: Services, dep: str, owner: str = "U1", channel: str = "C1") -> None:
    s.store.claim_deployment(dep, f"accounts/demo/deployments/{dep}", owner=owner, channel=channel,
                             now=h(1), created_by_bot=True)


def test_replica_change_mid_interval_scale_to_zero_gap_and_idle_split(tmp_path):
    s = services(tmp_path, now=h(3))
    own(s, "d")
    st = s.store
    st.record_replicas("d", h(1, 10), 1, "NVIDIA_H100_80GB", 2)  # 2 GPUs per replica
    st.record_replicas("d", h(1, 12), 3, "NVIDIA_H100_80GB", 2)  # mid-interval change
    st.record_replicas("d", h(1, 13), 0, "NVIDIA_H100_80GB", 2)  # scale to zero …
    st.record_replicas("d", h(1, 16), 1, "NVIDIA_H100_80GB", 2)  # … gap of 3 h, then a cold start
    st.record_replicas("d", h(1, 18), 0, "NVIDIA_H100_80GB", 2)
    st.record_traffic("d", h(1, 10), 0.0)
    st.record_traffic("d", h(1, 11), 2.5)  # serving 11:00–12:30
    st.record_traffic("d", h(1, 11), 3.0)  # same state again: no new change point
    st.record_traffic("d", h(1, 12.5), 0.0)
    r = cost_data.costs_between(s, h(1), h(2))["d"]
    # GPU-hours: 10-12 1×2×2 = 4; 12-13 3×2×1 = 6; 13-16 none; 16-18 1×2×2 = 4 → 14.
    assert r.gpu_seconds == 14 * 3600
    # serving 11-12 (1 replica, 2 GPUs) = 2 GPU-h, 12-12:30 (3 replicas) = 3 GPU-h.
    assert r.serving_gpu_seconds == 5 * 3600 and r.idle_gpu_seconds == 9 * 3600
    assert r.usd == pytest.approx(14 * 8.0) and r.idle_usd == pytest.approx(9 * 8.0)


def test_the_state_before_the_window_carries_in_from_the_store(tmp_path):
    s = services(tmp_path, now=h(5))
    own(s, "d")
    s.store.record_replicas("d", h(1, 20), 2, "NVIDIA_H200_141GB", 1)
    s.store.record_traffic("d", h(1, 21), 1.0)  # serving since the day before
    s.store.record_replicas("d", h(3, 6), 0, "NVIDIA_H200_141GB", 1)
    r = cost_data.costs_between(s, h(3), h(4))["d"]
    assert r.gpu_seconds == 2 * 6 * 3600 and r.serving_gpu_seconds == r.gpu_seconds
    assert [d.day.day for d in r.days] == [3]


def test_unknown_price_is_reported_unknown_and_single_region_costs_more(tmp_path):
    s = services(tmp_path, now=h(2))
    own(s, "a100")
    own(s, "pinned")
    s.store.record_replicas("a100", h(1, 0), 1, "NVIDIA_A100_80GB", 1)
    s.store.record_replicas("pinned", h(1, 0), 1, "NVIDIA_B200_180GB", 1, single_region=True)
    out = cost_data.costs_between(s, h(1), h(1, 10))
    assert out["a100"].usd is None and out["a100"].unknown_price_types == ("NVIDIA_A100_80GB",)
    assert out["a100"].unpriced_gpu_seconds == 10 * 3600 and out["a100"].known_usd == 0
    assert out["pinned"].usd == pytest.approx(10 * 13.0 * 1.5)
    # A configured price makes it known.
    priced = services(tmp_path / "p", now=h(2), prices="NVIDIA_A100_80GB=2.5")
    own(priced, "a100")
    priced.store.record_replicas("a100", h(1, 0), 1, "NVIDIA_A100_80GB", 1)
    assert cost_data.costs_between(priced, h(1), h(1, 10))["a100"].usd == pytest.approx(25.0)


def test_month_and_timezone_boundaries(tmp_path):
    # New York: November starts at 04:00 UTC on 1 Nov (EDT), and DST ends that same day.
    s = services(tmp_path, now=h(2, 12), tz="America/New_York")
    own(s, "d")
    s.store.record_replicas("d", datetime(2026, 10, 31, 22, tzinfo=UTC), 1, "NVIDIA_H100_80GB", 1)
    month = cost_data.channel_month(s, "C1")
    assert month.month_start == datetime(2026, 11, 1, tzinfo=NY) and month.label == "November 2026"
    # From 1 Nov 04:00 UTC to now (2 Nov 12:00 UTC) = 32 h; October's 6 h are not this month's.
    assert month.spent == pytest.approx(32 * 8.0)
    # Linear projection over the 30-day month (720 h + 1 h of DST change = 721 h).
    assert month.projected == pytest.approx(32 * 8.0 * 721 / 32)
    by_day = cost_data.costs_between(s, datetime(2026, 10, 31, 4, tzinfo=UTC), h(2, 12))["d"].days
    # Local days: 31 Oct (from 18:00 EDT: 6 h), 1 Nov (25 h long, DST ends), 2 Nov to 07:00 EST (7 h).
    assert [(d.day.day, d.gpu_seconds / 3600) for d in by_day] == [(31, 6), (1, 25), (2, 7)]


def test_no_projection_in_the_first_day_of_the_month(tmp_path):
    s = services(tmp_path, now=h(1, 6))
    own(s, "d")
    s.store.record_replicas("d", h(1, 0), 1, "NVIDIA_H100_80GB", 1)
    month = cost_data.channel_month(s, "C1")
    assert month.spent == pytest.approx(48.0) and month.projected == month.spent
    assert cost_data.channel_month(s, "C-other").spent == 0


def test_billing_check_asks_whole_local_days_in_chunks_and_compares(tmp_path):
    berlin_day_starts = [datetime(2026, 10, 31, 23, tzinfo=UTC) + timedelta(days=i) for i in range(40)]
    rows = [{"_day": t, "deploymentId": "d", "acceleratorType": "NVIDIA_H100_80GB",
             "acceleratorSeconds": str(24 * 3600)} for t in berlin_day_starts]
    gw = BillingGateway(rows)
    s = services(tmp_path, now=datetime(2026, 12, 10, 23, 0, tzinfo=UTC), tz="Europe/Berlin", gateway=gw)
    own(s, "d")
    s.store.record_replicas("d", datetime(2026, 10, 31, 23, tzinfo=UTC), 1, "NVIDIA_H100_80GB", 1)
    # 1 Nov – 10 Dec Berlin days (40 days): at most 31 days per call, whole local days.
    check = cost_data.billing_check(s, datetime(2026, 10, 31, 23, tzinfo=UTC), s.clock.now())
    assert len(gw.calls) == 2 and all(tz == "Europe/Berlin" for *_, tz in gw.calls)
    assert gw.calls[0][0] == datetime(2026, 10, 31, 23, tzinfo=UTC)
    assert gw.calls[-1][1] == datetime(2026, 12, 10, 23, tzinfo=UTC)
    assert check.theirs_s == 40 * 24 * 3600 and check.ours_s == check.theirs_s
    assert check.diff_pct == 0 and check.billed_usd == pytest.approx(40 * 24 * 8.0)


def test_billing_check_shows_a_difference(tmp_path):
    gw = BillingGateway([{"_day": h(1), "deploymentId": "d", "acceleratorType": "NVIDIA_A100_80GB",
                          "acceleratorSeconds": "7000"}])
    s = services(tmp_path, now=h(1, 12), gateway=gw)
    own(s, "d")
    s.store.record_replicas("d", h(1, 0), 1, "NVIDIA_A100_80GB", 1)
    s.store.record_replicas("d", h(1, 2), 0, "NVIDIA_A100_80GB", 1)
    check = cost_data.billing_check(s, h(1), h(1, 12))
    assert (check.ours_s, check.theirs_s) == (7200, 7000)
    assert check.diff_pct == pytest.approx(200 / 7000 * 100)
    assert check.billed_usd is None  # an A100 has no list price: unknown, not $0
