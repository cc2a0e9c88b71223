"""A fresh, migrated database per test (``db``): a SQLite file, and a PostgreSQL database when a
server is given (``FWBOT_TEST_POSTGRES_URL``, which ``scripts/test`` sets)."""

from __future__ import annotations

import pytest

from storage.db import Database
from tests.fixtures.databases import drop_postgres_database, fresh_postgres_database, postgres_server_url


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    if request.param == "sqlite":
        database = Database(tmp_path / "fwbot.db")
        url = None
    else:
        server = postgres_server_url()
        if server is None:
            pytest.skip("no PostgreSQL server (FWBOT_TEST_POSTGRES_URL); scripts/test starts one")
        url = fresh_postgres_database(server)
        database = Database(url)
    database.migrate()
    yield database
    database.close()
    if url is not None:
        drop_postgres_database(url)
