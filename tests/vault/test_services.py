"""Principals and records services, called as the API and CLI call them."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from vault import principals, records
from vault.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from vault.models import ApiToken, Principal, SubjectKey

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


def test_tokens_are_stored_only_as_hashes(vault_):
    with vault_.transaction() as session:
        info, token = principals.create_principal(session, vault_.keys, role="clinic", name="Riverside", now=NOW)
    with vault_.transaction() as session:
        rows = session.scalars(select(ApiToken)).all()
        assert len(rows) == 1 and token not in rows[0].token_hash and len(rows[0].token_hash) == 64
        assert principals.authenticate(session, token) == principals.Caller(id=info.id, role="clinic")


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


@pytest.mark.parametrize("role, name", [("mayor", "X"), ("resident", ""), ("resident", "   "), ("resident", "a\x00b"), ("clinic", "x" * 201)])
def test_bad_principals_are_refused_and_nothing_is_stored(vault_, role, name):
    with pytest.raises(InvalidInput):
        with vault_.transaction() as session:
            principals.create_principal(session, vault_.keys, role=role, name=name, now=NOW)
    with vault_.transaction() as session:
        assert session.scalars(select(Principal)).all() == []


def test_list_principals_opens_names_and_filters_by_role(vault_):
    with vault_.transaction() as session:
        principals.create_principal(session, vault_.keys, role="resident", name="Amina", now=NOW)
        principals.create_principal(session, vault_.keys, role="clinic", name="Riverside", now=NOW + timedelta(seconds=1))
        assert [p.name for p in principals.list_principals(session, vault_.keys)] == ["Amina", "Riverside"]
        assert [p.name for p in principals.list_principals(session, vault_.keys, role="clinic")] == ["Riverside"]


@pytest.fixture
def amina(vault_):
    with vault_.transaction() as session:
        info, _ = principals.create_principal(session, vault_.keys, role="resident", name="Amina", now=NOW)
    return principals.Caller(id=info.id, role="resident")


def test_record_life_cycle(vault_, amina):
    with vault_.transaction() as session:
        meta = records.create_record(
            session, vault_.keys, amina, subject_id=amina.id, category="tenancy.lease", content={"rent": 940}, title=" Lease ", now=NOW
        )
    assert meta.title == "Lease" and meta.version == 1 and meta.created_at == NOW
    later = NOW + timedelta(days=1)
    with vault_.transaction() as session:
        updated = records.add_version(session, vault_.keys, amina, meta.id, content={"rent": 980}, now=later)
    assert updated.version == 2 and updated.updated_at == later and updated.created_at == NOW
    with vault_.transaction() as session:
        current = records.read_record(session, vault_.keys, amina, meta.id, now=later)
        first = records.read_record(session, vault_.keys, amina, meta.id, version=1, now=later)
        listing = records.list_records(session, vault_.keys, amina, subject_id=amina.id, now=NOW)
    assert current.content == {"rent": 980} and current.version == 2 and current.title == "Lease"
    assert first.content == {"rent": 940} and first.version == 1
    assert [m.id for m in listing] == [meta.id] and listing[0].version == 2


def test_stale_expected_version_is_a_conflict_and_changes_nothing(vault_, amina):
    with vault_.transaction() as session:
        meta = records.create_record(session, vault_.keys, amina, subject_id=amina.id, category="health.labs", content={}, now=NOW)
    with pytest.raises(Conflict):
        with vault_.transaction() as session:
            records.add_version(session, vault_.keys, amina, meta.id, content={"x": 1}, expected_version=2, now=NOW)
    with vault_.transaction() as session:
        assert records.read_record(session, vault_.keys, amina, meta.id, now=NOW).version == 1


@pytest.mark.parametrize(
    "kwargs",
    [{"category": "health.*"}, {"category": "Health.Labs"}, {"content": []}, {"content": {"x": float("nan")}},
     {"content": {"x": object()}}, {"title": "t\x07"}, {"content": {"big": "x" * (800 * 1024)}}],
)
def test_invalid_records_are_refused(vault_, amina, kwargs):
    args = {"category": "health.labs", "content": {}, "title": None, **kwargs}
    with pytest.raises(InvalidInput):
        with vault_.transaction() as session:
            records.create_record(session, vault_.keys, amina, subject_id=amina.id, now=NOW, **args)
    with vault_.transaction() as session:
        assert records.list_records(session, vault_.keys, amina, subject_id=amina.id, now=NOW) == []


def test_other_callers_cannot_tell_foreign_from_unknown(vault_, amina):
    with vault_.transaction() as session:
        meta = records.create_record(session, vault_.keys, amina, subject_id=amina.id, category="health.labs", content={}, now=NOW)
        clinic, _ = principals.create_principal(session, vault_.keys, role="clinic", name="C", now=NOW)
    caller = principals.Caller(id=clinic.id, role="clinic")
    with vault_.transaction() as session:
        errors = []
        for record_id in (meta.id, "r_unknown"):
            with pytest.raises(NotFound) as info:
                records.read_record(session, vault_.keys, caller, record_id, purpose="treatment", now=NOW)
            errors.append(str(info.value))
        assert errors[0] == errors[1]
        # A clinic impersonating the resident's id is still not the resident.
        impostor = principals.Caller(id=amina.id, role="clinic")
        with pytest.raises(NotFound):
            records.list_records(session, vault_.keys, impostor, subject_id=amina.id, purpose="treatment", now=NOW)
