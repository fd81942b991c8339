"""Alembic environment: always run with a connection handed in by vault.schema."""

from alembic import context

from vault.storage.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Run migrations through 'civicvault init' (vault.storage.schema.upgrade).")

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
