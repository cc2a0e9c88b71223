"""What the listeners and scheduled jobs share: settings, store, gateway, clock, Slack poster."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bot.adapters.fireworks import FireworksGateway
from bot.adapters.slack import Poster
from bot.core.clock import Clock
from bot.core.settings import Settings
from bot.services.ack_gate import ACK_FIRST_HARD_MAX_S, ACK_FIRST_MAX_S, AckGate
from storage.db import database_problem
from storage.leases import new_replica_id
from storage.store import Store

CATALOG_TTL_S = 600.0
log = logging.getLogger("fwbot")


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
    _shared: dict = field(default_factory=dict)
    _shared_lock: threading.RLock = field(default_factory=threading.RLock)

    def shared(self, kind: Callable[[Services], Any]) -> Any:
        """The one ``kind(self)`` every caller of these services shares (built on first use; a
        lifecycle engine, the approver directory, the user-group cache)."""
        with self._shared_lock:  # reentrant: building one may ask for another
            if kind not in self._shared:
                self._shared[kind] = kind(self)
            return self._shared[kind]

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
