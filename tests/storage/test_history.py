"""storage/history.py on a real SQLite file: replica and traffic change points (not samples), the
serving stretch a rate window bounds, and when a scale-to-zero clock last restarted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.core.clock import iso
from storage.audit import AuditRepo
from storage.history import HistoryRepo

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
H100 = "NVIDIA_H100_80GB"
S = timedelta(seconds=1)


def test_a_replica_point_is_appended_only_when_something_changed(db):
    history = HistoryRepo(db)
    assert history.record_replicas("d1", T0, 1, H100, 1)
    assert not history.record_replicas("d1", T0 + 60 * S, 1, H100, 1)
    assert history.record_replicas("d1", T0 + 120 * S, 1, H100, 1, single_region=True)
    assert history.record_replicas_many(T0 + 180 * S, [("d1", 1, H100, 1, True), ("d2", 0, None, None, False),
                                                       ("d3", 2, H100, 8, False)]) == ["d2", "d3"]
    assert [(r["deployment_id"], r["at"], r["replicas"], r["single_region"]) for r in history.replica_history()] == [
        ("d1", iso(T0), 1, 0), ("d1", iso(T0 + 120 * S), 1, 1),
        ("d2", iso(T0 + 180 * S), 0, 0), ("d3", iso(T0 + 180 * S), 2, 0)]


def test_history_since_a_time_keeps_the_point_that_sets_the_state_then(db):
    history = HistoryRepo(db)
    for minutes, replicas in ((0, 1), (10, 2), (20, 3), (30, 0)):
        history.record_replicas("d1", T0 + minutes * 60 * S, replicas, H100, 1)
    history.record_replicas("d2", T0 + 25 * 60 * S, 4, H100, 1)
    since = T0 + 15 * 60 * S
    assert [(r["deployment_id"], r["replicas"]) for r in history.replica_history(since=since)] == [
        ("d1", 2), ("d1", 3), ("d1", 0), ("d2", 4)]
    assert [r["replicas"] for r in history.replica_history("d1", since=since)] == [2, 3, 0]


def test_traffic_at_the_scrape_records_serving_and_idle_change_points(db):
    history = HistoryRepo(db)
    for seconds, rate in ((0, 0.0), (10, 2.0), (20, 3.0), (30, 0.0), (40, 0.0)):
        history.record_traffic("d1", T0 + seconds * S, rate)
    assert [(r["at"], r["serving"]) for r in history.traffic_history("d1")] == [
        (iso(T0), 0), (iso(T0 + 10 * S), 1), (iso(T0 + 30 * S), 0)]
    assert history.last_traffic("d1") == T0 + 20 * S
    assert history.traffic_rows()["d1"]["request_rate"] == 0.0 and history.last_traffic("d9") is None
    assert history.traffic_seen() == {"d1": (T0 + 20 * S, T0 + 10 * S)}


def test_a_rate_window_bounds_the_stretch_its_requests_can_have_come_in(db):
    """Scrapes every 10 s of a rate over the minute before each: a stretch begins no earlier than
    the last scrape that saw none, and ends no later than the last that saw one, nor before it began."""
    history = HistoryRepo(db)
    window = 60.0
    history.record_traffic_many({"long": 0.0, "short": 0.0}, T0, rate_window_s=window)
    for seconds in range(10, 130, 10):
        history.record_traffic_many({"long": 0.0, "short": 0.0}, T0 + seconds * S, rate_window_s=window)
    history.record_traffic_many({"long": 1.0, "short": 1.0}, T0 + 130 * S, rate_window_s=window)
    history.record_traffic_many({"long": 1.0, "short": 0.0}, T0 + 140 * S, rate_window_s=window)
    for seconds in range(150, 310, 10):
        history.record_traffic_many({"long": 1.0}, T0 + seconds * S, rate_window_s=window)
    history.record_traffic_many({"long": 0.0}, T0 + 310 * S, rate_window_s=window)
    # "short": saw requests at 130 s only: from 120 s (the scrape before saw none) to, at the
    # latest, 140 − 60 = 80 s — before it began, so it ends a microsecond after.
    assert [(r["at"], r["serving"]) for r in history.traffic_history("short")] == [
        (iso(T0), 0), (iso(T0 + 120 * S), 1), (iso(T0 + 120 * S + timedelta(microseconds=1)), 0)]
    # "long": 120 s to 310 − 60 = 250 s (the last scrape that saw requests, 300 s, is later).
    assert [(r["at"], r["serving"]) for r in history.traffic_history("long")] == [
        (iso(T0), 0), (iso(T0 + 120 * S), 1), (iso(T0 + 250 * S), 0)]
    assert history.traffic_seen("long") == {"long": (T0 + 300 * S, T0 + 120 * S)}


def test_a_first_scrape_with_requests_starts_the_stretch_a_window_before(db):
    history = HistoryRepo(db)
    history.record_traffic("d1", T0, 1.0, rate_window_s=60)
    assert [(r["at"], r["serving"]) for r in history.traffic_history("d1")] == [(iso(T0 - 60 * S), 1)]


def test_the_scale_clock_restarts_when_replicas_leave_zero_or_the_scaling_changes(db):
    history, audit = HistoryRepo(db), AuditRepo(db)
    history.record_replicas("d1", T0, 0, H100, 1)
    history.record_replicas("d1", T0 + 10 * S, 2, H100, 1)  # up from zero
    history.record_replicas("d1", T0 + 20 * S, 3, H100, 1)  # up, but not from zero
    history.record_replicas("d2", T0, 1, H100, 1)  # never at zero
    assert history.scale_clock_restarts() == {"d1": T0 + 10 * S}
    audit.audit(actor="U1", action="scale", result="ok", now=T0 + 30 * S, deployment_id="d2")
    audit.audit(actor="U1", action="scale", result="error", now=T0 + 40 * S, deployment_id="d2")
    audit.audit(actor="U1", action="update", result="ok", now=T0 + 50 * S, deployment_id="d1",
                request={"mask": "display_name"})
    audit.audit(actor="U1", action="update", result="ok", now=T0 + 60 * S, deployment_id="d1",
                request={"mask": "min_replica_count,max_replica_count"})
    assert history.scale_clock_restarts() == {"d1": T0 + 60 * S, "d2": T0 + 30 * S}
    assert history.scale_clock_restarts("d2") == {"d2": T0 + 30 * S}
