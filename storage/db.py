"""The one SQLite file: connections, WAL, busy timeout, migrations, transactions."""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from bot.core.clock import iso
from storage.migrations import MIGRATIONS

BUSY_TIMEOUT_MS = 10_000


# SQLite's primary result codes (sqlite3.h) that say something is wrong with the file or its disk,
# not with fwbot's SQL: https://www.sqlite.org/rescode.html
_PERM, _BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 3, 5, 6, 8, 10, 11, 13, 14, 26
_READONLY_DBMOVED = _READONLY | (4 << 8)


class DatabaseProblem(Exception):
    """fwbot cannot use its SQLite file: the file, its directory or its disk is the trouble, not
    fwbot's data or code. ``message`` is written for a person and names the file; ``problem`` is
    the part after the file name."""

    def __init__(self, path: str, problem: str, detail: str | None = None) -> None:
        self.path = path
        self.problem = problem
        self.detail = detail  # SQLite's or the OS's own words, for whoever reads the log
        self.message = f"cannot use the database {path}: {problem}" + (f" ({detail})" if detail else "")
        super().__init__(self.message)


def database_problem(exc: BaseException | None, path: str | None = None) -> DatabaseProblem | None:
    """What is wrong with the database file, if ``exc`` (or what caused it) is a trouble with the
    file or its disk; ``None`` for anything else (including an SQL error of fwbot's own).

    The one place that turns SQLite's errors into a sentence naming the file (:func:`file_problem`
    does the OS's). The file is the one :class:`Database` noted on the exception, else ``path``.
    """
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, DatabaseProblem):
            return exc
        where = getattr(exc, "fwbot_db_path", None) or path
        if isinstance(exc, sqlite3.Error):
            busy_ms = getattr(exc, "fwbot_busy_timeout_ms", BUSY_TIMEOUT_MS)
            problem = _sqlite_problem(exc, where, busy_ms)
            if problem is not None:
                return DatabaseProblem(where or "(fwbot's database file)", problem, str(exc))
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def file_problem(path: str | Path, exc: OSError) -> DatabaseProblem:
    """An OS error met while preparing the database file (its directory, a lock file beside it)."""
    problem = _os_problem(exc)
    where = str(exc.filename) if exc.filename is not None else None
    named = where is None or where == str(path) or problem.endswith(" is not a directory")
    return DatabaseProblem(str(path), problem, None if named else f"{exc.strerror or exc.__class__.__name__}: {where}")


def _sqlite_problem(e: sqlite3.Error, path: str | None, busy_ms: int) -> str | None:
    """A person's words for an SQLite error that is about the file or its disk; ``None`` else."""
    code = getattr(e, "sqlite_errorcode", None)  # Python 3.11+
    primary = code & 0xFF if isinstance(code, int) else None
    text = str(e).lower()
    if primary in (_BUSY, _LOCKED) or "database is locked" in text or "database table is locked" in text:
        return f"another process held it locked for longer than fwbot waits ({busy_ms / 1000:g} s)"
    if primary == _FULL or "database or disk is full" in text:
        return "the disk is full"
    if code == _READONLY_DBMOVED:
        return "the file was moved or deleted while fwbot had it open; restart fwbot"
    if primary == _READONLY or "readonly database" in text:
        return _disk_trouble(path, full=False) or "it is read-only: the file or its directory does not let fwbot write"
    if primary == _NOTADB or "file is not a database" in text:
        return "it is not a SQLite database"
    if primary == _CORRUPT or "malformed" in text:
        return "it is corrupt; restore it from a backup"
    if primary == _IOERR or "disk i/o error" in text:
        return _disk_trouble(path) or "reading or writing it failed"
    if primary == _CANTOPEN or "unable to open database file" in text:
        return _why_not_open(path)
    if primary == _PERM or "access permission denied" in text:
        return "the operating system denied access to it"
    if text.startswith("no such table"):
        return "a table fwbot made is missing: was the file deleted or replaced while fwbot was running?"
    return None


def _disk_trouble(path: str | None, *, full: bool = True) -> str | None:
    """A read-only or (nearly) full filesystem under ``path``, which SQLite often reports only as
    "disk I/O error" or "unable to open database file"."""
    if not path or path == ":memory:":
        return None
    here = Path(path).absolute()
    try:
        while not here.exists() and here != here.parent:
            here = here.parent
        st = os.statvfs(here)
    except OSError:
        return None
    if st.f_flag & os.ST_RDONLY:
        return "its filesystem is mounted read-only"
    free = st.f_bavail * st.f_frsize
    if full and free < 1 << 20:
        return f"the disk is full: {free // 1024} KiB free"
    return None


def _why_not_open(path: str | None) -> str:
    """SQLite says only "unable to open database file": look at the file and its directory."""
    if not path:
        return "SQLite cannot open it"
    file = Path(path)
    parent = file.parent
    try:
        if file.is_dir():
            return "it is a directory, not a file"
        for above in [parent, *parent.parents]:
            if above.exists() and not above.is_dir():
                return f"{above} is not a directory"
            if above.exists():
                break
        if not parent.exists():
            return f"its directory {parent} does not exist"
        disk = _disk_trouble(path)
        if disk:
            return disk
        if file.exists() and not os.access(file, os.R_OK | os.W_OK):
            return "fwbot may not read and write the file"
        if not os.access(parent, os.W_OK | os.X_OK):
            return (f"its directory {parent} is not writable (SQLite needs to create "
                    f"{file.name}-wal and {file.name}-shm beside it)")
    except OSError:
        pass
    return "SQLite cannot open it"


def _os_problem(e: OSError) -> str:
    where = str(e.filename) if e.filename is not None else None
    if e.errno in (errno.EEXIST, errno.ENOTDIR) and where:
        # making a directory on the way met a file of that name
        blocker = next((p for p in [Path(where), *Path(where).parents] if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            return f"{blocker} is not a directory"
    return {
        errno.EROFS: "its filesystem is mounted read-only",
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is exhausted",
        errno.EACCES: "permission denied",
        errno.EPERM: "the operating system does not permit writing there (an immutable file or directory?)",
        errno.EISDIR: "it is a directory, not a file",
    }.get(e.errno or 0) or (e.strerror or e.__class__.__name__).lower()


class Database:
    """One connection per thread to one SQLite file in WAL mode.

    Bolt listeners, the scheduler and the HTTP server run on different threads; SQLite
    connections must not be shared across threads, so each thread lazily opens its own.
    Writes go through :meth:`write`, which takes the write lock up front (``BEGIN IMMEDIATE``)
    so two writers never deadlock upgrading a read lock.

    A file fwbot cannot use raises :class:`DatabaseProblem` from here (the directory) or from
    :meth:`migrate` (which every start runs and which writes); later, an SQLite error about the
    file or its disk carries the file's name (``fwbot_db_path``) for :func:`database_problem`.
    """

    def __init__(self, path: str | Path, *, busy_timeout_ms: int | None = None) -> None:
        self.path = str(path)
        self.busy_timeout_ms = BUSY_TIMEOUT_MS if busy_timeout_ms is None else busy_timeout_ms
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        if self.path != ":memory:":
            try:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise file_problem(self.path, e) from e

    def _note(self, e: BaseException) -> None:
        """Name this file on an SQLite error, for the error path (:func:`database_problem`)."""
        if isinstance(e, sqlite3.Error) and not hasattr(e, "fwbot_db_path"):
            with contextlib.suppress(AttributeError):
                e.fwbot_db_path = self.path  # type: ignore[attr-defined]
                e.fwbot_busy_timeout_ms = self.busy_timeout_ms  # type: ignore[attr-defined]

    # -- connections ---------------------------------------------------------------------------
    @property
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    def _open(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout_ms / 1000, check_same_thread=False)
        except sqlite3.Error as e:
            self._note(e)
            raise
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout={self.busy_timeout_ms}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as e:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
            self._note(e)
            raise
        return conn

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
        try:
            return [dict(r) for r in self.conn.execute(sql, params).fetchall()]
        except sqlite3.Error as e:
            self._note(e)
            raise

    def one(self, sql: str, params: tuple | dict = ()) -> dict | None:
        try:
            row = self.conn.execute(sql, params).fetchone()
        except sqlite3.Error as e:
            self._note(e)
            raise
        return dict(row) if row is not None else None

    def scalar(self, sql: str, params: tuple | dict = ()):
        try:
            row = self.conn.execute(sql, params).fetchone()
        except sqlite3.Error as e:
            self._note(e)
            raise
        return row[0] if row is not None else None

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction; nested calls join the outer one."""
        conn = self.conn
        if conn.in_transaction:
            yield conn
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            self._note(e)
            raise
        try:
            yield conn
        except BaseException as e:
            self._note(e)
            with contextlib.suppress(sqlite3.Error):  # the first error is the one worth telling
                conn.rollback()
            raise
        else:
            try:
                conn.commit()
            except sqlite3.Error as e:
                self._note(e)
                with contextlib.suppress(sqlite3.Error):
                    conn.rollback()
                raise

    def execute(self, sql: str, params: tuple | dict = ()) -> sqlite3.Cursor:
        """One write statement in its own transaction; returns the cursor (for ``rowcount``)."""
        with self.write() as conn:
            return conn.execute(sql, params)

    # -- migrations ----------------------------------------------------------------------------
    def migrate(self) -> list[int]:
        """Apply pending migrations; returns the numbers applied. Safe to call at every start.

        It always takes the write lock, so a file fwbot could read but not write (read-only,
        locked by another process, on a full disk) is found here, at start, as a
        :class:`DatabaseProblem`."""
        try:
            return self._migrate()
        except sqlite3.Error as e:
            problem = database_problem(e, self.path)
            if problem is None:
                raise
            raise problem from e

    def _migrate(self) -> list[int]:
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
            # One real write at every start, even with nothing to migrate: a file SQLite opened
            # read-only (an immutable file, a read-only mount) passes BEGIN IMMEDIATE and would
            # otherwise fail only at the first request. Writing the header's user_version back
            # unchanged writes a page and changes nothing.
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            conn.execute(f"PRAGMA user_version = {version}")
        return applied

    def journal_mode(self) -> str:
        return str(self.scalar("PRAGMA journal_mode"))
