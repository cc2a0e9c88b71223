"""The database fwbot keeps what it must not forget in: SQLite (one file, the default, nothing to
set up) or PostgreSQL (several replicas), through one code path on SQLAlchemy Core.

``FWBOT_DATABASE_URL`` names it (``sqlite:///fwbot.db``, ``postgresql://user:pw@host/db``); a
bare path is a SQLite file. Every query is SQL both engines run, with named parameters
(``:name``); where the engines' SQL differs, the difference is a SQLAlchemy construct compiled
per dialect (:mod:`storage.sql`), never a rewrite of the text.

Transactions (:meth:`Database.write`) are serialised on both engines, so a transaction that reads
and then writes sees no other writer in between, as the compare-and-sets of the store assume:
SQLite takes its write lock up front (``BEGIN IMMEDIATE``, so two writers never deadlock
upgrading a read lock), PostgreSQL takes one transaction-level advisory lock
(``pg_advisory_xact_lock``), held by the server until the commit and released if the client
dies. The compare-and-sets themselves are single statements (``INSERT … ON CONFLICT``,
conditional ``UPDATE``, ``RETURNING``) that would be atomic without it. Reads outside a write
run in autocommit. fwbot's writes are small and few (a click, a sync page), so one writer at a
time costs nothing a user sees (``bench/``: the sweep and the ack on both engines).

Connections come from SQLAlchemy's pool for each call (the HTTP server runs each connection on a
new thread, so a connection per thread would be one per Slack request).

Migrations are Alembic's (:mod:`storage.alembic`), applied at every start and by
``fwbot db upgrade``; a SQLite file made before them is brought up to date by its own numbered
scripts first (:mod:`storage.migrations`) and then stamped.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Connection, CursorResult, Engine, Row, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.sql.base import Executable

from storage.problems import (
    BUSY_TIMEOUT_MS,
    DatabaseProblem,
    database_problem,
    file_problem,
)

__all__ = ["BUSY_TIMEOUT_MS", "Database", "DatabaseProblem", "database_problem", "database_url", "file_problem"]

# Alembic narrates every plugin and step at INFO as it is imported and run; fwbot says itself which
# revisions it applied. Set before storage.migrate imports it.
logging.getLogger("alembic").setLevel(logging.WARNING)

# The advisory lock every PostgreSQL write transaction takes (any constant; 'fwbt' in ASCII).
WRITE_LOCK = 0x66776274
Params = Mapping[str, Any] | None


def database_url(value: str | Path) -> URL:
    """``FWBOT_DATABASE_URL`` (or a bare SQLite path, as ``FWBOT_DB`` gives) as a SQLAlchemy URL.

    ``postgresql://`` and ``postgres://`` use the psycopg (3) driver; ``sqlite://`` the
    standard library's. Anything else is refused with a sentence naming what is accepted."""
    raw = str(value).strip()
    if raw == ":memory:" or "://" not in raw:
        return URL.create("sqlite", database=raw or "fwbot.db")
    try:
        url = make_url(raw)
    except ArgumentError as e:
        raise ValueError(f"{raw!r} is not a database URL (sqlite:///path/fwbot.db or "
                         "postgresql://user:password@host:5432/dbname)") from e
    backend = url.get_backend_name()
    if backend in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        return url.set(drivername="sqlite")
    raise ValueError(f"fwbot stores its data in SQLite or PostgreSQL, not {backend!r} "
                     "(sqlite:///path/fwbot.db or postgresql://user:password@host:5432/dbname)")


@functools.lru_cache(maxsize=2048)
def _text(sql: str):
    return text(sql)


class Database:
    """One database, SQLite or PostgreSQL: reads, write transactions, migrations.

    A database fwbot cannot use raises :class:`DatabaseProblem` from here (a SQLite file's
    directory) or from :meth:`migrate` (which every start runs and which writes); later, a driver
    error about the file, its disk or the server carries the database's name
    (``fwbot_db_path``) for :func:`database_problem`.
    """

    def __init__(self, url: str | Path | URL, *, busy_timeout_ms: int | None = None, pool_size: int = 10) -> None:
        self.url = url if isinstance(url, URL) else database_url(url)
        self.dialect = "postgresql" if self.url.get_backend_name() == "postgresql" else "sqlite"
        self.busy_timeout_ms = BUSY_TIMEOUT_MS if busy_timeout_ms is None else busy_timeout_ms
        self._local = threading.local()
        if self.dialect == "sqlite":
            self.path = self.url.database or ":memory:"
            self.engine = self._sqlite_engine(pool_size)
        else:
            self.path = self.url.render_as_string(hide_password=True)  # the name errors give
            self.engine = create_engine(
                self.url, isolation_level="AUTOCOMMIT", pool_size=pool_size, max_overflow=20,
                pool_pre_ping=True,
                # JIT compiling pays off for long analytic queries, not for fwbot's short ones: on
                # a table without statistics yet it took 89 of a 150 ms read (bench/README.md).
                connect_args={"connect_timeout": max(1, self.busy_timeout_ms // 1000), "options": "-c jit=off"})

    def _sqlite_engine(self, pool_size: int) -> Engine:
        if self.path != ":memory:":
            try:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise file_problem(self.path, e) from e
            pool: dict[str, Any] = {"pool_size": pool_size, "max_overflow": 40}
        else:  # one connection holds the whole in-memory database
            from sqlalchemy.pool import StaticPool

            pool = {"poolclass": StaticPool}
        engine = create_engine(
            self.url, isolation_level="AUTOCOMMIT", **pool,
            connect_args={"timeout": self.busy_timeout_ms / 1000, "check_same_thread": False})
        busy = self.busy_timeout_ms

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:
            cur = dbapi_conn.cursor()
            try:
                cur.execute(f"PRAGMA busy_timeout={busy}")
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA foreign_keys=ON")
            finally:
                cur.close()

        return engine

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    def _note(self, e: BaseException) -> None:
        """Name this database on a driver error, for the error path (:func:`database_problem`)."""
        for err in (e, getattr(e, "orig", None)):
            if isinstance(err, BaseException) and not hasattr(err, "fwbot_db_path"):
                with contextlib.suppress(AttributeError):
                    err.fwbot_db_path = self.path  # type: ignore[attr-defined]
                    err.fwbot_busy_timeout_ms = self.busy_timeout_ms  # type: ignore[attr-defined]

    def close(self) -> None:
        self.engine.dispose()

    # -- connections ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def connection(self) -> Iterator[Connection]:
        """The connection of this thread's transaction (:meth:`write`, :meth:`snapshot`), else one
        from the pool in autocommit for the duration of the block."""
        held = getattr(self._local, "conn", None)
        if held is not None:
            yield held
            return
        try:
            with self.engine.connect() as conn:
                yield conn
        except Exception as e:
            self._note(e)
            raise

    @property
    def in_transaction(self) -> bool:
        return getattr(self._local, "conn", None) is not None

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction, serialised with every other (see the module's note); nested calls
        join the outer one. Rolled back if the block raises."""
        held = getattr(self._local, "conn", None)
        if held is not None:
            if getattr(self._local, "read_only", False):
                raise RuntimeError("a write inside a read snapshot")
            yield held
            return
        with self._transaction("BEGIN IMMEDIATE" if self.dialect == "sqlite" else "BEGIN",
                               lock=self.is_postgres) as conn:
            yield conn

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """A read-only transaction: every read on this thread inside it sees one state of the data.
        Inside a write it is that write's transaction."""
        if getattr(self._local, "conn", None) is not None:
            yield self._local.conn
            return
        begin = "BEGIN" if self.dialect == "sqlite" else "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
        self._local.read_only = True
        try:
            with self._transaction(begin, lock=False) as conn:
                yield conn
        finally:
            self._local.read_only = False

    @contextlib.contextmanager
    def _transaction(self, begin: str, *, lock: bool) -> Iterator[Connection]:
        # The engine's connections are in autocommit; a transaction is begun and ended here, in
        # SQL, so its kind (IMMEDIATE, REPEATABLE READ) is ours to choose.
        try:
            conn_cm = self.engine.connect()
            conn = conn_cm.__enter__()
        except Exception as e:
            self._note(e)
            raise
        try:
            try:
                conn.exec_driver_sql(begin)
                if lock:
                    conn.execute(_text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITE_LOCK})
            except Exception as e:
                self._note(e)
                raise
            self._local.conn = conn
            try:
                yield conn
            except BaseException as e:
                self._note(e)
                with contextlib.suppress(Exception):  # the first error is the one worth telling
                    conn.exec_driver_sql("ROLLBACK")
                raise
            else:
                try:
                    conn.exec_driver_sql("COMMIT")
                except Exception as e:
                    self._note(e)
                    with contextlib.suppress(Exception):
                        conn.exec_driver_sql("ROLLBACK")
                    raise
            finally:
                self._local.conn = None
        finally:
            conn_cm.__exit__(None, None, None)

    # -- queries -------------------------------------------------------------------------------
    def _run(self, conn: Connection, sql: str | Executable, params: Params | list[Mapping[str, Any]]) -> CursorResult:
        statement = _text(sql) if isinstance(sql, str) else sql
        if isinstance(params, tuple):
            raise TypeError("fwbot's SQL takes named parameters (:name) and a dict, not a tuple")
        try:
            if isinstance(params, list):
                return conn.execute(statement, params)
            return conn.execute(statement, dict(params) if params else {})
        except Exception as e:
            self._note(e)
            raise

    def query(self, sql: str | Executable, params: Params = None) -> list[dict]:
        """Every row, each as a dict."""
        with self.connection() as conn:
            return [dict(r) for r in self._run(conn, sql, params).mappings()]

    def rows(self, sql: str | Executable, params: Params = None) -> list[Row]:
        """Every row as a tuple-like ``Row``: for reads of thousands of rows, where a dict per row
        costs more than the row."""
        with self.connection() as conn:
            return list(self._run(conn, sql, params))

    def one(self, sql: str | Executable, params: Params = None) -> dict | None:
        with self.connection() as conn:
            row = self._run(conn, sql, params).mappings().first()
        return dict(row) if row is not None else None

    def scalar(self, sql: str | Executable, params: Params = None):
        with self.connection() as conn:
            return self._run(conn, sql, params).scalar()

    def execute(self, sql: str | Executable, params: Params = None) -> CursorResult:
        """One write statement in a write transaction (the thread's, else its own). Returns the
        result for its ``rowcount``; a statement with ``RETURNING`` is read with :meth:`one`
        inside ``with db.write():``."""
        with self.write() as conn:
            return self._run(conn, sql, params)

    def executemany(self, sql: str | Executable, rows: Iterable[Mapping[str, Any]]) -> None:
        """One statement for each parameter set, in one write transaction."""
        batch = [dict(r) for r in rows]
        if not batch:
            return
        with self.write() as conn:
            self._run(conn, sql, batch)

    # -- migrations ----------------------------------------------------------------------------
    def migrate(self) -> list[str]:
        """Bring the schema up to date (Alembic); returns the revisions applied. Safe to call at
        every start, and from several replicas at once (it runs in one write transaction).

        It always writes, so a database fwbot could read but not write (a read-only file, a
        SQLite file locked by another process, a full disk, a standby server) is found here, at
        start, as a :class:`DatabaseProblem`."""
        from storage.migrate import upgrade

        try:
            return upgrade(self)
        except Exception as e:
            self._note(e)
            problem = database_problem(e, self.path)
            if problem is None:
                raise
            raise problem from e

    def journal_mode(self) -> str:
        return str(self.scalar("PRAGMA journal_mode")) if self.dialect == "sqlite" else "postgresql"
