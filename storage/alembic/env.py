"""Alembic's environment: run on the connection fwbot hands it (:func:`storage.migrate.upgrade`)."""

from __future__ import annotations

from alembic import context

from storage.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - fwbot always hands one over
    raise RuntimeError("fwbot's migrations run through `fwbot db upgrade`, which supplies the connection")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True,
                  compare_server_default=True)
with context.begin_transaction():
    context.run_migrations()
