"""Which replica runs the scheduled work: the leader lease, kept by one thread in each replica.

fwbot may run as several replicas on one database. Every replica serves Slack; exactly one, the
holder of the ``scheduler`` lease (storage/leases.py), runs the scheduled jobs — sync, metrics
scrape, lifecycle sweep, approvals sweep, cost summaries, budget checks — and the outbox's
deliveries of due and retried posts. Each replica's :class:`Leadership` renews its presence and
takes or renews the lease every ``ttl / 9`` (a "round"); the lease lasts ``ttl``
(``FWBOT_LEADER_LEASE``, default ``max(3 × FWBOT_SYNC_INTERVAL, 15s)``), so one that is merely
slow keeps it through several missed renewals.

How fast a dead leader is replaced depends on the engine. On PostgreSQL the leader also holds a
liveness lock (storage/liveness.py), which the server drops with its session when its process
dies: the first replica to get it takes the lease over once it has gone unrenewed for two rounds,
so within ``ttl / 3`` of the last renewal — one sync interval by default. On SQLite (one machine)
it is replaced when the lease runs out, within ``ttl`` and a round. A paused leader keeps its
session, and is replaced when its lease runs out on either engine.

A job runs only under a :class:`~storage.leases.Fence` (the lease's fencing token): the guard
(bot/jobs/base.py) asks :meth:`Leadership.fence` and re-reads the lease in the database right
before the run, and the run's decisive writes (a warning claimed, an action started, a post about
to go to Slack, a page of the sync mirrored) check that token inside their transactions. A
leader paused past its lease (a stopped VM, a long GC) that wakes up finds its token taken over
and stops at its next such write; its keeper then finds the lease held and it becomes a follower.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.core.clock import Clock
from storage.db import database_problem
from storage.leases import LEADER, Fence, presence_name
from storage.liveness import LivenessLock
from storage.store import Store

log = logging.getLogger("fwbot.leadership")

# The leader drops the presence rows of replicas gone longer than this, once in a while.
FORGET_ABSENT_AFTER = timedelta(days=1)
FORGET_EVERY_S = 3600.0


class Leadership:
    """This replica's part in the election: its presence, whether it leads, and the token it leads under."""

    def __init__(self, store: Store, clock: Clock, *, replica: str, ttl_s: float, metrics=None) -> None:
        self.store = store
        self.clock = clock
        self.replica = replica
        self.ttl = timedelta(seconds=ttl_s)
        self.metrics = metrics
        self._token: int | None = None
        self._valid_until: datetime | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._on_gain: list[Callable[[], None]] = []
        self._forgot_at = float("-inf")
        self.liveness = LivenessLock(store.db, LEADER)
        if metrics is not None:
            metrics.leader.set_function(lambda: 1.0 if self.is_leader else 0.0)

    @property
    def renew_every_s(self) -> float:
        """One round: how often this replica renews its presence and takes or renews the lease."""
        return self.ttl.total_seconds() / 9

    @property
    def silence(self) -> timedelta:
        """How long a lease may go unrenewed before a replica holding the liveness lock takes it
        over: two rounds, longer than a live leader ever waits between two renewals."""
        return self.ttl * 2 / 9

    # -- what this replica is -------------------------------------------------------------------
    @property
    def is_leader(self) -> bool:
        """Whether this replica holds the lease, as far as it knows: its last renewal succeeded and
        the lease it got has not run out on this replica's clock since."""
        with self._lock:
            return self._token is not None and self._valid_until is not None and self.clock.now() < self._valid_until

    def fence(self) -> Fence | None:
        """The fence to run scheduled work under while this replica leads, else ``None``."""
        with self._lock:
            token, until = self._token, self._valid_until
        if token is None or until is None or self.clock.now() >= until:
            return None
        return Fence(LEADER, token, self.clock)

    def confirm(self, fence: Fence) -> bool:
        """Re-read the lease: still held under ``fence``'s token? If not, this replica stops
        leading now rather than at its next renewal."""
        if self.store.check_fence(fence.name, fence.token, self.clock.now()):
            return True
        self._follow(fence.token, "the lease was taken over")
        return False

    def on_gain(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (on the keeper's thread) whenever this replica becomes the leader."""
        self._on_gain.append(callback)

    def status(self) -> dict:
        """What /healthz says: this replica's role and id, and the holder the database shows."""
        lease = self.store.holder_of(LEADER, self.clock.now())
        return {"role": "leader" if self.is_leader else "follower", "replica": self.replica,
                "leader": lease.holder if lease else None, "lease_token": lease.token if lease else None}

    # -- keeping it -----------------------------------------------------------------------------
    def renew(self) -> bool:
        """One round: renew this replica's presence, then take or renew the lease. True while leading."""
        now = self.clock.now()
        self.store.acquire_or_renew(presence_name(self.replica), self.replica, now, self.ttl)
        alive = self.liveness.try_hold()  # PostgreSQL: no live leader's session holds it
        token = self.store.acquire_or_renew(LEADER, self.replica, now, self.ttl)
        if token is None and alive:
            token = self._take_over_from_the_dead(now)
        with self._lock:
            before = self._token
            self._token = token
            self._valid_until = now + self.ttl if token is not None else None
        if token is None:
            if before is not None:
                log.warning("replica %s lost the leader lease (token %d) to another replica; following", self.replica,
                            before)
            return False
        if token != before:
            log.info("replica %s leads now (leader lease token %d, for %ss)", self.replica, token,
                     f"{self.ttl.total_seconds():g}")
            if self.metrics is not None:
                self.metrics.lease_takeovers.inc()
            for callback in self._on_gain:
                try:
                    callback()
                except Exception:  # noqa: BLE001 - one hook must not stop the others or the keeper
                    log.exception("after taking the leader lease")
        if time.monotonic() - self._forgot_at > FORGET_EVERY_S:
            self._forgot_at = time.monotonic()
            self.store.forget_absent_replicas(now - FORGET_ABSENT_AFTER)
        return True

    def _take_over_from_the_dead(self, now: datetime) -> int | None:
        """This replica holds the liveness lock, so the lease's holder has no live session (or never
        took the lock): take the lease over if it has also gone silent."""
        lease = self.store.lease(LEADER)
        if lease is None or lease.holder == self.replica or lease.renewed_at > now - self.silence:
            return None
        token = self.store.take_over_silent(LEADER, self.replica, token=lease.token,
                                            silent_since=now - self.silence, now=now, ttl=self.ttl)
        if token is not None:
            log.warning("replica %s took the leader lease over from %s, whose session ended and who has not "
                        "renewed it for %.1fs", self.replica, lease.holder, (now - lease.renewed_at).total_seconds())
        return token

    def _follow(self, token: int, why: str) -> None:
        with self._lock:
            if self._token != token:
                return
            self._token = self._valid_until = None
        log.warning("replica %s stopped leading (token %d): %s", self.replica, token, why)

    def start(self) -> None:
        """The first round now (so a lone replica leads from its first moment), then every ttl/3."""
        self._renew_logged()
        self._stop.clear()
        self._thread = threading.Thread(target=self._keep, name="fwbot-lease", daemon=True)
        self._thread.start()

    def _renew_logged(self) -> None:
        try:
            self.renew()
        except Exception as e:  # noqa: BLE001 - the database may be busy; the lease runs out by itself
            problem = database_problem(e)
            log.error("could not renew the leader lease: %s", problem.message if problem else repr(e))

    def _keep(self) -> None:
        while not self._stop.wait(self.renew_every_s):
            self._renew_logged()

    def stop(self) -> None:
        """Stop renewing and give the lease (and this replica's presence) up, so another replica
        takes over at once instead of after the lease runs out."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with self._lock:
            token, self._token, self._valid_until = self._token, None, None
        try:
            if token is not None:
                self.store.release(LEADER, self.replica, token)
                log.info("replica %s gave up the leader lease (token %d)", self.replica, token)
            presence = self.store.lease(presence_name(self.replica))
            if presence is not None and presence.holder == self.replica:
                self.store.release(presence.name, self.replica, presence.token)
        except Exception:  # noqa: BLE001 - stopping anyway; the lease runs out by itself
            log.exception("could not give up the leader lease")
        self.liveness.release()
