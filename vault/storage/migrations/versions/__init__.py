"""Alembic revisions, applied in order by ``vault.storage.schema.upgrade``."""
