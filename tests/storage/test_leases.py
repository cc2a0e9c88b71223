"""storage/leases.py on a real database (SQLite, and PostgreSQL when given): the fence a scheduled
write checks is atomic with that write, so a take-over lands before it or after its commit."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from storage.db import Database
from storage.leases import LEADER, Fence, LeaseLost, fenced
from storage.store import Store

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
TTL = timedelta(seconds=15)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now_ = now

    def now(self) -> datetime:
        return self.now_


def test_release_expires_the_lease_at_its_last_renewal_and_keeps_the_token(db):
    store = Store(db)
    assert store.acquire_or_renew(LEADER, "a", T0, TTL) == 1
    assert store.acquire_or_renew(LEADER, "a", T0 + timedelta(seconds=5), TTL) == 1
    assert not store.release(LEADER, "a", 2)  # not under this token
    assert store.release(LEADER, "a", 1)
    lease = store.lease(LEADER)
    assert lease is not None and lease.expires_at == T0 + timedelta(seconds=5) and lease.token == 1
    assert store.holder_of(LEADER, T0 + timedelta(seconds=5)) is None
    assert store.acquire_or_renew(LEADER, "b", T0 + timedelta(seconds=6), TTL) == 2


def test_a_fenced_write_is_refused_once_the_lease_was_taken_over(db):
    a, b = Store(db), Store(Database(db.url))
    try:
        clock = Clock(T0)
        token = a.acquire_or_renew(LEADER, "a", T0, TTL)
        assert token == 1
        with fenced(Fence(LEADER, token, clock)):
            with a.db.write():
                a.hold_fence()
                a.set_kv("written", "under the lease", clock.now())
            clock.now_ = T0 + timedelta(seconds=20)
            assert b.acquire_or_renew(LEADER, "b", clock.now(), TTL) == 2
            with pytest.raises(LeaseLost), a.db.write():
                a.hold_fence()
                a.set_kv("late", "after losing it", clock.now())
        assert a.get_kv("written") == "under the lease" and a.get_kv("late") is None
    finally:
        b.db.close()


def test_a_take_over_waits_for_the_fenced_write_in_progress(db):
    """The fence held at the start of a transaction still holds at its commit: a replica taking the
    lease over meanwhile gets it only after that commit."""
    a, b = Store(db), Store(Database(db.url))
    try:
        clock = Clock(T0 + timedelta(seconds=14))  # a's lease has a second left
        assert a.acquire_or_renew(LEADER, "a", T0, TTL) == 1
        fenced_in, took = threading.Event(), {}
        later = T0 + timedelta(seconds=20)

        def take_over() -> None:
            fenced_in.wait()
            took["token"] = b.acquire_or_renew(LEADER, "b", later, TTL)
            took["kv"] = b.get_kv("written")  # what a committed before the take-over was let in

        thread = threading.Thread(target=take_over)
        thread.start()
        with fenced(Fence(LEADER, 1, clock)), a.db.write():
            a.hold_fence()
            fenced_in.set()
            thread.join(timeout=0.5)  # b is kept out while the transaction lasts
            assert thread.is_alive()
            a.set_kv("written", "under the lease", clock.now())
        thread.join(timeout=30)
        assert took == {"token": 2, "kv": "under the lease"}
    finally:
        b.db.close()
