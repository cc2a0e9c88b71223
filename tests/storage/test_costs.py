"""storage/costs.py on a real database (a SQLite file, and PostgreSQL when a server is given): the cost history's reads in one snapshot, points as the
integration reads them, and rollups cached only while the history is as it was read."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from bot.core.clock import iso
from bot.core.costs import epoch_us
from storage.costs import CostsRepo, rollup_rows
from storage.db import Database
from storage.history import HistoryRepo

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
H100 = "NVIDIA_H100_80GB"
HOUR = timedelta(hours=1)


def test_first_points_are_each_deployments_first_replica_point(db):
    history, costs = HistoryRepo(db), CostsRepo(db)
    history.record_replicas("b", T0 + HOUR, 1, H100, 1)
    history.record_replicas("b", T0 + 2 * HOUR, 2, H100, 1)
    history.record_replicas("a", T0 + 3 * HOUR, 1, H100, 1)
    history.record_traffic("traffic-only", T0, 1.0)
    with costs.cost_snapshot() as snap:
        assert snap.first_points() == {"a": epoch_us(T0 + 3 * HOUR), "b": epoch_us(T0 + HOUR)}
        assert snap.generation() == 4  # every history write bumps it (three replica points, one traffic point)


def test_a_span_has_the_point_before_it_and_stops_before_its_end(db):
    history, costs = HistoryRepo(db), CostsRepo(db)
    history.record_replicas("a", T0, 2, H100, 8)
    history.record_replicas("a", T0 + HOUR, 0, None, 0)
    history.record_replicas("a", T0 + 2 * HOUR, 1, H100, 1, single_region=True)
    history.record_replicas("a", T0 + 3 * HOUR, 4, H100, 1)
    history.record_replicas("b", T0 + 3 * HOUR, 1, H100, 1)
    history.record_traffic("a", T0, 0.0)
    history.record_traffic("a", T0 + 90 * timedelta(minutes=1), 1.0)
    want = {"a": iso(T0 + HOUR + timedelta(minutes=30)), "nothing": iso(T0)}
    with costs.cost_snapshot() as snap:
        assert snap.replica_points(want, iso(T0 + 3 * HOUR)) == {"a": [
            ("a", epoch_us(T0 + HOUR), 0, None, 1, 0),  # sets the state the span opens with
            ("a", epoch_us(T0 + 2 * HOUR), 1, H100, 1, 1)]}
        assert snap.serving_points(want, iso(T0 + 3 * HOUR)) == {"a": [
            ("a", epoch_us(T0), 0), ("a", epoch_us(T0 + 90 * timedelta(minutes=1)), 1)]}
        assert snap.replica_points({}, iso(T0)) == {}


def test_a_time_stored_in_another_rfc3339_form_is_read_to_the_microsecond(db):
    costs = CostsRepo(db)
    db.execute("INSERT INTO replica_history (deployment_id, at, replicas, accelerator_type, accelerator_count,"
               " single_region) VALUES ('a', '2026-11-02T09:00:00.5+00:00', 1, 'H', 1, 0)")
    db.execute("INSERT INTO replica_history (deployment_id, at, replicas, accelerator_type, accelerator_count,"
               " single_region) VALUES ('a', '2026-11-02T10:00:53.999950Z', 2, 'H', 1, 0)")
    with costs.cost_snapshot() as snap:
        points = snap.replica_points({"a": iso(T0)}, iso(T0 + 2 * HOUR))["a"]
        assert [p[1] for p in points] == [epoch_us(T0) + 500_000, epoch_us(T0 + HOUR) + 53_999_950]
        assert snap.first_points() == {"a": epoch_us(T0) + 500_000}


def test_the_snapshot_does_not_see_a_write_made_after_it_began(db):
    history, costs = HistoryRepo(db), CostsRepo(db)
    history.record_replicas("a", T0, 1, H100, 1)
    with costs.cost_snapshot() as snap:
        gen = snap.generation()
        other = Database(db.url)  # another process's connection
        other.execute("INSERT INTO replica_history (deployment_id, at, replicas, accelerator_type,"
                      " accelerator_count, single_region) VALUES ('b', :at, 1, :type, 1, 0)",
                      {"at": iso(T0), "type": H100})
        other.close()
        assert set(snap.first_points()) == {"a"} and snap.generation() == gen
    assert not db.in_transaction
    with costs.cost_snapshot() as snap:
        assert set(snap.first_points()) == {"a", "b"} and snap.generation() == gen + 1


def test_inside_a_write_transaction_the_snapshot_joins_it(db):
    history, costs = HistoryRepo(db), CostsRepo(db)
    with db.write():
        history.record_replicas("a", T0, 1, H100, 1)
        with costs.cost_snapshot() as snap:
            assert set(snap.first_points()) == {"a"}
        assert db.in_transaction  # not committed by the snapshot
    assert not db.in_transaction


def test_rollup_rows_split_a_day_by_type_and_placement_or_mark_an_empty_one():
    tally = {(H100, False, True): 10, (H100, False, False): 5, (None, True, False): 7}
    assert sorted(rollup_rows("UTC", "a", "2026-11-02", "2026-11-03T00:00:00.000000Z", tally)) == [
        ("UTC", "a", "2026-11-02", "2026-11-03T00:00:00.000000Z", "", 1, 0, 7),
        ("UTC", "a", "2026-11-02", "2026-11-03T00:00:00.000000Z", H100, 0, 10, 5)]
    assert rollup_rows("UTC", "a", "2026-11-02", "x", {}) == [("UTC", "a", "2026-11-02", "x", "", 0, 0, 0)]


def test_rollups_are_cached_only_while_the_history_is_as_read(db):
    history, costs = HistoryRepo(db), CostsRepo(db)
    rows = rollup_rows("UTC", "a", "2026-11-01", iso(T0), {(None, False, True): 3}) + rollup_rows(
        "UTC", "a", "2026-11-02", iso(T0 + 24 * HOUR), {(H100, True, False): 4})
    with costs.cost_snapshot() as snap:
        gen = snap.generation()
    assert costs.cache_rollups(gen, rows)
    with costs.cost_snapshot() as snap:
        assert sorted(snap.rollups("UTC", "2026-11-01", "2026-11-02")) == [
            ("a", "2026-11-01", None, 0, 3, 0), ("a", "2026-11-02", H100, 1, 0, 4)]  # '' read back as None
        assert list(snap.rollups("America/New_York", "2026-11-01", "2026-11-02")) == []
    history.record_replicas("a", T0 + HOUR, 1, H100, 1)  # drops the day it falls in, bumps the generation
    assert db.scalar("SELECT count(*) FROM cost_rollups") == 1
    assert not costs.cache_rollups(gen, rows)
    assert db.scalar("SELECT count(*) FROM cost_rollups") == 1


def test_a_failed_cache_write_is_logged_not_raised(db, caplog):
    costs = CostsRepo(db)
    db.execute("DROP TABLE cost_rollups")
    with caplog.at_level(logging.WARNING, logger="fwbot.costs"):
        assert not costs.cache_rollups(0, rollup_rows("UTC", "a", "2026-11-01", iso(T0), {}))
    assert "cost rollups not cached" in caplog.text


def test_a_day_of_many_gpus_is_cached_whole(db):
    # A day of 8 GPUs is 6.9e11 GPU-µs: past a 32-bit integer (BIGINT on PostgreSQL).
    costs = CostsRepo(db)
    day_us = 8 * 86_400 * 10**6
    with costs.cost_snapshot() as snap:
        gen = snap.generation()
    assert costs.cache_rollups(gen, rollup_rows("UTC", "a", "2026-11-01", iso(T0), {(H100, False, True): day_us}))
    with costs.cost_snapshot() as snap:
        assert list(snap.rollups("UTC", "2026-11-01", "2026-11-01")) == [("a", "2026-11-01", H100, 0, day_us, 0)]
