"""Share codes: made by a resident or delegate, used once by a clinic or landlord, stored only as a keyed hash."""

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from tests.api.conftest import T0
from tests.vault.storage.test_audit_migration import _alembic
from vault.consent import access_requests, delegations, share_codes
from vault.core.caller import Caller
from vault.core.errors import Forbidden, InvalidInput, NotFound
from vault.identity import principals
from vault.rights import erasure
from vault.storage import schema
from vault.storage.models import AccessRequest, Base, Event, ShareCode


@pytest.fixture
def cast(vault_):
    with vault_.transaction() as session:
        made = {
            name: principals.create_principal(session, vault_.keys, role=role, name=name, now=T0)[0]
            for name, role in (
                ("amina", "resident"),
                ("chidi", "resident"),
                ("clinic", "clinic"),
                ("landlord", "landlord"),
                ("compliance", "compliance"),
            )
        }
    return {name: Caller(info.id, info.role) for name, info in made.items()}


def make(vault_, who, *, at=T0, **kwargs):
    with vault_.transaction() as session:
        return share_codes.create_code(session, vault_.keys, who, now=at, **kwargs)


def redeem(vault_, who, code, *, at=T0):
    with vault_.transaction() as session:
        return share_codes.redeem_code(session, vault_.keys, who, code, now=at)


def test_a_code_is_ten_crockford_characters_grouped_and_lives_ten_minutes(vault_, cast):
    made = make(vault_, cast["amina"])
    assert len(made.code) == 12 and made.code[4] == made.code[9] == "-"
    raw = made.code.replace("-", "")
    assert len(raw) == 10 and set(raw) <= set(share_codes.ALPHABET)
    assert not set(raw) & set("ILOU")
    assert made.expires_at - made.created_at == timedelta(minutes=10) and made.subject_id == cast["amina"].id


def test_redeeming_names_the_resident_once(vault_, cast):
    made = make(vault_, cast["amina"])
    assert redeem(vault_, cast["clinic"], made.code).subject_id == cast["amina"].id
    with pytest.raises(NotFound) as again:
        redeem(vault_, cast["landlord"], made.code)
    assert again.value.detail == share_codes.INVALID
    with vault_.read_transaction() as session:
        row = session.scalars(select(ShareCode)).one()
        assert (row.used_at, row.used_by) == (T0, cast["clinic"].id)


def test_typing_is_forgiving(vault_, cast):
    made = make(vault_, cast["amina"])
    typed = " " + made.code.lower().replace("-", " ").replace("1", "l").replace("0", "o") + " "
    assert redeem(vault_, cast["clinic"], typed).subject_id == cast["amina"].id


@pytest.mark.parametrize("typed", ["", "ABCD", "ABCD-EFGH-JKM", "ABCD-EFGH-J!", "ÄBCD-EFGH-JK", "A" * 200, "\x00" * 10])
def test_malformed_and_unknown_codes_get_the_one_message(vault_, cast, typed):
    make(vault_, cast["amina"])
    with pytest.raises(NotFound) as refused:
        redeem(vault_, cast["clinic"], typed)
    assert refused.value.detail == share_codes.INVALID


def test_an_expired_code_gets_the_same_message(vault_, cast):
    made = make(vault_, cast["amina"], minutes=2)
    with pytest.raises(NotFound) as refused:
        redeem(vault_, cast["clinic"], made.code, at=T0 + timedelta(minutes=2))
    assert refused.value.detail == share_codes.INVALID


def test_a_new_code_ends_the_earlier_one(vault_, cast):
    first = make(vault_, cast["amina"])
    second = make(vault_, cast["amina"], at=T0 + timedelta(minutes=1))
    with pytest.raises(NotFound):
        redeem(vault_, cast["clinic"], first.code, at=T0 + timedelta(minutes=2))
    assert redeem(vault_, cast["clinic"], second.code, at=T0 + timedelta(minutes=2)).subject_id == cast["amina"].id


def test_only_residents_make_codes_and_only_clinics_and_landlords_use_them(vault_, cast):
    for who in ("clinic", "landlord", "compliance"):
        with pytest.raises(Forbidden):
            make(vault_, cast[who])
    made = make(vault_, cast["amina"])
    for who in ("amina", "chidi", "compliance"):
        with pytest.raises(Forbidden):
            redeem(vault_, cast[who], made.code)
    assert redeem(vault_, cast["landlord"], made.code).subject_id == cast["amina"].id  # still unused until then


@pytest.mark.parametrize("minutes", [0, -1, 31, True, "10"])
def test_the_life_of_a_code_is_bounded(vault_, cast, minutes):
    with pytest.raises(InvalidInput):
        make(vault_, cast["amina"], minutes=minutes)


def test_a_delegate_makes_a_code_for_the_resident_and_a_stranger_gets_not_found(vault_, cast):
    with pytest.raises(NotFound):
        make(vault_, cast["chidi"], subject_id=cast["amina"].id)
    with vault_.transaction() as session:
        delegations.create_delegation(
            session, cast["amina"], delegate_id=cast["chidi"].id, expires_at=T0 + timedelta(days=30),
            limits=vault_.limits, now=T0,
        )  # fmt: skip
    made = make(vault_, cast["chidi"], subject_id=cast["amina"].id, at=T0 + timedelta(seconds=1))
    assert redeem(vault_, cast["clinic"], made.code, at=T0 + timedelta(seconds=2)).subject_id == cast["amina"].id


def test_only_a_keyed_hash_is_stored(vault_, cast):
    made = make(vault_, cast["amina"])
    raw = made.code.replace("-", "")
    with vault_.read_transaction() as session:
        row = session.scalars(select(ShareCode)).one()
        assert len(row.code_hash) == 64 and raw not in row.code_hash and made.code not in row.code_hash
        import hashlib

        assert row.code_hash != hashlib.sha256(raw.encode()).hexdigest()  # keyed: no dictionary runs without the key
        dump = "\n".join(str(r) for r in session.execute(sa.text("SELECT * FROM share_codes")).all())
        assert raw not in dump and made.code not in dump


def test_a_request_with_a_code_is_one_unit_and_its_event_names_the_code(vault_, cast):
    made = make(vault_, cast["amina"])
    fields = {"categories": ["health.allergies"], "purpose": "treatment", "reason": "Walk-in appointment"}
    with pytest.raises(InvalidInput), vault_.transaction() as session:
        share_codes.request_with_code(
            session, vault_.keys, cast["clinic"], made.code, limits=vault_.limits, now=T0, **{**fields, "reason": ""}
        )
    with vault_.transaction() as session:  # the failed request left the code unused
        request = share_codes.request_with_code(
            session, vault_.keys, cast["clinic"], made.code, limits=vault_.limits, now=T0, **fields
        )
    assert (request.subject_id, request.requester_id) == (cast["amina"].id, cast["clinic"].id)
    assert request.status == "pending"
    with vault_.read_transaction() as session:
        code_id = session.scalars(select(ShareCode.id)).one()
        event = session.scalars(select(Event).where(Event.kind == "access-request.created")).one()
        assert json.loads(event.data)["share_code_id"] == code_id
        assert made.code.replace("-", "") not in event.data
        seen, _ = access_requests.list_requests(session, vault_.keys, cast["amina"], now=T0)
        assert [r.id for r in seen] == [request.id]


def test_erasure_deletes_the_residents_codes(vault_, cast):
    made = make(vault_, cast["amina"])
    erasure.erase(vault_, cast["amina"], cast["amina"].id)
    with vault_.read_transaction() as session:
        assert session.scalars(select(ShareCode)).all() == []
        assert session.scalars(select(AccessRequest)).all() == []
    with pytest.raises(NotFound):
        redeem(vault_, cast["clinic"], made.code)


def test_migration_0009_adds_the_table_and_can_be_undone(vault_, cast):
    make(vault_, cast["amina"])
    engine = vault_.engine
    _alembic(engine, "downgrade", "0008")
    with engine.connect() as connection:
        assert "share_codes" not in sa.inspect(connection).get_table_names()
    _alembic(engine, "upgrade", "head")
    assert schema.is_current(engine)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    made = make(vault_, cast["amina"])
    assert redeem(vault_, cast["clinic"], made.code).subject_id == cast["amina"].id
