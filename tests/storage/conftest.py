"""A fresh, migrated database per test (``db``), on the run's engine (tests/fixtures/databases.py)."""

from __future__ import annotations

import pytest

from storage.db import Database
from tests.fixtures.databases import database_url


@pytest.fixture
def db(tmp_path):
    database = Database(database_url(tmp_path))
    database.migrate()
    yield database
    database.close()
