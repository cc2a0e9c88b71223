"""storage/migrations/ on a real SQLite file: the numbered files build the schema the migrations
in code built (tests/storage/expected_schema.json, captured from them), and a database part of
the way there is taken through the rest only."""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib
from importlib import resources
from pathlib import Path

import pytest

import storage.db
from storage.db import Database
from storage.migrations import MIGRATIONS, parse, split_statements

EXPECTED = json.loads((Path(__file__).parent / "expected_schema.json").read_text(encoding="utf-8"))
ROOT = Path(__file__).resolve().parents[2]


def normalized(sql: str | None) -> str | None:
    """SQL as the expected schema keeps it: comments dropped, whitespace collapsed."""
    return None if sql is None else " ".join(re.sub(r"--[^\n]*", " ", sql).split())


def objects(db: Database) -> list[str]:
    return [f"{r[0]} {r[1]}" for r in db.conn.execute(
        "SELECT type, name FROM sqlite_master WHERE name != 'sqlite_sequence' ORDER BY type, name")]


def schema(db: Database) -> list[list]:
    return [[r[0], r[1], r[2], normalized(r[3])] for r in db.conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name != 'sqlite_sequence' ORDER BY type, name")]


def test_the_files_keep_the_numbers_and_names_a_database_has_recorded():
    assert [[m.number, m.name] for m in MIGRATIONS] == EXPECTED["migrations"]


def test_a_fresh_file_migrates_to_the_schema_the_migrations_in_code_built(tmp_path):
    db = Database(tmp_path / "fwbot.db")
    assert db.migrate() == [m.number for m in MIGRATIONS]
    assert schema(db) == EXPECTED["schema"]
    assert db.query("SELECT id, gen FROM cost_rollup_state") == [{"id": 1, "gen": 0}]  # data, not schema
    assert [(r["number"], r["name"]) for r in db.query("SELECT number, name FROM schema_migrations ORDER BY number")] \
        == [tuple(m) for m in EXPECTED["migrations"]]
    assert db.migrate() == []


@pytest.mark.parametrize("n", range(1, len(EXPECTED["migrations"])))
def test_a_database_at_migration_n_migrates_only_the_rest(tmp_path, monkeypatch, n):
    path = tmp_path / "fwbot.db"
    monkeypatch.setattr(storage.db, "MIGRATIONS", MIGRATIONS[:n])
    first = Database(path)
    assert first.migrate() == list(range(1, n + 1))
    assert objects(first) == EXPECTED["objects_after"][str(n)]
    first.close()

    monkeypatch.setattr(storage.db, "MIGRATIONS", MIGRATIONS)
    db = Database(path)
    assert db.migrate() == list(range(n + 1, len(MIGRATIONS) + 1))
    assert schema(db) == EXPECTED["schema"]
    assert db.scalar("SELECT count(*) FROM schema_migrations") == len(MIGRATIONS)


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


def test_every_migration_file_ships_with_the_package():
    """An installed fwbot reads the files as package data: each must match a pattern there."""
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = package_data["storage.migrations"]
    files = [f.name for f in resources.files("storage.migrations").iterdir() if f.name[:4].isdigit()]
    assert len(files) == len(MIGRATIONS)
    assert all(any(fnmatch.fnmatch(name, p) for p in patterns) for name in files)
