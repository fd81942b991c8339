"""A clinic's own accesses: its reads, refusals and declarations, never another's; names only with consent."""

from datetime import timedelta

import pytest

from tests.api.conftest import T0
from vault.consent import break_glass, consent
from vault.core.caller import Caller
from vault.core.errors import Forbidden, InvalidInput, NotFound
from vault.identity import principals
from vault.records import records
from vault.rights.own_accesses import own_accesses


@pytest.fixture
def cast(vault_):
    with vault_.transaction() as session:
        made = {
            name: principals.create_principal(session, vault_.keys, role=role, name=name.title(), now=T0)[0]
            for name, role in (("amina", "resident"), ("tomasz", "resident"), ("clinic", "clinic"), ("other", "clinic"))
        }
    return {name: Caller(info.id, info.role) for name, info in made.items()}


def test_own_accesses_lists_mine_newest_first_with_names_only_where_consent_was_given(vault_, cast):
    with vault_.transaction() as session:
        mine = records.create_record(
            session, vault_.keys, cast["amina"], subject_id=cast["amina"].id, category="health.labs",
            content={"v": 1}, title="Labs", purpose=None, now=T0,
        )  # fmt: skip
        consent.create_grant(
            session, cast["amina"], subject_id=cast["amina"].id, grantee_id=cast["clinic"].id,
            categories=["health.*"], purpose="treatment", actions=["read"], expires_at=T0 + timedelta(days=5),
            limits=vault_.limits, now=T0,
        )  # fmt: skip
        consent.create_grant(
            session, cast["amina"], subject_id=cast["amina"].id, grantee_id=cast["other"].id,
            categories=["health.*"], purpose="treatment", actions=["read"], expires_at=T0 + timedelta(days=5),
            limits=vault_.limits, now=T0,
        )  # fmt: skip
    with vault_.transaction() as session:
        records.read_record(session, vault_.keys, cast["clinic"], mine.id, purpose="treatment", now=T0)
        records.read_record(session, vault_.keys, cast["other"], mine.id, purpose="treatment", now=T0)
    with pytest.raises(NotFound), vault_.transaction() as session:  # Tomasz gave nothing: refused as unknown
        records.list_records(
            session, vault_.keys, cast["clinic"], subject_id=cast["tomasz"].id, purpose="treatment", now=T0
        )
    with vault_.read_transaction() as session:
        found = own_accesses(session, vault_.keys, cast["clinic"], now=T0)
    assert found.total == 2 and found.next_before is None
    refused, read = found.items
    assert (read.entry.outcome, read.entry.record_id, read.subject_name) == ("permitted", mine.id, "Amina")
    assert (refused.entry.outcome, refused.subject_id, refused.subject_name) == ("refused", cast["tomasz"].id, None)
    assert refused.entry.ledger_index > read.entry.ledger_index


def test_paging_and_roles(vault_, cast):
    with vault_.transaction() as session:
        for _ in range(3):
            break_glass.declare(
                session, vault_.keys, cast["clinic"], subject_id=cast["tomasz"].id, reason="Collapsed",
                code="unconscious", limits=vault_.limits, now=T0,
            )  # fmt: skip
    with vault_.read_transaction() as session:
        first = own_accesses(session, vault_.keys, cast["clinic"], limit=2, now=T0)
        assert first.total == 3 and len(first.items) == 2 and first.next_before is not None
        assert first.items[0].subject_name == "Tomasz"  # an emergency declared: the name is known
        rest = own_accesses(session, vault_.keys, cast["clinic"], limit=2, before=first.next_before, now=T0)
        assert len(rest.items) == 1 and rest.next_before is None
        assert own_accesses(session, vault_.keys, cast["other"], now=T0).total == 0
        for bad in ({"limit": 0}, {"before": -1}):
            with pytest.raises(InvalidInput):
                own_accesses(session, vault_.keys, cast["clinic"], now=T0, **bad)
        with pytest.raises(Forbidden):
            own_accesses(session, vault_.keys, cast["amina"], now=T0)
