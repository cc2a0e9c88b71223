"""Alembic's migrations of fwbot's schema, for SQLite and PostgreSQL alike (:mod:`storage.migrate`).

A new migration: ``fwbot db revision -m "what it does"`` writes the next file under ``versions/``
from the difference between a migrated database and :mod:`storage.schema`; review it (both engines
run it), then ``tests/storage/test_migrations.py`` checks that the two agree.
"""
