"""Looking a resident up (vault.compliance.lookup) and the counts behind the compliance charts (audit_search.volume)."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from vault.compliance import audit_search, lookup, overview
from vault.core.caller import Caller
from vault.core.errors import Forbidden, InvalidInput
from vault.identity import logins, principals
from vault.ledger.events import DomainEvent, emit
from vault.storage.models import Event
from vault.verification import verify


def make(vault_, role, name):
    with vault_.transaction() as session:
        info, _ = principals.create_principal(session, vault_.keys, role=role, name=name, now=vault_.now())
    return Caller(id=info.id, role=role)


def looked_up(vault_) -> list[Event]:
    with vault_.read_transaction() as session:
        rows = list(session.scalars(select(Event).where(Event.kind == lookup.LOOKED_UP).order_by(Event.ledger_index)))
        session.expunge_all()
    return rows


def test_names_compare_whole_after_folding():
    assert lookup.normalise_name("  Amina\u00a0 YUSUF ") == lookup.normalise_name("amina yusuf")
    assert lookup.normalise_name("Ａｍｉｎａ") == "amina"
    assert lookup.normalise_name("Amina") != lookup.normalise_name("Amina Yusuf")


def test_look_up_by_name_finds_every_namesake_and_logs_each(vault_):
    officer = make(vault_, "compliance", "Dana")
    first = make(vault_, "resident", "Sam Lee")
    second = make(vault_, "resident", "sam  lee")
    make(vault_, "clinic", "Sam Lee")  # not a resident
    with vault_.transaction() as session:
        hits = lookup.look_up(session, vault_.keys, officer, by="name", value="SAM LEE", now=vault_.now())
    assert {h.id for h in hits} == {first.id, second.id}
    events = looked_up(vault_)
    assert {e.subject_id for e in events} == {first.id, second.id}
    assert all(e.actor_id == officer.id and "sam" not in e.data.lower() for e in events)
    with vault_.read_transaction() as session:
        verify.verify(session)  # the new kind's entries verify like any other


def test_a_miss_is_logged_without_a_subject_and_an_erased_resident_is_a_miss(vault_):
    officer = make(vault_, "compliance", "Dana")
    gone = make(vault_, "resident", "Erased Person")
    with vault_.transaction() as session:
        logins.set_login(session, vault_.keys, gone.id, "erased-person")
    from vault.storage.models import Principal

    with vault_.transaction() as session:
        session.get(Principal, gone.id).erased_at = vault_.now()
    with vault_.transaction() as session:
        assert lookup.look_up(session, vault_.keys, officer, by="name", value="Erased Person", now=vault_.now()) == []
        assert lookup.look_up(session, vault_.keys, officer, by="login", value="erased-person", now=vault_.now()) == []
    events = looked_up(vault_)
    assert len(events) == 2 and all(e.subject_id is None and '"found":false' in e.data for e in events)


def test_only_compliance_looks_up_and_bad_input_is_refused(vault_):
    clinic = make(vault_, "clinic", "Riverside")
    officer = make(vault_, "compliance", "Dana")
    with vault_.transaction() as session:
        with pytest.raises(Forbidden):
            lookup.look_up(session, vault_.keys, clinic, by="name", value="x", now=vault_.now())
        with pytest.raises(InvalidInput):
            lookup.look_up(session, vault_.keys, officer, by="postcode", value="x", now=vault_.now())
        with pytest.raises(InvalidInput):
            lookup.look_up(session, vault_.keys, officer, by="name", value="   ", now=vault_.now())
    assert looked_up(vault_) == []


def test_a_name_scan_past_its_cap_is_refused(vault_):
    for i in range(3):
        make(vault_, "resident", f"Resident {i}")
    with vault_.read_transaction() as session:
        assert lookup.find_by_name(session, vault_.keys, "Resident 1", cap=3)
        with pytest.raises(InvalidInput, match="look them up by login"):
            lookup.find_by_name(session, vault_.keys, "Resident 1", cap=2)


def test_volume_and_top_actors_count_what_the_search_matches(vault_):
    officer = make(vault_, "compliance", "Dana")
    clinic = make(vault_, "clinic", "Riverside")
    landlord = make(vault_, "landlord", "Harbour")
    resident = make(vault_, "resident", "Amina")
    now = vault_.now()
    plan = [(clinic, "access.permitted", 0), (clinic, "access.permitted", 1), (clinic, "access.refused", 1)]
    plan += [(landlord, "access.refused", 2), (resident, "consent.granted", 2)]
    with vault_.transaction() as session:
        for actor, kind, days in plan:
            emit(
                session,
                DomainEvent(
                    kind=kind,
                    occurred_at=now - timedelta(days=days),
                    actor_id=actor.id,
                    subject_id=resident.id,
                    data={"action": "read", "category": "health.labs", "purpose": "treatment"},
                ),
            )
    days = [(now - timedelta(days=d, hours=1), now - timedelta(days=d) + timedelta(hours=1)) for d in (2, 1, 0)]
    with vault_.read_transaction() as session:
        everything = audit_search.EventFilter(subject_id=resident.id)
        counts = audit_search.volume(session, officer, everything, buckets=days)
        assert counts == [{"refused": 1, "other": 1}, {"permitted": 1, "refused": 1}, {"permitted": 1}]
        only = audit_search.volume(session, officer, audit_search.EventFilter(outcome="refused"), buckets=days)
        assert [sum(c.values()) for c in only] == [1, 1, 0]
        top = audit_search.top_actors(session, officer, everything, limit=1)
        assert top == [(clinic.id, {"permitted": 2, "refused": 1})]
        three = dict(audit_search.top_actors(session, officer, everything, limit=3))
        assert three == {
            clinic.id: {"permitted": 2, "refused": 1},
            landlord.id: {"refused": 1},
            resident.id: {"other": 1},
        }
        assert audit_search.time_span(session, officer, everything) is not None
        assert audit_search.time_span(session, officer, audit_search.EventFilter(actor_id=officer.id)) is None
        with pytest.raises(Forbidden):
            audit_search.volume(session, clinic, everything, buckets=days)
        assert overview.pending_reviews(session, officer) == 0
        with pytest.raises(Forbidden):
            overview.pending_reviews(session, clinic)
