"""Whether the leader's process is alive, as PostgreSQL sees it: a session-level advisory lock.

The leader lease (:mod:`storage.leases`) says who leads until when; it cannot tell a leader that
died from one that is slow, so it must outlast a slow one (three renewals) and a dead one is
replaced only when it runs out. On PostgreSQL the leader also holds a session-level advisory lock
on a connection of its own (:class:`LivenessLock`). The server releases that lock the moment the
session ends: the process was killed, its machine went away, its connection broke. A replica that
then gets the lock knows no live leader holds it, and takes the lease over once the lease has also
gone unrenewed for longer than a leader ever waits between renewals
(:meth:`storage.leases.LeasesRepo.take_over_silent`),
instead of waiting for it to expire. A leader that is merely paused keeps its session, so keeps
the lock, and is replaced only when its lease runs out, as on SQLite; whatever it began under its
old token is fenced off either way.

SQLite has no sessions to watch (its replicas share one machine): there the lease's expiry alone
decides, and :meth:`LivenessLock.try_hold` always says no.
"""

from __future__ import annotations

import contextlib
import logging
import zlib

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from storage.db import Database

log = logging.getLogger("fwbot.leadership")


def lock_key(name: str) -> int:
    """The advisory lock's key for the lease ``name`` (a stable 32-bit number)."""
    return zlib.crc32(f"fwbot lease {name}".encode())


class LivenessLock:
    """A session-level advisory lock held on a connection of this replica's own."""

    def __init__(self, db: Database, name: str) -> None:
        self.db = db
        self.key = lock_key(name)
        self._conn: Connection | None = None

    @property
    def supported(self) -> bool:
        return self.db.is_postgres

    @property
    def held(self) -> bool:
        return self._conn is not None

    def try_hold(self) -> bool:
        """Hold the lock (keep it if held and the session is alive); False if another session has
        it, or on SQLite. Never waits."""
        if not self.supported:
            return False
        if self._conn is not None:
            try:
                self._conn.exec_driver_sql("SELECT 1")
                return True
            except DBAPIError:  # the session is gone, and the lock with it
                log.warning("the connection holding the leader's liveness lock broke")
                self._drop()
        try:
            conn = self.db.engine.connect()
        except DBAPIError:
            return False
        try:
            got = bool(conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({int(self.key)})").scalar())
        except DBAPIError:
            got = False
        if got:
            self._conn = conn
        else:
            with contextlib.suppress(DBAPIError):
                conn.close()
        return got

    def release(self) -> None:
        if self._conn is None:
            return
        with contextlib.suppress(DBAPIError):
            self._conn.exec_driver_sql(f"SELECT pg_advisory_unlock({int(self.key)})")
        self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.invalidate()  # never back to the pool: its session may still hold the lock
                conn.close()

