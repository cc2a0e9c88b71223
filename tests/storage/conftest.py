"""A fresh, migrated SQLite file per test (``db``)."""

from __future__ import annotations

import pytest

from storage.db import Database


@pytest.fixture
def db(tmp_path):
    database = Database(tmp_path / "fwbot.db")
    database.migrate()
    yield database
    database.close()
