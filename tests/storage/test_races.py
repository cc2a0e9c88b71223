"""The store's compare-and-sets under a real race, on each engine: twenty threads, each with its
own ``Store`` over the same database (its own connections, as replicas have), make the same
decision at the same instant, and exactly one of them wins it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from storage.db import Database
from storage.leases import LEADER
from storage.store import Store

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
RACERS = 20


def race(db: Database, attempt: Callable[[Store, int], Any]) -> dict[int, Any]:
    """Run ``attempt(store, i)`` on RACERS threads released together; each thread's result by ``i``."""
    stores = [Store(Database(db.url)) for _ in range(RACERS)]
    for s in stores:
        s.lease("warm-up")  # connect before the start, so the race is of the statements
    start = threading.Barrier(RACERS)
    results: dict[int, Any] = {}
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            start.wait()
            results[i] = attempt(stores[i], i)
        except BaseException as e:  # reported below, on the test's thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(RACERS)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        for s in stores:
            s.db.close()
    assert errors == [] and len(results) == RACERS
    return results


def winners(results: dict[int, Any]) -> list[int]:
    return [i for i, won in results.items() if won]


def test_one_of_many_racing_decisions_on_an_approval_wins(db):
    store = Store(db)
    store.create_approval(token="t1", kind="deploy", requester="U0", channel="C1", deployment_id=None,
                          request={"model": "m"}, usd_per_hour=1.0, now=T0, expires_at=T0 + timedelta(hours=1))
    results = race(db, lambda s, i: s.decide_approval(
        "t1", status="approved" if i % 2 else "rejected", by=f"U{i}", now=T0, runner=f"r{i}"))
    [winner] = winners(results)
    record = store.approval("t1")
    assert record is not None and record.decided_by == f"U{winner}"
    if winner % 2:
        assert (record.status, record.run_by, record.executed_at) == ("approved", f"r{winner}", T0)
    else:
        assert (record.status, record.run_by, record.executed_at) == ("rejected", None, None)


def test_one_of_many_racing_claims_of_a_warning_wins(db):
    due = "2026-11-03T09:00:00.000000Z"
    results = race(db, lambda s, i: s.claim_warning("d1", "auto_delete", due, 3600, channel="C1",
                                                    snapshot={"by": i}, now=T0))
    [winner] = winners(results)
    claimed = Store(db).warnings(deployment_id="d1")
    assert claimed == [results[winner]] and claimed[0].snapshot == {"by": winner}


def test_one_of_many_replicas_racing_to_take_over_an_expired_lease_wins(db):
    store = Store(db)
    assert store.acquire_or_renew(LEADER, "old", T0, timedelta(seconds=15)) == 1
    later = T0 + timedelta(seconds=20)  # the old holder's lease has run out
    results = race(db, lambda s, i: s.acquire_or_renew(LEADER, f"r{i}", later, timedelta(seconds=15)))
    [winner] = winners(results)
    assert results[winner] == 2  # the one take-over, the next token
    lease = store.holder_of(LEADER, later)
    assert lease is not None and (lease.holder, lease.token) == (f"r{winner}", 2)
