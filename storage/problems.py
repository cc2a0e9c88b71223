"""What is wrong with the database, in a person's words: SQLite's file and disk troubles, and a
PostgreSQL server fwbot cannot reach or use. :mod:`storage.db` raises these; the bot says them."""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
from pathlib import Path

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
    """What is wrong with the database, if ``exc`` (or what caused it) is a trouble with the
    SQLite file or its disk, or with reaching or using the PostgreSQL server; ``None`` for
    anything else (including an SQL error of fwbot's own).

    The one place that turns the drivers' errors into a sentence naming the database
    (:func:`file_problem` does the OS's). The database is the one :class:`storage.db.Database`
    noted on the exception, else ``path``. SQLAlchemy wraps a driver's error; its ``orig`` is
    looked at too.
    """
    seen = 0
    while exc is not None and seen < 6:
        if isinstance(exc, DatabaseProblem):
            return exc
        where = getattr(exc, "fwbot_db_path", None) or path
        orig = getattr(exc, "orig", None)
        if isinstance(orig, BaseException) and not hasattr(orig, "fwbot_db_path") and where:
            with contextlib.suppress(AttributeError):
                orig.fwbot_db_path = where  # type: ignore[attr-defined]
                orig.fwbot_busy_timeout_ms = getattr(exc, "fwbot_busy_timeout_ms", BUSY_TIMEOUT_MS)  # type: ignore[attr-defined]
        if isinstance(exc, sqlite3.Error):
            busy_ms = getattr(exc, "fwbot_busy_timeout_ms", BUSY_TIMEOUT_MS)
            problem = _sqlite_problem(exc, where, busy_ms)
            if problem is not None:
                return DatabaseProblem(where or "(fwbot's database file)", problem, str(exc))
        problem = _postgres_problem(exc)
        if problem is not None:
            return DatabaseProblem(where or "(fwbot's PostgreSQL database)", problem, _first_line(exc))
        exc = orig if isinstance(orig, BaseException) else (exc.__cause__ or exc.__context__)
        seen += 1
    return None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]


def _postgres_problem(e: BaseException) -> str | None:
    """A person's words for a PostgreSQL error that is about the server, the network or the
    account fwbot uses; ``None`` else (an SQL error is fwbot's own and is not dressed up)."""
    try:
        import psycopg
        from psycopg import errors
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return None
    if not isinstance(e, psycopg.Error):
        return None
    text = str(e).lower()
    if isinstance(e, errors.InvalidPassword | errors.InvalidAuthorizationSpecification) or "password authentication" in text:
        return "the server refused fwbot's user name or password"
    if isinstance(e, errors.InvalidCatalogName) or ("database" in text and "does not exist" in text):
        return "the database does not exist on the server (create it first)"
    if isinstance(e, errors.InsufficientPrivilege):
        return "fwbot's user lacks a privilege it needs (it must own its tables)"
    if isinstance(e, errors.DiskFull):
        return "the server's disk is full"
    if isinstance(e, errors.ReadOnlySqlTransaction):
        return "the server is read-only (a standby, or default_transaction_read_only is on)"
    if isinstance(e, errors.TooManyConnections) or "too many clients" in text:
        return "the server has no connection slot left (max_connections)"
    if isinstance(e, errors.AdminShutdown | errors.CannotConnectNow | errors.CrashShutdown):
        return "the server is shutting down or starting up"
    if isinstance(e, errors.UndefinedTable):
        return "a table fwbot made is missing: run `fwbot db upgrade`"
    if isinstance(e, psycopg.OperationalError):
        if "connection refused" in text or "could not connect" in text or "no such file" in text:
            return "nothing answers at that address (is the server running?)"
        if "timeout" in text or "timed out" in text:
            return "the server did not answer in time"
        return "the connection to the server failed"
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


