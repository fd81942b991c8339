"""The records service: life cycle, versions, bad input and foreign ids, called as the API calls it."""

from datetime import UTC, datetime, timedelta

import pytest

from vault.core.caller import Caller
from vault.core.errors import Conflict, InvalidInput, NotFound
from vault.identity import principals
from vault.records import records

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


@pytest.fixture
def amina(vault_):
    with vault_.transaction() as session:
        info, _ = principals.create_principal(session, vault_.keys, role="resident", name="Amina", now=NOW)
    return Caller(id=info.id, role="resident")


def test_record_life_cycle(vault_, amina):
    with vault_.transaction() as session:
        meta = records.create_record(
            session,
            vault_.keys,
            amina,
            subject_id=amina.id,
            category="tenancy.lease",
            content={"rent": 940},
            title=" Lease ",
            now=NOW,
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
        meta = records.create_record(
            session, vault_.keys, amina, subject_id=amina.id, category="health.labs", content={}, now=NOW
        )
    with pytest.raises(Conflict):
        with vault_.transaction() as session:
            records.add_version(session, vault_.keys, amina, meta.id, content={"x": 1}, expected_version=2, now=NOW)
    with vault_.transaction() as session:
        assert records.read_record(session, vault_.keys, amina, meta.id, now=NOW).version == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"category": "health.*"},
        {"category": "Health.Labs"},
        {"content": []},
        {"content": {"x": float("nan")}},
        {"content": {"x": object()}},
        {"title": "t\x07"},
        {"content": {"big": "x" * (800 * 1024)}},
    ],
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
        meta = records.create_record(
            session, vault_.keys, amina, subject_id=amina.id, category="health.labs", content={}, now=NOW
        )
        clinic, _ = principals.create_principal(session, vault_.keys, role="clinic", name="C", now=NOW)
    caller = Caller(id=clinic.id, role="clinic")
    with vault_.transaction() as session:
        errors = []
        for record_id in (meta.id, "r_unknown"):
            with pytest.raises(NotFound) as info:
                records.read_record(session, vault_.keys, caller, record_id, purpose="treatment", now=NOW)
            errors.append(str(info.value))
        assert errors[0] == errors[1]
        # A clinic impersonating the resident's id is still not the resident.
        impostor = Caller(id=amina.id, role="clinic")
        with pytest.raises(NotFound):
            records.list_records(session, vault_.keys, impostor, subject_id=amina.id, purpose="treatment", now=NOW)
