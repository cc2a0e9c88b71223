"""The PostgreSQL server the benchmark's PostgreSQL rows run on, and a fresh database per scenario.

``FWBOT_BENCH_POSTGRES_URL`` (a superuser's URL) names a server to use; else a throw-away one is
started with ``scripts/pg`` in a temporary directory and stopped at the end. The databases made on
a server named by the variable are dropped at the end; a throw-away server takes them with it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = str(ROOT / "scripts" / "pg")
ENV = "FWBOT_BENCH_POSTGRES_URL"


def _conninfo(url: str) -> str:
    """A SQLAlchemy URL as psycopg takes it (no ``+psycopg``)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _connect(url: str):
    import psycopg  # here: the scenarios import this module for database_setting alone

    return psycopg.connect(_conninfo(url), autocommit=True, connect_timeout=10)


class PostgresServer:
    """One server; :meth:`fresh_database` makes an empty database on it and returns its URL."""

    def __init__(self, url: str, directory: str | None = None) -> None:
        self.url = make_url(url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
        self.directory = directory  # set when the server is ours to stop
        self.made: list[str] = []

    @classmethod
    def open(cls) -> PostgresServer | None:
        """The server named by ``FWBOT_BENCH_POSTGRES_URL``, else a throw-away one; ``None`` (having
        said so in one line) when there is neither, PostgreSQL not being installed."""
        if url := os.environ.get(ENV, "").strip():
            return cls(url)
        found = subprocess.run([SCRIPT, "bindir"], capture_output=True, text=True)
        if found.returncode != 0:
            print(f"PostgreSQL is not installed ({found.stderr.strip() or 'scripts/pg bindir failed'}): "
                  f"the PostgreSQL rows are skipped (set {ENV} to use a server)", file=sys.stderr, flush=True)
            return None
        directory = tempfile.mkdtemp(prefix="fwbot-bench-pg-")
        started = subprocess.run([SCRIPT, "start", directory], capture_output=True, text=True)
        if started.returncode != 0:
            subprocess.run([SCRIPT, "stop", directory], capture_output=True)
            shutil.rmtree(directory, ignore_errors=True)
            raise RuntimeError(f"scripts/pg start failed:\n{started.stderr[-4000:]}")
        return cls(started.stdout.strip().splitlines()[-1], directory)

    def fresh_database(self) -> str:
        name = f"fwbot_bench_{uuid.uuid4().hex[:12]}"
        with _connect(self.url) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.made.append(name)
        return make_url(self.url).set(database=name).render_as_string(hide_password=False)

    def close(self) -> None:
        if self.directory is not None:
            subprocess.run([SCRIPT, "stop", self.directory], capture_output=True)
            shutil.rmtree(self.directory, ignore_errors=True)
            return
        try:
            with _connect(self.url) as conn:
                for name in self.made:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except Exception as e:  # psycopg's errors: the run's figures are already out
            print(f"could not drop the benchmark's databases {self.made}: {e}", file=sys.stderr)


def database_setting(database: str) -> str:
    """The setting that names ``database`` to fwbot: a URL is ``FWBOT_DATABASE_URL``, a path ``FWBOT_DB``."""
    return "FWBOT_DATABASE_URL" if "://" in database else "FWBOT_DB"
