"""Bring a database's schema up to date with Alembic (:mod:`storage.alembic`), on either engine.

:func:`upgrade` runs in one write transaction of :class:`storage.db.Database` (both engines have
transactional DDL), so replicas starting together apply each migration once: the second waits
for the first's commit, then finds nothing to do. A SQLite file made before Alembic (its numbered
scripts, :mod:`storage.migrations`, recorded in ``schema_migrations``) is first brought to the
last of those scripts and then stamped with the baseline revision, which describes the same
schema.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from bot.core.clock import iso

log = logging.getLogger("fwbot")

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from storage.db import Database

BASELINE = "0001"  # the schema of the SQLite scripts 1–11


def config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, in code (there is no alembic.ini): the scripts ship in the package."""
    cfg = Config()
    cfg.set_main_option("script_location", "storage:alembic")
    cfg.set_main_option("path_separator", "os")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    return ScriptDirectory.from_config(config()).get_current_head() or BASELINE


def current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(db: Database, target: str = "head") -> list[str]:
    """Apply the migrations ``db`` lacks, up to ``target``; returns the revisions applied.

    The scripts are read before the write transaction, and a database already at the target is
    not handed to Alembic at all: every replica that starts holds the write lock, one after the
    other, so each must hold it briefly (six starting together on two CPUs once waited past
    SQLite's 10 s busy timeout while each loaded Alembic's environment under the lock).
    """
    wanted = head() if target == "head" else target
    with db.write() as conn:
        tables = set(inspect(conn).get_table_names())
        if "alembic_version" not in tables and "schema_migrations" in tables:
            _finish_legacy(conn)
            command.stamp(config(conn), BASELINE)
        before = current(conn)
        if before != wanted:
            command.upgrade(config(conn), target)
        after = current(conn)
        applied = _between(before, after)
        if db.is_postgres:
            _check_collation(conn)
        if db.dialect == "sqlite":
            # One real write at every start, even with nothing to migrate: a file SQLite opened
            # read-only (an immutable file, a read-only mount) passes BEGIN IMMEDIATE and would
            # otherwise fail only at the first request. Writing the header's user_version back
            # unchanged writes a page and changes nothing.
            version = int(conn.exec_driver_sql("PRAGMA user_version").scalar() or 0)
            conn.exec_driver_sql(f"PRAGMA user_version = {version}")
    return applied


def _check_collation(conn: Connection) -> None:
    """fwbot lists things in the order of their ids and keys; SQLite compares text byte by byte.
    A PostgreSQL database created with a language's collation (en_US.UTF-8) sorts ``a-1`` and
    ``a1`` differently: say so once, at start (the README says how to create it with ``C``)."""
    collate = conn.execute(text("SELECT datcollate FROM pg_database WHERE datname = current_database()")).scalar()
    if collate not in ("C", "POSIX", "C.UTF-8", "C.utf8"):
        log.warning("the PostgreSQL database sorts text by %r, not byte by byte: lists may come out in a "
                    "different order than on SQLite (create it with LC_COLLATE 'C' to match)", collate)


def _between(before: str | None, after: str | None) -> list[str]:
    if after is None or after == before:
        return []
    script = ScriptDirectory.from_config(config())
    revs = [r.revision for r in script.iterate_revisions(after, before or "base")]
    return list(reversed(revs))


def _finish_legacy(conn: Connection) -> None:
    """Run the numbered SQLite scripts a pre-Alembic file has not had (SQLite only: nothing else
    ever ran them)."""
    from storage.migrations import MIGRATIONS

    done = {r[0] for r in conn.execute(text("SELECT number FROM schema_migrations"))}
    for number, name, statements in MIGRATIONS:
        if number in done:
            continue
        for sql in statements:
            conn.exec_driver_sql(sql)
        conn.execute(text("INSERT INTO schema_migrations (number, name, applied_at) VALUES (:n, :name, :at)"),
                     {"n": number, "name": name, "at": iso(datetime.now(UTC))})
