"""Migration 0010 (issuer keys): records written before it are self-asserted, and it can be undone."""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from vault.core.caller import Caller
from vault.identity import principals
from vault.records import records
from vault.storage import schema
from vault.storage.models import Base

from .test_audit_migration import _alembic

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


def test_records_from_before_are_self_asserted_after_the_upgrade(vault_):
    with vault_.transaction() as session:
        info, _ = principals.create_principal(session, vault_.keys, role="resident", name="Amina", now=NOW)
        amina = Caller(id=info.id, role="resident")
        meta = records.create_record(
            session, vault_.keys, amina, subject_id=amina.id, category="tenancy.lease", content={"rent": 940}, now=NOW
        )
    engine = vault_.engine
    _alembic(engine, "downgrade", "0009")
    with engine.connect() as connection:
        inspector = sa.inspect(connection)
        assert "issuer_keys" not in inspector.get_table_names()
        assert "issuer_key_id" not in {c["name"] for c in inspector.get_columns("record_versions")}
    _alembic(engine, "upgrade", "head")
    assert schema.is_current(engine)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    with vault_.transaction() as session:
        read = records.read_record(session, vault_.keys, amina, meta.id, now=NOW)
    assert read.content == {"rent": 940} and read.provenance.kind == "self-asserted"
