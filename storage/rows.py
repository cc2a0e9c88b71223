"""What every part of the store shares: the database, WHERE clauses, ``IN`` chunks, row decoding, tokens."""

from __future__ import annotations

import json
import secrets
from dataclasses import fields
from typing import Any

from bot.core.clock import parse_iso
from storage.db import Database

# Ids per ``IN (...)`` query: well under SQLite's limit on bound parameters (PostgreSQL's is higher).
IN_CHUNK = 500


class Repository:
    """The queries over one aggregate's tables. :class:`storage.store.Store` inherits every
    repository, so they share its one ``db``; each also works alone (``AuditRepo(db)``)."""

    def __init__(self, db: Database) -> None:
        self.db = db


def where_matching(**columns: Any) -> tuple[str, dict[str, Any]]:
    """A WHERE clause matching every column given a value (a tuple means any of its values), with
    its named parameters (``:w_<column>_<i>``)."""
    clauses, params = ["1=1"], {}
    for column, value in columns.items():
        if value is None:
            continue
        values = value if isinstance(value, tuple) else (value,)
        names = [f"w_{column}_{i}" for i in range(len(values))]
        params.update(zip(names, values, strict=True))
        if isinstance(value, tuple):  # an empty one matches nothing (PostgreSQL has no ``IN ()``)
            clauses.append(f"{column} IN ({', '.join(':' + n for n in names)})" if names else "1=0")
        else:
            clauses.append(f"{column} = :{names[0]}")
    return " AND ".join(clauses), params


def decoded(cls: type, row: dict, *, json_columns: dict[str, Any], times: tuple[str, ...]) -> dict[str, Any]:
    """A row as keyword arguments of the dataclass ``cls``: JSON columns decoded (an empty one
    becomes the default given), time columns parsed."""
    data = {f.name: row.get(f.name) for f in fields(cls)}
    for name, empty in json_columns.items():
        data[name] = json.loads(row[name]) if row.get(name) else empty
    for name in times:
        data[name] = parse_iso(row.get(name))
    return data


def new_token() -> str:
    """An opaque, unguessable id for buttons and approvals."""
    return secrets.token_urlsafe(16)
