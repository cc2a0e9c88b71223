"""The one SQLite file: connections, WAL, busy timeout, migrations, transactions."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

from storage.migrations import MIGRATIONS

BUSY_TIMEOUT_MS = 10_000


def iso(dt: datetime | None) -> str | None:
    """Times are stored as RFC3339 UTC text, which sorts correctly as text."""
    if dt is None:
        return None
    if dt.tzinfo is not UTC:
        dt = dt.astimezone(UTC)
    return dt.isoformat(timespec="microseconds")[:-6] + "Z"  # "+00:00" → "Z"


def parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    # Python 3.11 reads a trailing "Z" itself.
    return datetime.fromisoformat(text)


class Database:
    """One connection per thread to one SQLite file in WAL mode.

    Bolt listeners, the scheduler and the HTTP server run on different threads; SQLite
    connections must not be shared across threads, so each thread lazily opens its own.
    Writes go through :meth:`write`, which takes the write lock up front (``BEGIN IMMEDIATE``)
    so two writers never deadlock upgrading a read lock.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)

    # -- connections ---------------------------------------------------------------------------
    @property
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
            self._local.utils = sqlite_utils.Database(conn, execute_plugins=False)
            with self._all_lock:
                self._all.append(conn)
        return conn

    @property
    def utils(self) -> sqlite_utils.Database:
        """The sqlite-utils view of this thread's connection."""
        self.conn  # noqa: B018 - opens the connection if needed
        return self._local.utils

    def close(self) -> None:
        with self._all_lock:
            for conn in self._all:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._all.clear()
        self._local = threading.local()

    # -- queries -------------------------------------------------------------------------------
    def tuples(self) -> sqlite3.Cursor:
        """A cursor on this thread's connection whose rows are plain tuples: for reads of
        thousands of rows, where building a ``Row`` (or a dict) per row costs more than the row."""
        cursor = self.conn.cursor()
        cursor.row_factory = None
        return cursor

    def query(self, sql: str, params: tuple | dict = ()) -> list[dict]:
        return [dict(r) for r in self.conn.execute(sql, params).fetchall()]

    def one(self, sql: str, params: tuple | dict = ()) -> dict | None:
        row = self.conn.execute(sql, params).fetchone()
        return dict(row) if row is not None else None

    def scalar(self, sql: str, params: tuple | dict = ()):
        row = self.conn.execute(sql, params).fetchone()
        return row[0] if row is not None else None

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction; nested calls join the outer one."""
        conn = self.conn
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        else:
            conn.commit()

    def execute(self, sql: str, params: tuple | dict = ()) -> sqlite3.Cursor:
        """One write statement in its own transaction; returns the cursor (for ``rowcount``)."""
        with self.write() as conn:
            return conn.execute(sql, params)

    # -- migrations ----------------------------------------------------------------------------
    def migrate(self) -> list[int]:
        """Apply pending migrations; returns the numbers applied. Safe to call at every start."""
        applied: list[int] = []
        with self.write() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(number INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            done = {r[0] for r in conn.execute("SELECT number FROM schema_migrations")}
            for number, name, statements in MIGRATIONS:
                if number in done:
                    continue
                for sql in statements:
                    conn.execute(sql)
                conn.execute(
                    "INSERT INTO schema_migrations (number, name, applied_at) VALUES (?, ?, ?)",
                    (number, name, iso(datetime.now(UTC))),
                )
                applied.append(number)
        return applied

    def journal_mode(self) -> str:
        return str(self.scalar("PRAGMA journal_mode"))
