"""What the listeners and scheduled jobs share: settings, store, gateway, clock, Slack poster."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bot.adapters.fireworks import FireworksGateway
from bot.adapters.slack import Poster
from bot.core.clock import Clock
from bot.core.settings import Settings
from storage.db import database_problem
from storage.leases import new_replica_id
from storage.store import Store

CATALOG_TTL_S = 600.0
log = logging.getLogger("fwbot")


# Work after an ack waits at most this long for the requests being acknowledged to be answered;
# after that it goes on one piece at a time until they are, and after the second limit anyway.
ACK_FIRST_MAX_S = 1.0
ACK_FIRST_HARD_MAX_S = 3.0


class AckGate:
    """Slack requests being answered right now, so work after an ack can let them go first.

    Slack drops a request not acknowledged within 3 seconds; the reply a person waits for after
    an ack can come a moment later. Python runs one thread at a time, so during a burst the work
    of earlier requests would otherwise take turns with the acks of later ones. Work starts once
    no request has been answered for ``quiet_s`` (a burst has gaps between its requests, shorter
    than that). Work that has waited its time limit starts anyway, but only one such piece at a
    time runs while requests keep coming: the replies trickle out and the acks stay on time.
    Past a second, hard limit a piece starts whatever runs, so no reply waits longer than that.
    """

    def __init__(self, quiet_s: float = 0.025) -> None:
        self.quiet_s = quiet_s
        self._cond = threading.Condition()
        self._acking = 0
        self._last_ack = float("-inf")
        self._overdue_running = False
        # One waiter watches the clock; the others queue on this lock, asleep, instead of all
        # waking at every ack of a burst to compete for the interpreter with the acks.
        self._watcher = threading.Lock()

    @contextlib.contextmanager
    def acking(self) -> Iterator[None]:
        with self._cond:
            self._acking += 1
        try:
            yield
        finally:
            with self._cond:
                self._acking -= 1
                self._last_ack = time.monotonic()
                if not self._acking:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def admitted(self, timeout_s: float, hard_timeout_s: float | None = None) -> Iterator[str]:
        """Hold a piece of work until it may run. Yields how it was let in: ``"quiet"``,
        ``"overdue"`` (the one overdue piece running while requests come) or ``"forced"`` (past
        ``hard_timeout_s``, 3 × ``timeout_s`` unless given)."""
        start = time.monotonic()
        hard = start + (hard_timeout_s if hard_timeout_s is not None else 3 * timeout_s)
        how = self._admit(start + timeout_s, hard)
        try:
            yield how
        finally:
            if how == "overdue":
                with self._cond:
                    self._overdue_running = False
                    self._cond.notify_all()

    def _admit(self, deadline: float, hard: float) -> str:
        if not self._watcher.acquire(timeout=max(0.0, hard - time.monotonic())):
            return "forced"
        try:
            with self._cond:
                while True:
                    now = time.monotonic()
                    quiet_left = 0.0 if self._acking else self.quiet_s - (now - self._last_ack)
                    if not self._acking and quiet_left <= 0:
                        return "quiet"
                    if now >= hard:
                        return "forced"
                    if now >= deadline and not self._overdue_running:
                        self._overdue_running = True
                        return "overdue"
                    # Until quiet, the deadline or (past it) the overdue piece's end, and the hard limit.
                    wake = hard if now >= deadline else deadline
                    self._cond.wait(min(wake - now, quiet_left) if not self._acking else wake - now)
        finally:
            self._watcher.release()


@dataclass
class Services:
    settings: Settings
    store: Store
    gateway: FireworksGateway
    clock: Clock
    poster: Poster
    simulated: bool
    # Work that follows an ack runs here, not on Bolt's listener threads, so a burst of slow
    # requests (Fireworks calls, paced posts) never delays the next request's ack.
    work: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=16, thread_name_prefix="fwbot-work"))
    acks: AckGate = field(default_factory=lambda: AckGate())
    # Every message fwbot starts on its own goes through it (bot/adapters/outbox.py); set by create_bot.
    outbox: Any = None
    # This process among the replicas sharing the database (a lease holder's name).
    replica: str = field(default_factory=new_replica_id)
    # Whether this replica leads (bot/jobs/leadership.py); set when its scheduler starts.
    leadership: Any = None
    _catalog: list[dict] = field(default_factory=list)
    _catalog_at: float = 0.0
    _catalog_lock: threading.Lock = field(default_factory=threading.Lock)
    _work_pending: int = 0
    _work_done: threading.Condition = field(default_factory=threading.Condition)

    def after_ack(self, fn: Callable[..., Any], *args: Any, on_error: Callable[[BaseException], Any] | None = None,
                  wait_for_acks: bool = True) -> None:
        """Run ``fn(*args)`` on the work pool; a failure is logged and handed to ``on_error``.

        It waits for the requests being answered (:class:`AckGate`) unless ``wait_for_acks`` is
        false: work bound to a ``trigger_id``, which Slack honours for 3 seconds only."""

        def run() -> None:
            try:
                with self.acks.admitted(ACK_FIRST_MAX_S, ACK_FIRST_HARD_MAX_S) if wait_for_acks \
                        else contextlib.nullcontext():
                    fn(*args)
            except Exception as e:  # noqa: BLE001 - the user is told through on_error
                problem = database_problem(e, self.store.db.path)
                if problem is None:
                    log.exception("work after an ack failed")
                elif on_error is None:
                    log.error("work after an ack failed: %s", problem.message)
                if on_error is not None:
                    try:
                        on_error(e)
                    except Exception:  # noqa: BLE001 - the error path must not raise
                        log.exception("could not report a failure")
            finally:
                with self._work_done:
                    self._work_pending -= 1
                    self._work_done.notify_all()

        with self._work_done:
            self._work_pending += 1
        self.work.submit(run)

    def wait_work_done(self, timeout_s: float) -> bool:
        """Wait until every piece of work after an ack has finished; False on timeout."""
        with self._work_done:
            return self._work_done.wait_for(lambda: not self._work_pending, timeout_s)

    @property
    def prices(self) -> dict[str, float]:
        return self.settings.price_table

    def is_admin(self, user_id: str) -> bool:
        return user_id in self.settings.admins

    def catalog(self) -> list[dict]:
        """Deployable base models (cached; the catalog changes rarely)."""
        with self._catalog_lock:
            if not self._catalog or time.monotonic() - self._catalog_at > CATALOG_TTL_S:
                self._catalog = self.gateway.list_models("fireworks")
                self._catalog_at = time.monotonic()
            return list(self._catalog)

    def find_model(self, name: str) -> dict | None:
        for m in self.catalog():
            if m.get("name") == name:
                return m
        if not name.startswith("accounts/fireworks/"):
            try:
                return self.gateway.get_model(name)
            except Exception:  # noqa: BLE001 - unknown model answers None
                return None
        return None
