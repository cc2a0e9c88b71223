"""storage/effects.py on a real database (SQLite, and PostgreSQL when given): idempotent keys,
compare-and-set closes, pruning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.db import Database
from storage.effects import Effects

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def effects(db: Database) -> Effects:
    return Effects(db)


def test_a_key_is_recorded_once_and_its_first_close_wins(db):
    e = effects(db)
    assert e.add("k", "note", {"targets": []}, T0)
    assert not e.add("k", "note", {"targets": ["other"]}, T0)  # the same intent, not a second one
    row = e.get("k")
    assert row is not None and row.status == "pending" and row.payload == {"targets": []}
    assert e.start_attempt(row.id, T0)
    assert e.get("k").status == "sending" and e.get("k").attempts == 1
    assert e.finish(row.id, "done", T0, result={"channel": "C1", "ts": "1.0"})
    assert not e.finish(row.id, "failed", T0, error="late")  # already closed
    assert not e.start_attempt(row.id, T0)
    assert e.get("k").status == "done" and e.get("k").result == {"channel": "C1", "ts": "1.0"}


def test_due_respects_backoff_and_order(db):
    e = effects(db)
    e.add("a", "note", {}, T0)
    e.add("b", "note", {}, T0)
    a = e.get("a")
    assert a is not None
    e.retry_at(a.id, T0 + timedelta(seconds=4), "503", T0)
    assert [r.key for r in e.due(T0)] == ["b"]
    assert [r.key for r in e.due(T0 + timedelta(seconds=4))] == ["a", "b"]
    assert e.get("a").error == "503" and e.get("a").status == "pending"


def test_prune_drops_only_finished_effects_older_than_the_limit(db):
    e = effects(db)
    for key in ("old-done", "old-open", "new-done"):
        e.add(key, "note", {}, T0)
    e.finish(e.get("old-done").id, "done", T0, result={"channel": "C1", "ts": "1"})
    e.finish(e.get("new-done").id, "done", T0 + timedelta(days=8), result={"channel": "C2", "ts": "2"})
    assert e.prune(T0 + timedelta(days=7)) == 1
    assert e.get("old-done") is None and e.get("old-open") is not None and e.get("new-done") is not None


def test_recent_posts_tell_the_pacer_where_a_predecessor_just_posted(db):
    e = effects(db)
    e.add("x", "note", {}, T0)
    e.finish(e.get("x").id, "done", T0, result={"channel": "C1", "ts": "1"})
    assert e.recent_posts(T0 - timedelta(seconds=1)) == {"C1": T0}
    assert e.recent_posts(T0 + timedelta(seconds=1)) == {}


def test_an_attempt_under_way_is_another_replicas_only_while_that_replica_is_present(db):
    from storage.leases import LeasesRepo, presence_name

    e = effects(db)
    leases = LeasesRepo(e.db)
    leases.acquire_or_renew(presence_name("r1"), "r1", T0, timedelta(seconds=15))
    leases.acquire_or_renew(presence_name("r2"), "r2", T0, timedelta(seconds=15))
    e.add("k", "note", {}, T0)
    row = e.get("k")
    assert row is not None
    assert e.start_attempt(row.id, T0, by="r1")
    assert e.get("k").claimed_by == "r1"
    # r2 neither posts it again, nor cancels it, nor sees it due, while r1 is at it.
    assert e.held_by_other(row.id, T0, by="r2") and not e.held_by_other(row.id, T0, by="r1")
    assert not e.start_attempt(row.id, T0, by="r2")
    assert not e.cancel(row.id, T0, "not wanted", by="r2")
    assert e.due(T0, by="r2") == [] and [r.key for r in e.due(T0, by="r1")] == ["k"]
    # r1 is gone (its presence ran out): r2 may take the attempt over (after a look in Slack).
    later = T0 + timedelta(seconds=15)
    assert not e.held_by_other(row.id, later, by="r2")
    assert [r.key for r in e.due(later, by="r2")] == ["k"]
    assert e.start_attempt(row.id, later, by="r2")
    assert e.get("k").claimed_by == "r2" and e.get("k").attempts == 2


def test_a_claim_lapses_after_the_longest_attempt_even_while_its_replica_is_present(db):
    from storage.effects import ATTEMPT_HOLD
    from storage.leases import LeasesRepo, presence_name

    e = effects(db)
    leases = LeasesRepo(e.db)
    leases.acquire_or_renew(presence_name("r1"), "r1", T0, timedelta(days=1))
    e.add("k", "note", {}, T0)
    row = e.get("k")
    assert e.start_attempt(row.id, T0, by="r1")
    assert e.held_by_other(row.id, T0 + ATTEMPT_HOLD - timedelta(seconds=1), by="r2")
    assert not e.held_by_other(row.id, T0 + ATTEMPT_HOLD, by="r2")
    assert e.cancel(row.id, T0 + ATTEMPT_HOLD, "no longer wanted", by="r2")
    assert e.get("k").status == "cancelled"


def test_a_claim_without_a_replica_is_nobodys(db):
    """Attempts recorded before replicas had names, or by a process with none: free to all."""
    e = effects(db)
    e.add("k", "note", {}, T0)
    row = e.get("k")
    assert e.start_attempt(row.id, T0)
    assert not e.held_by_other(row.id, T0, by="r2")
    assert e.start_attempt(row.id, T0, by="r2")
