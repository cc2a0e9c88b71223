"""Migrations on a real database (the test run's engine: a SQLite file, or a PostgreSQL database):
Alembic builds exactly the tables :mod:`storage.schema` describes; a SQLite file made before
Alembic, at any of its numbered scripts, is finished and stamped without losing a row; replicas
starting together apply a migration once; the numbered scripts still parse as they did."""

from __future__ import annotations

import fnmatch
import json
import sqlite3
import threading
import tomllib
from importlib import resources
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from storage.db import Database
from storage.migrate import BASELINE, current, head
from storage.migrations import MIGRATIONS, parse, split_statements
from storage.schema import metadata
from tests.fixtures.databases import database_url, engine

EXPECTED = json.loads((Path(__file__).parent / "expected_schema.json").read_text(encoding="utf-8"))
ROOT = Path(__file__).resolve().parents[2]


def differences(db: Database) -> list:
    """What Alembic finds between the migrated database and storage.schema (nothing, if they agree)."""
    with db.connection() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts={"compare_server_default": False}), metadata)


def meaningful(diffs: list) -> list:
    """Differences that matter for a file made before Alembic: its scripts declared primary keys
    without NOT NULL (SQLite refuses a NULL key of an INTEGER PRIMARY KEY anyway, and fwbot never
    writes one), REAL where the schema says Float and INTEGER where it says BigInteger (the same
    affinity: SQLite's integers are 64-bit); its ``schema_migrations``
    stays, as the record of what ran."""
    out = []
    for d in diffs:
        d = d[0] if isinstance(d, list) and len(d) == 1 else d
        if d[0] == "remove_table" and d[1].name == "schema_migrations":
            continue
        if d[0] == "modify_nullable" and d[3] in {c.name for c in metadata.tables[d[2]].primary_key}:
            continue
        if d[0] == "modify_type" and (type(d[5]).__name__, type(d[6]).__name__) in (("REAL", "Float"),
                                                                                  ("INTEGER", "BigInteger")):
            continue  # the same affinity in SQLite
        out.append(d)
    return out


def triggers(db: Database) -> set[str]:
    if db.dialect == "sqlite":
        return {r["name"] for r in db.query("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    return {r["tgname"] for r in db.query("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")}


def legacy_file(path: Path, n: int) -> None:
    """A SQLite file as fwbot made it before Alembic, at its numbered script ``n``."""
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE schema_migrations (number INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                     "applied_at TEXT NOT NULL)")
        for number, name, statements in MIGRATIONS[:n]:
            for sql in statements:
                conn.execute(sql)
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?, '2026-01-01T00:00:00.000000Z')", (number, name))


def test_the_numbered_scripts_keep_the_numbers_and_names_a_file_has_recorded():
    assert [[m.number, m.name] for m in MIGRATIONS] == EXPECTED["migrations"]


def test_a_fresh_database_migrates_to_exactly_the_schema_in_code(tmp_path):
    db = Database(database_url(tmp_path))
    assert db.migrate() == _revisions()
    assert differences(db) == []
    assert {"replica_history", "traffic_history"} <= {t for t in inspect(db.engine).get_table_names()}
    assert db.query("SELECT id, gen FROM cost_rollup_state") == [{"id": 1, "gen": 0}]  # data, not schema
    assert triggers(db)  # the rollup invalidation
    with db.connection() as conn:
        assert current(conn) == head()
    assert db.migrate() == []  # a second start has nothing to do
    db.close()


def test_a_change_to_history_drops_the_rollups_it_affects_on_this_engine(tmp_path):
    db = Database(database_url(tmp_path))
    db.migrate()
    db.execute("INSERT INTO cost_rollups VALUES ('UTC', 'd1', '2026-11-01', '2026-11-02T00:00:00.000000Z', 'NVIDIA_H100_80GB', 0, 5, 5)")
    db.execute("INSERT INTO cost_rollups VALUES ('UTC', 'd1', '2026-10-01', '2026-10-02T00:00:00.000000Z', 'NVIDIA_H100_80GB', 0, 5, 5)")
    db.execute("INSERT INTO replica_history (deployment_id, at, replicas) VALUES ('d1', '2026-11-01T12:00:00.000000Z', 2)")
    assert [r["day"] for r in db.query("SELECT day FROM cost_rollups")] == ["2026-10-01"]
    assert db.scalar("SELECT gen FROM cost_rollup_state") == 1
    db.close()


@pytest.mark.parametrize("n", range(1, len(MIGRATIONS) + 1))
def test_a_file_made_before_alembic_is_finished_and_stamped_keeping_its_rows(tmp_path, n):
    if engine() != "sqlite":
        pytest.skip("only SQLite files were made before Alembic")
    path = tmp_path / "fwbot.db"
    legacy_file(path, n)
    with sqlite3.connect(path) as conn:  # every script makes deployments and audit (1)
        conn.execute("INSERT INTO audit (at, actor, action, result) VALUES ('2026-01-01T00:00:00.000000Z', "
                     "'U1', 'deploy', 'ok')")
    db = Database(path)
    assert db.migrate() == [r for r in _revisions() if r != BASELINE]
    assert meaningful(differences(db)) == []
    assert db.scalar("SELECT count(*) FROM schema_migrations") == len(MIGRATIONS)  # the scripts it lacked ran
    assert db.query("SELECT actor, action FROM audit") == [{"actor": "U1", "action": "deploy"}]
    with db.connection() as conn:
        assert current(conn) == head()
    db.close()


def _revisions() -> list[str]:
    from alembic.script import ScriptDirectory

    from storage.migrate import config

    return [r.revision for r in reversed(list(ScriptDirectory.from_config(config()).walk_revisions()))]


def test_replicas_starting_together_apply_each_migration_once(tmp_path):
    url = database_url(tmp_path)
    applied: list[list[str]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def replica() -> None:
        db = Database(url)
        try:
            start.wait()
            applied.append(db.migrate())
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
        finally:
            db.close()

    threads = [threading.Thread(target=replica) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(applied, key=len) == [[]] * 5 + [_revisions()]


def test_a_trigger_is_one_statement_and_comments_between_statements_are_left_out():
    script = """
-- a comment; with a semicolon
CREATE TABLE t (a INTEGER);  -- trailing
CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN
    DELETE FROM t WHERE a < NEW.a;
    UPDATE t SET a = a + 1;
END;

INSERT INTO t (a) VALUES (1);
"""
    assert split_statements(script) == [
        "CREATE TABLE t (a INTEGER);  -- trailing",
        "CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN\n    DELETE FROM t WHERE a < NEW.a;\n"
        "    UPDATE t SET a = a + 1;\nEND;",
        "INSERT INTO t (a) VALUES (1);",
    ]
    with pytest.raises(ValueError, match="without its closing"):
        split_statements("CREATE TABLE t (a INTEGER)\n")


def test_a_migration_file_names_its_number_and_what_it_does():
    assert parse("0009_more.sql", "-- migration: more\nCREATE TABLE m (a);\n") == (9, "more", ["CREATE TABLE m (a);"])
    with pytest.raises(ValueError, match="NNNN_name.sql"):
        parse("9_more.sql", "-- migration: more\nCREATE TABLE m (a);\n")
    with pytest.raises(ValueError, match="first line"):
        parse("0009_more.sql", "CREATE TABLE m (a);\n")
    with pytest.raises(ValueError, match="no statements"):
        parse("0009_more.sql", "-- migration: more\n-- nothing yet\n")


def test_every_migration_ships_with_the_package():
    """An installed fwbot reads the numbered scripts as package data and Alembic's revisions as
    modules of storage.alembic.versions (a package, so setuptools finds it)."""
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = package_data["storage.migrations"]
    files = [f.name for f in resources.files("storage.migrations").iterdir() if f.name[:4].isdigit()]
    assert len(files) == len(MIGRATIONS)
    assert all(any(fnmatch.fnmatch(name, p) for p in patterns) for name in files)
    versions = resources.files("storage.alembic.versions")
    assert versions.joinpath("__init__.py").is_file()
    assert len([f for f in versions.iterdir() if f.name[:4].isdigit() and f.name.endswith(".py")]) == len(_revisions())
