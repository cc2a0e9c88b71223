"""The leader lease on a real database (the run's engine): storage/leases.py (two holders, expiry,
the fencing token, a stale holder), storage/liveness.py (PostgreSQL: a dead leader's session) and
bot/jobs/leadership.py (the keeper, the job guard, the fence)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from storage.db import Database
from storage.leases import LEADER, Fence, LeaseLost, fenced, hold_fence, presence_name
from storage.store import Store
from tests.fixtures.databases import database_url, engine

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
TTL = timedelta(seconds=15)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def path(tmp_path):
    path = database_url(tmp_path)
    db = Database(path)
    db.migrate()
    db.close()
    return path


@pytest.fixture
def replicas(path):
    """Two stores on one database, each with its own connections, as two processes have."""
    a, b = Store(Database(path)), Store(Database(path))
    yield a, b
    a.db.close()
    b.db.close()


# -- the repository ----------------------------------------------------------------------------
def test_the_first_holder_gets_token_1_and_a_second_holder_gets_nothing_while_it_lasts(replicas):
    a, b = replicas
    assert a.acquire_or_renew(LEADER, "a", at(0), TTL) == 1
    assert b.acquire_or_renew(LEADER, "b", at(1), TTL) is None
    assert b.acquire_or_renew(LEADER, "b", at(14.9), TTL) is None
    lease = b.holder_of(LEADER, at(14.9))
    assert lease is not None and (lease.holder, lease.token) == ("a", 1)
    assert lease.expires_at == at(15) and lease.acquired_at == at(0)


def test_renewing_keeps_the_token_and_moves_the_expiry(replicas):
    a, b = replicas
    assert a.acquire_or_renew(LEADER, "a", at(0), TTL) == 1
    assert a.acquire_or_renew(LEADER, "a", at(10), TTL) == 1
    assert b.acquire_or_renew(LEADER, "b", at(20), TTL) is None  # renewed until 25
    lease = a.holder_of(LEADER, at(20))
    assert lease is not None and lease.expires_at == at(25) and lease.renewed_at == at(10)
    assert lease.acquired_at == at(0)


def test_an_expired_lease_goes_to_the_next_holder_with_the_next_token(replicas):
    a, b = replicas
    assert a.acquire_or_renew(LEADER, "a", at(0), TTL) == 1
    assert a.holder_of(LEADER, at(15)) is None  # expired exactly at its expiry
    assert b.acquire_or_renew(LEADER, "b", at(15), TTL) == 2
    assert a.acquire_or_renew(LEADER, "a", at(31), TTL) == 3
    assert b.acquire_or_renew(LEADER, "b", at(50), TTL) == 4
    lease = a.lease(LEADER)
    assert lease is not None and (lease.holder, lease.token, lease.acquired_at) == ("b", 4, at(50))


def test_a_stale_holder_cannot_renew_and_fails_the_fence(replicas):
    a, b = replicas
    assert a.acquire_or_renew(LEADER, "a", at(0), TTL) == 1
    assert b.acquire_or_renew(LEADER, "b", at(20), TTL) == 2  # a was paused past its expiry
    # a wakes up: its renew fails, and work under its old token is refused.
    assert a.acquire_or_renew(LEADER, "a", at(21), TTL) is None
    assert not a.check_fence(LEADER, 1, at(21))
    assert b.check_fence(LEADER, 2, at(21))
    assert not b.check_fence(LEADER, 2, at(35))  # b's own lease ran out too


def test_a_holder_whose_own_lease_expired_gets_it_back_only_with_a_new_token(replicas):
    a, _ = replicas
    assert a.acquire_or_renew(LEADER, "a", at(0), TTL) == 1
    assert a.acquire_or_renew(LEADER, "a", at(16), TTL) == 2  # nobody took it, but it lapsed
    assert not a.check_fence(LEADER, 1, at(17))
    assert a.check_fence(LEADER, 2, at(17))


def test_release_lets_the_next_holder_in_at_once_and_the_token_still_grows(replicas):
    a, b = replicas
    assert a.acquire_or_renew(LEADER, "a", at(0), TTL) == 1
    assert not b.release(LEADER, "b", 1)  # only the holder, with its token, releases it
    assert not a.release(LEADER, "a", 7)
    assert a.release(LEADER, "a", 1)
    assert a.holder_of(LEADER, at(1)) is None
    assert b.acquire_or_renew(LEADER, "b", at(1), TTL) == 2


def test_leases_are_independent_and_presence_lists_running_replicas(replicas):
    a, b = replicas
    assert a.acquire_or_renew(presence_name("a"), "a", at(0), TTL) == 1
    assert b.acquire_or_renew(presence_name("b"), "b", at(5), TTL) == 1
    assert a.acquire_or_renew(LEADER, "a", at(5), TTL) == 1
    assert a.present_replicas(at(10)) == ["a", "b"]
    assert a.present_replicas(at(16)) == ["b"]
    assert a.forget_absent_replicas(at(16)) == 1
    assert a.lease(presence_name("a")) is None and a.lease(LEADER) is not None  # the leader lease stays


def test_racing_replicas_one_wins(path):
    """Eight stores (a connection each) race for a free lease at the same instant: one token."""
    stores = [Store(Database(path)) for _ in range(8)]
    start, won = threading.Barrier(len(stores)), {}

    def race(i: int) -> None:
        start.wait()
        won[i] = stores[i].acquire_or_renew(LEADER, f"r{i}", at(0), TTL)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(v for v in won.values() if v is not None) == [1]
    winner = next(i for i, v in won.items() if v is not None)
    assert stores[0].holder_of(LEADER, at(1)).holder == f"r{winner}"  # type: ignore[union-attr]
    for s in stores:
        s.db.close()


def test_hold_fence_refuses_the_write_of_work_whose_lease_was_lost(replicas):
    a, b = replicas

    class Clock:
        now_ = at(0)

        def now(self) -> datetime:
            return self.now_

    clock = Clock()
    token = a.acquire_or_renew(LEADER, "a", clock.now(), TTL)
    assert token == 1
    hold_fence(a.db)  # not scheduled work: nothing to check
    with fenced(Fence(LEADER, token, clock)):
        with a.db.write():
            a.hold_fence()
            a.set_kv("written", "under the lease", clock.now())
        clock.now_ = at(20)
        assert b.acquire_or_renew(LEADER, "b", clock.now(), TTL) == 2
        with pytest.raises(LeaseLost), a.db.write():
            a.hold_fence()
            a.set_kv("late", "after losing it", clock.now())
    assert a.get_kv("written") == "under the lease"
    assert a.get_kv("late") is None  # rolled back with the transaction the fence guarded


# -- the keeper and the guard ------------------------------------------------------------------
def leadership(store: Store, clock, replica: str, metrics=None, ttl_s: float = 15.0):
    from bot.jobs.leadership import Leadership

    return Leadership(store, clock, replica=replica, ttl_s=ttl_s, metrics=metrics)


def test_one_replica_leads_and_another_takes_over_once_its_lease_runs_out(replicas):
    from bot.adapters.metrics import Metrics
    from bot.core.clock import FakeClock

    a_store, b_store = replicas
    clock = FakeClock(T0)
    metrics_a, metrics_b = Metrics(), Metrics()
    a, b = leadership(a_store, clock, "a", metrics_a), leadership(b_store, clock, "b", metrics_b)
    gained = []
    b.on_gain(lambda: gained.append("b"))
    assert a.renew() and not b.renew()
    assert a.is_leader and not b.is_leader
    assert a.status() == {"role": "leader", "replica": "a", "leader": "a", "lease_token": 1}
    assert b.status() == {"role": "follower", "replica": "b", "leader": "a", "lease_token": 1}
    assert b_store.present_replicas(clock.now()) == ["a", "b"]

    clock.advance(10)
    assert a.renew() and not b.renew()  # renewed in time: a keeps it
    clock.advance(15)  # a stops renewing (dead or paused) and its lease runs out
    assert not a.is_leader and a.fence() is None  # it knows from its own clock
    assert b.renew() and b.is_leader and gained == ["b"]
    assert b.fence() == Fence(LEADER, 2, clock)
    assert not a.renew() and not a.is_leader  # a wakes up: a follower now
    sample = {s.name: s.value for m in metrics_b.registry.collect() for s in m.samples}
    assert sample["fwbot_leader"] == 1.0 and sample["fwbot_lease_takeovers_total"] == 1.0
    sample = {s.name: s.value for m in metrics_a.registry.collect() for s in m.samples}
    assert sample["fwbot_leader"] == 0.0 and sample["fwbot_lease_takeovers_total"] == 1.0


def test_stopping_gives_the_lease_up_at_once(replicas):
    from bot.core.clock import FakeClock

    a_store, b_store = replicas
    clock = FakeClock(T0)
    a, b = leadership(a_store, clock, "a"), leadership(b_store, clock, "b")
    a.start()
    assert a.is_leader and not b.renew()
    a.stop()
    assert not a.is_leader and b_store.present_replicas(clock.now()) == ["b"]  # a is gone
    assert b.renew() and b.fence().token == 2  # type: ignore[union-attr]


def test_the_guard_runs_a_job_only_on_the_leader_and_stops_it_when_the_lease_is_lost(replicas):
    from bot.adapters.metrics import Metrics
    from bot.core.clock import FakeClock
    from bot.jobs.base import Job, _guarded

    a_store, b_store = replicas
    clock = FakeClock(T0)
    metrics = Metrics()
    a, b = leadership(a_store, clock, "a"), leadership(b_store, clock, "b")
    assert a.renew() and not b.renew()
    runs: list[str] = []

    def sweep(store: Store, who: str) -> None:
        runs.append(who)
        with store.db.write():
            store.hold_fence()
            store.set_kv(f"swept by {who}", who, clock.now())
        # Paused here past the lease; meanwhile b takes over.
        clock.advance(20)
        assert b.renew()
        with store.db.write():
            store.hold_fence()
            store.set_kv(f"warned by {who}", who, clock.now())

    _guarded(Job("sweep", lambda: sweep(b_store, "b")), metrics, b)()  # b follows: it does not run
    _guarded(Job("sweep", lambda: sweep(a_store, "a")), metrics, a)()
    assert runs == ["a"]
    assert a_store.get_kv("swept by a") == "a" and a_store.get_kv("warned by a") is None
    counted = {s.labels["result"]: s.value for m in metrics.registry.collect() for s in m.samples
               if m.name == "fwbot_job_runs" and s.name.endswith("_total")}
    assert counted == {"lease_lost": 1.0}
    # a's own clock says its lease ran out: it does not even start the next run.
    _guarded(Job("sweep", lambda: runs.append("a again")), metrics, a)()
    assert runs == ["a"]


def test_the_guard_re_reads_the_lease_before_a_run(replicas):
    from bot.adapters.metrics import Metrics
    from bot.core.clock import FakeClock
    from bot.jobs.base import Job, _guarded

    a_store, b_store = replicas
    clock = FakeClock(T0)
    a = leadership(a_store, clock, "a")
    assert a.renew()
    # Another replica took the lease by a route a's clock cannot see (it was released, say).
    assert a_store.release(LEADER, "a", 1)
    assert b_store.acquire_or_renew(LEADER, "b", clock.now(), TTL) == 2
    runs: list[str] = []
    _guarded(Job("sync", lambda: runs.append("a")), Metrics(), a)()
    assert runs == [] and not a.is_leader


def test_a_dead_leaders_lease_is_taken_over_before_it_runs_out_on_postgresql(replicas):
    """PostgreSQL drops a dead process's session and its advisory lock with it: the replica that
    gets the lock takes a lease gone unrenewed for two rounds, long before it expires."""
    if engine() != "postgresql":
        pytest.skip("SQLite has no sessions to watch: its leases run out instead (the test above)")
    from bot.core.clock import FakeClock

    a_store, b_store = replicas
    clock = FakeClock(T0)
    a, b = leadership(a_store, clock, "a"), leadership(b_store, clock, "b")
    assert a.renew() and a.liveness.held and not b.renew()
    clock.advance(a.renew_every_s)
    assert a.renew() and not b.renew()  # alive and renewing: b cannot get the lock
    a.liveness._drop()  # the process dies: the server ends its session, and the lock goes with it
    clock.advance(a.renew_every_s)
    assert not b.renew()  # b holds the lock now, but the lease was renewed a round ago: not yet
    assert b.liveness.held
    clock.advance(a.renew_every_s * 1.5)  # two rounds and a half of silence, a fraction of the lease
    assert b.renew() and b.is_leader
    assert b.fence().token == 2  # type: ignore[union-attr]
    assert clock.now() < T0 + TTL + timedelta(seconds=a.renew_every_s)  # a's lease had not run out
    assert not a.renew()  # a, were it only paused, finds the lease taken: a follower, fenced off
    b.stop()


def test_a_paused_leader_keeps_its_session_and_its_lease_until_it_runs_out(replicas):
    if engine() != "postgresql":
        pytest.skip("the liveness lock is PostgreSQL's")
    from bot.core.clock import FakeClock

    a_store, b_store = replicas
    clock = FakeClock(T0)
    a, b = leadership(a_store, clock, "a"), leadership(b_store, clock, "b")
    assert a.renew() and not b.renew()
    clock.advance(10)  # a is paused: no renewal, but its session (and the lock) lives
    assert not b.renew() and not b.liveness.held
    clock.advance(6)  # the lease ran out
    assert b.renew() and b.fence().token == 2  # type: ignore[union-attr]
    assert not a.renew()
    a.stop()
    b.stop()


def test_several_replicas_racing_for_a_dead_leaders_lease_one_wins(path):
    if engine() != "postgresql":
        pytest.skip("the liveness lock is PostgreSQL's")
    from bot.core.clock import FakeClock

    clock = FakeClock(T0)
    stores = [Store(Database(path)) for _ in range(4)]
    keepers = [leadership(s, clock, f"r{i}") for i, s in enumerate(stores)]
    assert keepers[0].renew()
    keepers[0].liveness._drop()
    clock.advance(keepers[0].renew_every_s * 3)
    start, won = threading.Barrier(3), {}

    def race(i: int) -> None:
        start.wait()
        won[i] = keepers[i].renew()

    threads = [threading.Thread(target=race, args=(i,)) for i in (1, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(won.values()) == 1
    assert stores[0].lease(LEADER).token == 2  # type: ignore[union-attr]
    for k in keepers:
        k.liveness.release()
    for s in stores:
        s.db.close()
