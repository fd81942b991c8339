"""The Alembic migrations build exactly the schema the models describe."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from vault.storage import schema
from vault.storage.models import Base


def test_migrations_match_the_models(vault_):
    with vault_.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []
    assert schema.is_current(vault_.engine)


def test_head_names_the_newest_migration():
    """is_current compares with schema.HEAD without Alembic: a new revision must move it."""
    assert schema.alembic_head() == schema.HEAD


def test_a_database_behind_or_without_a_schema_is_not_current(vault_):
    assert schema.current_revision(vault_.engine) == schema.HEAD
    with vault_.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0005'"))
    assert not schema.is_current(vault_.engine)
    with vault_.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": schema.HEAD})
    assert schema.is_current(vault_.engine)


def test_an_empty_database_is_not_current(tmp_path):
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        assert schema.current_revision(engine) is None
        assert not schema.is_current(engine)
    finally:
        engine.dispose()


def test_sqlite_runs_wal_full_sync_and_foreign_keys(vault_, database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite pragmas")
    with vault_.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_upgrade_is_idempotent(vault_):
    schema.upgrade(vault_.engine)
    schema.upgrade(vault_.engine)
    assert schema.is_current(vault_.engine)
