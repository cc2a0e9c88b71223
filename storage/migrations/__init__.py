"""Numbered, re-runnable schema migrations: one file each, ``NNNN_name.sql`` in this directory.

A file starts with the line ``-- migration: <what it does>`` (the name recorded in
``schema_migrations``) and holds SQL statements that are safe to run again (``IF NOT EXISTS``).
:meth:`storage.db.Database.migrate` applies the ones a database has not recorded, in order,
inside one transaction. Never edit a released migration: add the next number. The files ship
with the package (``[tool.setuptools.package-data]`` in ``pyproject.toml``).
"""

from __future__ import annotations

import re
import sqlite3
from importlib import resources
from typing import NamedTuple

_FILE = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")
_HEADER = "-- migration: "


class Migration(NamedTuple):
    number: int
    name: str
    statements: list[str]


def split_statements(script: str) -> list[str]:
    """The statements of an SQL script, in order. A statement ends where SQLite says it is
    complete (``sqlite3.complete_statement``), so a trigger's ``BEGIN … END`` stays whole;
    comment lines between statements are left out."""
    statements: list[str] = []
    lines: list[str] = []
    for line in script.splitlines(keepends=True):
        if not lines and (not line.strip() or line.lstrip().startswith("--")):
            continue
        lines.append(line)
        text = "".join(lines)
        if sqlite3.complete_statement(text):
            statements.append(text.strip())
            lines = []
    if lines:
        raise ValueError(f"a statement without its closing ';': {''.join(lines).strip()[:80]!r}")
    return statements


def parse(file_name: str, text: str) -> Migration:
    """One migration file: its number from the file name, its name from the header line."""
    match = _FILE.fullmatch(file_name)
    if match is None:
        raise ValueError(f"{file_name}: a migration file is named NNNN_name.sql")
    header, _, script = text.partition("\n")
    if not header.startswith(_HEADER) or not header[len(_HEADER):].strip():
        raise ValueError(f"{file_name}: the first line must be '{_HEADER}<what it does>'")
    statements = split_statements(script)
    if not statements:
        raise ValueError(f"{file_name}: no statements")
    return Migration(int(match.group(1)), header[len(_HEADER):].strip(), statements)


def load() -> list[Migration]:
    """Every migration in this package, in order; numbered 1, 2, 3… without a gap or a repeat."""
    files = sorted((f for f in resources.files(__name__).iterdir() if f.name[:4].isdigit()), key=lambda f: f.name)
    migrations = [parse(f.name, f.read_text(encoding="utf-8")) for f in files]
    numbers = [m.number for m in migrations]
    if numbers != list(range(1, len(migrations) + 1)):
        raise ValueError(f"migrations must be numbered 1, 2, 3… in order, without gaps or repeats: {numbers}")
    return migrations


MIGRATIONS: list[Migration] = load()
