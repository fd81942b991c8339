"""Migration 0008 adds sign-in to a vault with principals, and can be undone."""

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from vault.core.clock import utcnow
from vault.identity import logins, principals
from vault.storage import schema
from vault.storage.models import Base

from .test_audit_migration import _alembic


def test_principals_made_before_0008_keep_their_tokens_and_get_no_login(vault_):
    with vault_.transaction() as session:
        info, token = principals.create_principal(session, vault_.keys, role="clinic", name="Riverside", now=utcnow())
        logins.set_login(session, vault_.keys, info.id, "riverside")
    engine = vault_.engine
    _alembic(engine, "downgrade", "0007")
    with engine.connect() as connection:
        inspector = sa.inspect(connection)
        assert {"web_sessions", "invitations"}.isdisjoint(inspector.get_table_names())
        assert "login_index" not in {c["name"] for c in inspector.get_columns("principals")}
    _alembic(engine, "upgrade", "head")
    assert schema.is_current(engine)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    with vault_.transaction() as session:
        assert principals.authenticate(session, token).id == info.id
        assert logins.get_login(session, vault_.keys, info.id) is None
        assert logins.find_principal(session, vault_.keys, "riverside") is None
        logins.set_login(session, vault_.keys, info.id, "riverside")
