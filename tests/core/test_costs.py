"""The cost accounting core, against hand-computed figures."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.costs import (
    DeploymentCost,
    PeriodError,
    ReplicaPoint,
    budget_alert_key,
    budget_alerts_due,
    change_between,
    cost_report,
    integrate,
    local_midnight,
    month_bounds,
    month_projection,
    owner_digest,
    period_window,
    previous_window,
    reconcile_billing,
    results_for,
    sent_thresholds,
)

H100, B200, A100 = "NVIDIA_H100_80GB", "NVIDIA_B200_180GB", "NVIDIA_A100_80GB"
PRICES = {H100: 8.0, B200: 13.0}
NY = ZoneInfo("America/New_York")
T0 = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday


def at(hours: float = 0, minutes: float = 0, seconds: float = 0) -> datetime:
    return T0 + timedelta(hours=hours, minutes=minutes, seconds=seconds)


def rp(dep: str, when: datetime | str, replicas: int, acc: str | None = H100, count: int = 1, single: bool = False) -> dict:
    return {
        "deployment_id": dep,
        "at": when,
        "replicas": replicas,
        "accelerator_type": acc,
        "accelerator_count": count,
        "single_region": int(single),
    }


def sp(dep: str, when: datetime, serving: int) -> dict:
    return {"deployment_id": dep, "at": when, "serving": serving}


def one(replicas, serving=(), start=T0, end=None, **kw) -> DeploymentCost:
    out = integrate(replicas, serving, start, end or at(10), prices=kw.pop("prices", PRICES), **kw)
    assert len(out) == 1
    return next(iter(out.values()))


# -- integration -----------------------------------------------------------------------------
def test_replica_changes_and_scale_to_zero_gap_with_state_set_before_start():
    # 2 GPUs/replica. The window opens between change points: the 20:00 point of the day
    # before says 1 replica. 00-04 1 rep, 04-07:30 3 reps, 07:30-09 zero, 09-10 1 rep.
    r = one(
        [
            rp("d", at(-4), 1, count=2),
            rp("d", at(4), 3, count=2),
            rp("d", at(7, 30), 0, count=2),
            rp("d", at(9), 1, count=2),
            rp("d", at(11), 5, count=2),  # after the window: ignored
        ]
    )
    gpu_hours = 4 * 2 + 3.5 * 3 * 2 + 0 + 1 * 2
    assert r.gpu_seconds == gpu_hours * 3600
    assert r.usd == pytest.approx(gpu_hours * 8)
    # No traffic points at all: every replica-second was idle.
    assert r.idle_gpu_seconds == r.gpu_seconds and r.serving_gpu_seconds == 0
    assert r.idle_usd == r.usd


def test_rfc3339_strings_as_stored():
    r = one([rp("d", "2026-11-01T23:00:00.000000Z", 1)], end=at(1))
    assert r.gpu_seconds == 3600


def test_no_replicas_before_first_point():
    r = one([rp("d", at(8), 2)])
    assert r.gpu_seconds == 2 * 2 * 3600


def test_last_point_holds_until_now_when_now_is_before_end():
    r = one([rp("d", at(-1), 1)], end=at(24), now=at(3))
    assert r.gpu_seconds == 3 * 3600


def test_serving_idle_split_exact_to_the_second():
    # Serving from 00:10:00 to 00:10:17 only; before the first traffic point counts as idle.
    r = one([rp("d", at(-1), 1)], [sp("d", at(0, 10), 1), sp("d", at(0, 10, 17), 0)], end=at(1))
    assert r.serving_gpu_seconds == 17
    assert r.idle_gpu_seconds == 3600 - 17
    assert r.usd == pytest.approx(8.0)
    assert r.idle_usd == pytest.approx(8.0 * (3600 - 17) / 3600)
    assert r.serving_usd == pytest.approx(8.0 * 17 / 3600)


def test_serving_state_before_start_carries_in():
    r = one([rp("d", at(-1), 2)], [sp("d", at(-5), 1), sp("d", at(0, 30), 0)], end=at(1))
    assert r.serving_gpu_seconds == 2 * 1800 and r.idle_gpu_seconds == 2 * 1800


def test_serving_with_zero_replicas_costs_nothing():
    r = one([rp("d", at(-1), 0)], [sp("d", at(-1), 1)], end=at(1))
    assert r.gpu_seconds == 0 and r.usd == 0


def test_single_region_costs_one_and_a_half():
    r = one([rp("d", at(-1), 1, single=True)], end=at(1))
    assert r.usd == pytest.approx(12.0)


def test_unknown_price_is_unknown_not_free():
    r = one([rp("d", at(-1), 1, acc=A100, count=8)], end=at(1))
    assert r.gpu_seconds == 8 * 3600
    assert r.usd is None and r.idle_usd is None and r.serving_usd is None
    assert r.unknown_price_types == (A100,)
    assert r.unpriced_gpu_seconds == 8 * 3600
    assert not r.price_known


def test_accelerator_change_prices_each_part_and_keeps_the_priced_part():
    r = one([rp("d", at(-1), 1, acc=H100), rp("d", at(1), 1, acc=A100)], end=at(2))
    assert r.usd is None
    assert r.known_usd == pytest.approx(8.0)
    assert r.gpu_seconds == 7200 and r.unpriced_gpu_seconds == 3600


def test_missing_accelerator_type_is_flagged():
    r = one([rp("d", at(-1), 1, acc=None)], end=at(1))
    assert r.usd is None and r.unknown_price_types == ("unknown accelerator",)


def test_price_change_between_types_uses_each_rate():
    r = one([rp("d", at(-1), 1, acc=H100), rp("d", at(1), 2, acc=B200, count=2)], end=at(2))
    assert r.usd == pytest.approx(8 + 4 * 13)


def test_deployments_are_independent():
    out = integrate(
        [rp("a", at(-1), 1), rp("b", at(5), 2)],
        [sp("a", at(0), 1)],
        T0,
        at(10),
        prices=PRICES,
    )
    assert out["a"].gpu_seconds == 10 * 3600 and out["a"].serving_gpu_seconds == 10 * 3600
    assert out["b"].gpu_seconds == 2 * 5 * 3600 and out["b"].serving_gpu_seconds == 0


def test_day_buckets_in_team_timezone_across_fall_back():
    # US DST ends 2026-11-01 02:00 local: that day lasts 25 hours.
    start, end = local_midnight(date(2026, 11, 1), NY), local_midnight(date(2026, 11, 3), NY)
    r = one([rp("d", start - timedelta(days=1), 1)], start=start, end=end, tz=NY)
    assert [d.day for d in r.days] == [date(2026, 11, 1), date(2026, 11, 2)]
    assert [d.gpu_seconds for d in r.days] == [25 * 3600, 24 * 3600]
    assert r.gpu_seconds == 49 * 3600


def test_day_buckets_across_spring_forward_and_include_idle_days():
    # US DST starts 2026-03-08: a 23-hour day. The deployment only starts on the 9th.
    start, end = local_midnight(date(2026, 3, 7), NY), local_midnight(date(2026, 3, 10), NY)
    r = one(
        [rp("d", start - timedelta(hours=1), 1), rp("d", local_midnight(date(2026, 3, 9), NY), 0)],
        start=start,
        end=end,
        tz=NY,
    )
    assert [(d.day.day, d.gpu_seconds / 3600) for d in r.days] == [(7, 24), (8, 23), (9, 0)]


def test_day_buckets_split_a_segment_at_local_midnight():
    tz = ZoneInfo("Europe/Berlin")  # UTC+1 in November
    r = one([rp("d", at(-1), 1)], [sp("d", at(22, 30), 1)], start=T0, end=at(24), tz=tz)
    # UTC day Nov 2 = Berlin Nov 2 01:00 .. Nov 3 01:00.
    assert [(d.day, d.gpu_seconds, d.serving_gpu_seconds) for d in r.days] == [
        (date(2026, 11, 2), 23 * 3600, 1800),
        (date(2026, 11, 3), 3600, 3600),
    ]


def test_replica_point_from_row_defaults():
    p = ReplicaPoint.from_row({"deployment_id": "d", "at": datetime(2026, 1, 1), "replicas": None})
    assert p.at.tzinfo is UTC and p.replicas == 0 and p.accelerator_count == 1 and not p.single_region


# -- properties ------------------------------------------------------------------------------
_replica_steps = st.lists(
    st.tuples(
        st.integers(-3600, 20_000),
        st.integers(0, 4),
        st.integers(1, 8),
        st.sampled_from([H100, B200, A100]),
        st.booleans(),
    ),
    min_size=1,
    max_size=8,
)
_serving_steps = st.lists(st.tuples(st.integers(-3600, 20_000), st.booleans()), max_size=8)


def _points(replica_steps, serving_steps):
    reps = [rp("d", at(seconds=s), n, acc=acc, count=c, single=single) for s, n, c, acc, single in replica_steps]
    serving = [sp("d", at(seconds=s), int(v)) for s, v in serving_steps]
    return reps, serving


@settings(max_examples=60, deadline=None)
@given(_replica_steps, _serving_steps, st.integers(0, 8000), st.integers(0, 8000), st.integers(0, 8000))
def test_split_and_additivity(replica_steps, serving_steps, x, y, z):
    a, b, c = sorted((x, y, z))
    reps, serving = _points(replica_steps, serving_steps)
    tz = ZoneInfo("Asia/Kolkata")  # half-hour offset: day cuts fall off the hour

    def run(lo, hi):
        return integrate(reps, serving, at(seconds=lo), at(seconds=hi), prices=PRICES, tz=tz)["d"]

    whole, left, right = run(a, c), run(a, b), run(b, c)
    assert whole.serving_gpu_seconds + whole.idle_gpu_seconds == whole.gpu_seconds
    assert sum(d.gpu_seconds for d in whole.days) == whole.gpu_seconds
    assert left.gpu_seconds + right.gpu_seconds == whole.gpu_seconds
    assert left.serving_gpu_seconds + right.serving_gpu_seconds == whole.serving_gpu_seconds
    assert left.known_usd + right.known_usd == pytest.approx(whole.known_usd)
    assert (whole.usd is None) == (whole.unpriced_gpu_seconds > 0)


# -- periods ---------------------------------------------------------------------------------
def test_today_week_month_in_team_timezone():
    now = datetime(2026, 11, 8, 17, 0, tzinfo=UTC)  # Sunday 12:00 in New York
    today = period_window("today", now, NY)
    assert (today.start, today.end) == (datetime(2026, 11, 8, 5, tzinfo=UTC), now)
    week = period_window("week", now, NY)
    # Monday 2 Nov 00:00 EST (DST ended on the 1st).
    assert week.start == datetime(2026, 11, 2, 5, tzinfo=UTC)
    month = period_window("month", now, NY)
    assert month.start == datetime(2026, 11, 1, 4, tzinfo=UTC)  # still EDT at midnight
    assert month.label == "November 2026 so far"


def test_week_on_a_monday_starts_that_day():
    now = datetime(2026, 11, 2, 5, 30, tzinfo=UTC)  # Monday 00:30 EST
    assert period_window("week", now, NY).start == datetime(2026, 11, 2, 5, tzinfo=UTC)


def test_month_at_year_boundary_uses_local_date():
    now = datetime(2027, 1, 1, 3, 0, tzinfo=UTC)  # still 31 Dec 22:00 in New York
    w = period_window("month", now, NY)
    assert w.start == datetime(2026, 12, 1, 5, tzinfo=UTC)
    assert w.label == "December 2026 so far"
    assert period_window("month", now, UTC).start == datetime(2027, 1, 1, tzinfo=UTC)


def test_explicit_range_includes_date_to():
    w = period_window((date(2026, 12, 31), date(2027, 1, 1)), T0, NY)
    assert (w.start, w.end) == (datetime(2026, 12, 31, 5, tzinfo=UTC), datetime(2027, 1, 2, 5, tzinfo=UTC))
    with pytest.raises(PeriodError, match="before it starts"):
        period_window((date(2026, 11, 3), date(2026, 11, 2)), T0, NY)


def test_previous_window_same_length_utc():
    start, end, _ = period_window("today", at(10), UTC)
    prev = previous_window(start, end)
    assert (prev.start, prev.end) == (at(-10), T0)


def test_previous_window_whole_local_days_across_dst():
    # The 2 Nov (24 h) window's previous day is 1 Nov, which lasted 25 hours.
    w = period_window((date(2026, 11, 2), date(2026, 11, 2)), T0, NY)
    prev = previous_window(w.start, w.end, NY)
    assert prev.start == local_midnight(date(2026, 11, 1), NY) == datetime(2026, 11, 1, 4, tzinfo=UTC)
    assert prev.end == w.start
    assert prev.end - prev.start == timedelta(hours=25)


def test_month_bounds():
    start, end = month_bounds(datetime(2026, 12, 15, tzinfo=UTC), NY)
    assert start == datetime(2026, 12, 1, 5, tzinfo=UTC)
    assert end == datetime(2027, 1, 1, 5, tzinfo=UTC)


# -- grouping and report ---------------------------------------------------------------------
def _cost(dep: str, usd: float, idle: float = 0.0, hours: float | None = None, unknown: bool = False) -> DeploymentCost:
    gpu_s = (hours if hours is not None else usd / 8) * 3600
    idle_s = gpu_s * (idle / usd) if usd else 0.0
    return DeploymentCost(
        deployment_id=dep,
        gpu_seconds=gpu_s,
        serving_gpu_seconds=gpu_s - idle_s,
        idle_gpu_seconds=idle_s,
        usd=None if unknown else usd,
        idle_usd=None if unknown else idle,
        known_usd=0.0 if unknown else usd,
        known_idle_usd=0.0 if unknown else idle,
        unpriced_gpu_seconds=gpu_s if unknown else 0.0,
        unknown_price_types=(A100,) if unknown else (),
    )


def test_report_groups_top_five_and_change():
    meta = {f"d{i}": {"owner": f"U{i}", "channel": "C1", "base_model": "accounts/fireworks/models/m"} for i in range(7)}
    meta["d6"]["owner"] = "U0"  # U0 owns two
    results = {f"d{i}": _cost(f"d{i}", 100.0 * (i + 1), idle=10.0) for i in range(7)}
    previous = {"d0": _cost("d0", 400.0), "d5": _cost("d5", 300.0)}
    rep = cost_report(results, meta, "owner", previous, label="this week")

    assert rep.usd == pytest.approx(2800) and rep.idle_usd == pytest.approx(70)
    assert rep.gpu_hours == pytest.approx(2800 / 8)
    assert [g.key for g in rep.top] == ["U0", "U5", "U4", "U3", "U2"]
    assert [g.key for g in rep.rest] == ["U1"]
    u0 = rep.groups[0]
    assert u0.usd == pytest.approx(800) and u0.deployments == ("d0", "d6")
    assert u0.change.delta_usd == pytest.approx(400) and u0.change.pct == pytest.approx(100)
    assert rep.groups[1].change.pct == pytest.approx(100)  # U5: 600 vs 300
    assert rep.groups[2].change.is_new and rep.groups[2].change.pct is None
    assert rep.change.previous_usd == pytest.approx(700)
    assert rep.change.pct == pytest.approx(300)


def test_report_by_model_channel_and_deployment():
    meta = {
        "a": {"owner": "U1", "channel": "C1", "base_model": "accounts/fireworks/models/llama", "display_name": "A"},
        "b": {"owner": "U2", "channel": "C1", "base_model": "accounts/fireworks/models/llama"},
        "c": {"owner": None, "channel": None, "base_model": "accounts/acme/models/tuned"},
    }
    results = {"a": _cost("a", 10), "b": _cost("b", 20), "c": _cost("c", 5), "x": _cost("x", 1)}
    by_model = cost_report(results, meta, "model")
    assert [(g.key, g.usd) for g in by_model.groups] == [("llama", 30), ("acme/tuned", 5), (None, 1)]
    by_channel = cost_report(results, meta, "channel")
    assert [(g.key, g.usd) for g in by_channel.groups] == [("C1", 30), (None, 6)]
    by_owner = cost_report(results, meta, "owner")
    assert by_owner.groups[-1].key is None and by_owner.groups[-1].name == "unowned"
    by_dep = cost_report(results, meta, "deployment")
    assert [g.name for g in by_dep.groups] == ["b", "A", "c", "x"]
    assert by_dep.change is None


def test_report_unknown_price_is_noted_and_not_counted_as_zero():
    results = {"a": _cost("a", 10), "z": _cost("z", 0, hours=3, unknown=True)}
    rep = cost_report(results, {}, "deployment")
    assert not rep.price_known
    assert rep.usd == pytest.approx(10) and rep.gpu_hours == pytest.approx(10 / 8 + 3)
    assert len(rep.unknown_price_notes) == 1
    assert "`z`" in rep.unknown_price_notes[0] and "3.0 GPU-hours" in rep.unknown_price_notes[0]
    assert "FWBOT_PRICES" in rep.unknown_price_notes[0]
    z = next(g for g in rep.groups if g.key == "z")
    assert not z.price_known


def test_report_leaves_out_deployments_that_never_ran_and_merges_days():
    out = integrate(
        [rp("a", at(-1), 1), rp("b", at(-1), 0), rp("c", at(30), 1)],
        [],
        T0,
        at(48),
        prices=PRICES,
    )
    rep = cost_report(out, {}, "deployment")
    assert [g.key for g in rep.groups] == ["a", "c"]
    assert [(d.day, d.usd) for d in rep.daily] == [(date(2026, 11, 2), 192.0), (date(2026, 11, 3), 192.0 + 144.0)]


def test_change_between():
    assert change_between(0, 0).pct == 0.0 and not change_between(0, 0).is_new
    assert change_between(5, 0).is_new
    assert change_between(50, 100).pct == pytest.approx(-50)


def test_results_for_owner_and_channel():
    meta = {"a": {"owner": "U1", "channel": "C1"}, "b": {"owner": "U2", "channel": "C1"}}
    results = {"a": _cost("a", 1), "b": _cost("b", 1), "c": _cost("c", 1)}
    assert set(results_for(results, meta, channel="C1")) == {"a", "b"}
    assert set(results_for(results, meta, owner="U1", channel="C1")) == {"a"}


# -- billing reconciliation ------------------------------------------------------------------
def test_reconcile_billing_sums_string_seconds_and_matches_names():
    rows = [
        {"deploymentId": "a", "acceleratorSeconds": "7200", "acceleratorType": H100},
        {"deploymentId": "a", "acceleratorSeconds": "1800", "acceleratorType": H100},
        # Older/grouped rows carry only the full resource name.
        {"acceleratorSeconds": "3600", "group": {"deployment_name": "accounts/acme/deployments/b"}},
        {"deploymentId": "c", "acceleratorSeconds": "100"},
        {"acceleratorSeconds": "5"},  # no deployment at all: ignored
    ]
    out = reconcile_billing({"a": 9000.0, "b": 3240.0, "d": 60.0}, rows)
    by_id = {r.deployment_id: r for r in out}
    assert by_id["a"] == ("a", 9000.0, 9000.0, 0.0)
    assert by_id["b"].theirs_s == 3600 and by_id["b"].diff_pct == pytest.approx(-10)
    assert by_id["c"].ours_s == 0 and by_id["c"].diff_pct == pytest.approx(-100)
    assert by_id["d"].theirs_s == 0 and by_id["d"].diff_pct is None
    assert [r.deployment_id for r in out] == ["b", "c", "d", "a"]  # biggest gap first


# -- budgets ---------------------------------------------------------------------------------
def test_month_projection_is_linear():
    start, end = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    assert month_projection(100.0, start, start + timedelta(days=10), end) == pytest.approx(300)
    assert month_projection(100.0, start, start, end) == 100.0
    assert month_projection(100.0, start, end + timedelta(days=1), end) == 100.0


def test_budget_thresholds_once_each():
    assert budget_alerts_due(790, 1000, set()) == []
    assert budget_alerts_due(800, 1000, set()) == [80]
    assert budget_alerts_due(850, 1000, {80}) == []
    assert budget_alerts_due(1200, 1000, {80}) == [100]
    assert budget_alerts_due(1200, 1000, set()) == [80, 100]
    assert budget_alerts_due(1200, 1000, {80, 100}) == []
    assert budget_alerts_due(1200, 0, set()) == []


def test_budget_keys_round_trip():
    nov = date(2026, 11, 1)
    key = budget_alert_key("C123", nov, 80)
    assert key == "budget:C123:2026-11:80"
    keys = [key, budget_alert_key("C123", date(2026, 10, 1), 100), budget_alert_key("C9", nov, 100)]
    assert sent_thresholds(keys, "C123", nov) == {80}


# -- owner digest ----------------------------------------------------------------------------
def test_owner_digest_totals_biggest_and_idle_candidates():
    meta = {
        "big": {"owner": "U1", "display_name": "Big one"},
        "lazy": {"owner": "U1"},
        "busy": {"owner": "U1"},
        "off": {"owner": "U1"},  # owned, never ran this week
        "mystery": {"owner": "U1"},
        "theirs": {"owner": "U2"},
    }
    results = {
        "big": _cost("big", 300, idle=20),
        "lazy": _cost("lazy", 100, idle=90),
        "busy": _cost("busy", 12, idle=0),
        "mystery": _cost("mystery", 1, idle=1, unknown=True),
        "theirs": _cost("theirs", 999, idle=999),
    }
    d = owner_digest("U1", results, meta)
    assert d.deployment_count == 5
    assert d.usd == pytest.approx(412) and d.idle_usd == pytest.approx(110)
    assert not d.price_known
    assert d.biggest.deployment_id == "big" and d.biggest.name == "Big one"
    assert [x.deployment_id for x in d.idle] == ["lazy", "mystery"]
    assert [x.deployment_id for x in d.lines] == ["big", "lazy", "busy", "mystery"]
    assert d.unknown_price_notes and "mystery" in d.unknown_price_notes[0]


def test_owner_digest_with_nothing_running():
    d = owner_digest("U1", {}, {"a": {"owner": "U1"}})
    assert d.deployment_count == 1 and d.biggest is None and d.usd == 0 and d.idle == ()


def test_unknown_period_name_is_a_user_error():
    with pytest.raises(PeriodError, match="today, week or month"):
        period_window("fortnight", T0, UTC)  # type: ignore[arg-type]
