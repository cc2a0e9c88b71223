"""Receipts of the Slack requests fwbot has taken in, so a re-delivered one runs once.

Slack re-sends an event it thinks was not answered in time (``X-Slack-Retry-Num``), and a
retrying proxy may re-send a slash command or a click; each copy is signed afresh, so the replay
guard (which remembers signatures) cannot tell them apart. What stays the same is the request's
own id: the event id, or the trigger id of a command or an interaction. The first copy claims
that key in ``request_receipts`` (migration 8); every later copy finds it taken.

The claim is one ``INSERT … ON CONFLICT DO NOTHING`` on a connection of its own, under a lock:
the HTTP server runs each connection on a new thread, and :class:`storage.db.Database` opens a
connection per thread, which would be one more open file per Slack connection. Rows older than
the retention (an hour: Slack's last retry comes about five minutes after the first attempt)
are pruned now and then, off the request's thread.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from bot.core.clock import iso
from storage.db import Database, database_problem

log = logging.getLogger("fwbot")

RETENTION_S = 3600.0
PRUNE_EVERY_S = 600.0
# A claim waits this long for another writer (a sync's transaction) before it gives up on the
# file and falls back to memory: an ack must not wait out the database's 10 s busy timeout.
BUSY_TIMEOUT_MS = 1000


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
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._last_prune = float("-inf")
        self._pruning = False
        # Keys claimed while the file could not be written (busy past the timeout, disk error):
        # re-deliveries are still caught in this process, and the file is tried again next time.
        self._memory: dict[str, float] = {}

    # -- connection ----------------------------------------------------------------------------
    def _execute(self, sql: str, params: tuple) -> sqlite3.Cursor:
        """One statement in its own transaction (the caller holds the lock)."""
        if self._closed:
            raise sqlite3.ProgrammingError("receipts are closed")
        if self.db.path == ":memory:":  # one in-memory database: the caller's connection is the only one
            return self.db.execute(sql, params)
        if self._conn is None:
            conn = sqlite3.connect(self.db.path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False,
                                   isolation_level=None)  # autocommit: each statement its own transaction
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._conn = conn
        return self._conn.execute(sql, params)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
                self._conn = None

    # -- claims --------------------------------------------------------------------------------
    def first_time(self, key: str) -> bool:
        """Claim ``key``: True if nobody had (this is the first delivery), False for a re-delivery."""
        now = self._now()
        with self._lock:
            try:
                cursor = self._execute(
                    "INSERT INTO request_receipts (key, seen_at) VALUES (?, ?) ON CONFLICT(key) DO NOTHING",
                    (key, iso(now)))
                first = cursor.rowcount == 1 and key not in self._memory
            except sqlite3.Error as e:
                log.warning("could not record the receipt of a Slack request in SQLite (%s); "
                            "remembering it in memory only", database_problem(e, self.db.path) or e)
                first = self._remember(key)
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
            return self._execute("DELETE FROM request_receipts WHERE seen_at < ?", (cutoff,)).rowcount

    def _prune_quietly(self) -> None:
        try:
            gone = self.prune()
            if gone:
                log.debug("pruned %d request receipts older than %ss", gone, self.retention_s)
        except sqlite3.Error as e:
            log.warning("could not prune old request receipts: %s", e)
        finally:
            with self._lock:
                self._pruning = False
