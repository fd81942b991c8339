"""The principals service: tokens, subject keys, names, called as the API and CLI call it."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from vault.core.caller import Caller
from vault.core.errors import InvalidInput, NotFound, Unauthenticated
from vault.identity import principals
from vault.storage.models import ApiToken, Principal, SubjectKey

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


def test_tokens_are_stored_only_as_hashes(vault_):
    with vault_.transaction() as session:
        info, token = principals.create_principal(session, vault_.keys, role="clinic", name="Riverside", now=NOW)
    with vault_.transaction() as session:
        rows = session.scalars(select(ApiToken)).all()
        assert len(rows) == 1 and token not in rows[0].token_hash and len(rows[0].token_hash) == 64
        assert principals.authenticate(session, token) == Caller(id=info.id, role="clinic")


def test_authentication_refuses_unknown_revoked_and_foreign_tokens(vault_):
    with vault_.transaction() as session:
        info, token = principals.create_principal(session, vault_.keys, role="resident", name="R", now=NOW)
        with pytest.raises(Unauthenticated):
            principals.authenticate(session, token + "x")
        with pytest.raises(Unauthenticated):
            principals.authenticate(session, "")
        assert principals.revoke_tokens(session, info.id, now=NOW) == 1
        assert principals.revoke_tokens(session, info.id, now=NOW) == 0
        with pytest.raises(Unauthenticated):
            principals.authenticate(session, token)
        with pytest.raises(NotFound):
            principals.revoke_tokens(session, "p_nobody", now=NOW)


def test_residents_get_a_subject_key_and_others_do_not(vault_):
    with vault_.transaction() as session:
        resident, _ = principals.create_principal(session, vault_.keys, role="resident", name="R", now=NOW)
        clinic, _ = principals.create_principal(session, vault_.keys, role="clinic", name="C", now=NOW)
        keys = session.scalars(select(SubjectKey)).all()
    assert [(k.subject_id, k.version, k.master_key_version) for k in keys] == [(resident.id, 1, 1)]


@pytest.mark.parametrize(
    "role, name", [("mayor", "X"), ("resident", ""), ("resident", "   "), ("resident", "a\x00b"), ("clinic", "x" * 201)]
)
def test_bad_principals_are_refused_and_nothing_is_stored(vault_, role, name):
    with pytest.raises(InvalidInput):
        with vault_.transaction() as session:
            principals.create_principal(session, vault_.keys, role=role, name=name, now=NOW)
    with vault_.transaction() as session:
        assert session.scalars(select(Principal)).all() == []


def test_list_principals_opens_names_and_filters_by_role(vault_):
    with vault_.transaction() as session:
        principals.create_principal(session, vault_.keys, role="resident", name="Amina", now=NOW)
        principals.create_principal(
            session, vault_.keys, role="clinic", name="Riverside", now=NOW + timedelta(seconds=1)
        )
        assert [p.name for p in principals.list_principals(session, vault_.keys)] == ["Amina", "Riverside"]
        assert [p.name for p in principals.list_principals(session, vault_.keys, role="clinic")] == ["Riverside"]
