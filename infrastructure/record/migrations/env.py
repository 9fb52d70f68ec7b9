"""Alembic's environment: migrations run on the connection ``database.migrate`` hands in
(``config.attributes["connection"]``), never from a URL of their own."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from infrastructure.record.schema import metadata

connection: Connection | None = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run the record's migrations through infrastructure.record.database.migrate "
        "(the services do on start), not the alembic command line"
    )
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    transaction_per_migration=True,
)
with context.begin_transaction():
    context.run_migrations()
