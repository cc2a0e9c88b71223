"""Receipts of the Slack requests fwbot has taken in, so a re-delivered one runs once.

Slack re-sends an event it thinks was not answered in time (``X-Slack-Retry-Num``), and a
retrying proxy may re-send a slash command or a click; each copy is signed afresh, so the replay
guard (which remembers signatures) cannot tell them apart. What stays the same is the request's
own id: the event id, or the trigger id of a command or an interaction. The first copy claims
that key in ``request_receipts`` (migration 8); every later copy finds it taken.

The claim is one ``INSERT … ON CONFLICT DO NOTHING``, a statement of its own (autocommit, no
write transaction: it is atomic alone), under a lock, through a :class:`storage.db.Database` of
its own on the same database with a short timeout and a pool of two: the HTTP server runs each
connection on a new thread, and an ack must not wait out the main database's busy timeout behind
a sync's transaction. When the database cannot take the claim in time (busy, a disk error, the
server unreachable), the key is remembered in memory instead. Rows older than the retention (an
hour: Slack's last retry comes about five minutes after the first attempt) are pruned now and
then, off the request's thread.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import TextClause

from bot.core.clock import iso
from storage.db import Database, database_problem

log = logging.getLogger("fwbot")

RETENTION_S = 3600.0
PRUNE_EVERY_S = 600.0
# A claim waits this long for another writer (a sync's transaction) before it gives up on the
# database and falls back to memory: an ack must not wait out the database's 10 s busy timeout.
BUSY_TIMEOUT_MS = 1000

_CLAIM = text("INSERT INTO request_receipts (key, seen_at) VALUES (:key, :seen_at) ON CONFLICT (key) DO NOTHING")
_PRUNE = text("DELETE FROM request_receipts WHERE seen_at < :cutoff")


class ReceiptsClosed(RuntimeError):
    """A claim or a prune after :meth:`Receipts.close`."""


def _wall_clock() -> datetime:
    return datetime.now(UTC)


class Receipts:
    """``first_time(key)``: True once per key within the retention, durably (survives a restart)."""

    def __init__(self, db: Database, *, retention_s: float = RETENTION_S, prune_every_s: float = PRUNE_EVERY_S,
                 now: Callable[[], datetime] = _wall_clock) -> None:
        self.db = db
        self.retention_s = retention_s
        self.prune_every_s = prune_every_s
        self._now = now
        self._lock = threading.Lock()
        self._opening = threading.Lock()
        self._own: Database | None = None
        self._closed = False
        self._last_prune = float("-inf")
        self._pruning = False
        # Keys claimed while the database could not be written (busy past the timeout, a disk
        # error, the server unreachable): re-deliveries are still caught in this process, and the
        # database is tried again next time.
        self._memory: dict[str, float] = {}

    # -- connection ----------------------------------------------------------------------------
    def _database(self) -> Database:
        if self.db.path == ":memory:":  # one in-memory database: the caller's connection is the only one
            return self.db
        with self._opening:
            return self._own or self._open()

    def _open(self) -> Database:
        # One pool for every claim: a burst claims concurrently, as many at once as it has connections.
        own = Database(self.db.url, busy_timeout_ms=BUSY_TIMEOUT_MS, pool_size=8)
        if own.is_postgres:
            # PostgreSQL's counterpart of SQLite's busy timeout: a claim waiting on a lock
            # gives up after as long (LockNotAvailable, an OperationalError).
            @event.listens_for(own.engine, "connect")
            def _lock_timeout(dbapi_conn, _record) -> None:
                with dbapi_conn.cursor() as cur:
                    cur.execute(f"SET lock_timeout = {BUSY_TIMEOUT_MS}")
                dbapi_conn.commit()

        self._own = own
        return own

    def _execute(self, statement: TextClause, params: dict) -> int:
        """One statement, its own transaction (autocommit); the rows it changed."""
        if self._closed:
            raise ReceiptsClosed("receipts are closed")
        with self._database().connection() as conn:
            return conn.execute(statement, params).rowcount

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._own is not None:
                with contextlib.suppress(Exception):
                    self._own.close()
                self._own = None

    # -- claims --------------------------------------------------------------------------------
    def first_time(self, key: str) -> bool:
        """Claim ``key``: True if nobody had (this is the first delivery), False for a re-delivery.

        The claim is one ``INSERT … ON CONFLICT DO NOTHING``, atomic by itself, so it runs outside
        the lock: a burst of requests claims concurrently (on PostgreSQL each claim is a round
        trip; serialised, a burst of 50 queued behind one another before their acks)."""
        now = self._now()
        try:
            claimed = self._execute(_CLAIM, {"key": key, "seen_at": iso(now)}) == 1
            failure = None
        except (DBAPIError, ReceiptsClosed) as e:
            claimed, failure = False, e
        with self._lock:
            if failure is not None:
                log.warning("could not record the receipt of a Slack request in the database (%s); "
                            "remembering it in memory only", database_problem(failure, self.db.path) or failure)
                first = self._remember(key)
            else:
                first = claimed and key not in self._memory
            due = not self._pruning and time.monotonic() - self._last_prune >= self.prune_every_s
            if due:
                self._pruning = True
                self._last_prune = time.monotonic()
        if due:
            threading.Thread(target=self._prune_quietly, name="fwbot-receipts-prune", daemon=True).start()
        return first

    def _remember(self, key: str) -> bool:
        mono = time.monotonic()
        expired = [k for k, at in self._memory.items() if mono - at > self.retention_s]
        for k in expired:
            del self._memory[k]
        if key in self._memory:
            return False
        self._memory[key] = mono
        return True

    def prune(self) -> int:
        """Forget receipts older than the retention; returns how many went."""
        cutoff = iso(self._now() - timedelta(seconds=self.retention_s))
        with self._lock:
            return self._execute(_PRUNE, {"cutoff": cutoff})

    def _prune_quietly(self) -> None:
        try:
            gone = self.prune()
            if gone:
                log.debug("pruned %d request receipts older than %ss", gone, self.retention_s)
        except (DBAPIError, ReceiptsClosed) as e:
            log.warning("could not prune old request receipts: %s", e)
        finally:
            with self._lock:
                self._pruning = False
