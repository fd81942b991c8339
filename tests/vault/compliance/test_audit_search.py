"""Compliance search: exactly the matching events, exact totals, stable pages, on 10,000+ events.

The expected answers come from a reference filter written here in plain
Python over the events' data, independent of the search columns and SQL the
service uses.
"""

import json
import random
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.bulk_events import append_many, generate, make_cast
from vault.compliance import audit_search
from vault.compliance.audit_search import EventFilter
from vault.core.bounds import MAX_AUDIT_PAGE
from vault.core.caller import Caller
from vault.core.errors import Forbidden, InvalidInput
from vault.ledger.events import DomainEvent, emit
from vault.storage import audit_index
from vault.storage.models import Event, EventCategory
from vault.verification import verify

START = datetime(2026, 10, 1, tzinfo=UTC)
OFFICER = Caller(id="p-officer", role="compliance")
COUNT = 10_000


def reference_match(event: dict, flt: EventFilter) -> bool:
    """The meaning of a filter, stated directly over an event's kind and data."""
    data = event["data"]
    if flt.subject_id is not None and event["subject_id"] != flt.subject_id:
        return False
    if flt.actor_id is not None and event["actor_id"] != flt.actor_id:
        return False
    if flt.kinds and not any(
        event["kind"] == k or (k.endswith(".*") and event["kind"].split(".")[0] == k[:-2]) for k in flt.kinds
    ):
        return False
    if flt.since is not None and event["occurred_at"] < flt.since:
        return False
    if flt.until is not None and event["occurred_at"] >= flt.until:
        return False
    if (
        flt.outcome is not None
        and {"access.permitted": "permitted", "access.refused": "refused"}.get(event["kind"]) != flt.outcome
    ):
        return False
    if flt.purpose is not None and data.get("purpose") != flt.purpose:
        return False
    if flt.category is not None:
        named = [data.get("category")] + list(data.get("categories") or [])
        wanted = flt.category
        if wanted.endswith(".*"):
            hit = any(isinstance(c, str) and c.startswith(wanted[:-1]) for c in named)
        else:
            hit = any(c == wanted or c == wanted.split(".")[0] + ".*" for c in named)
        if not hit:
            return False
    return True


def all_pages(session, flt: EventFilter, limit: int) -> tuple[list[int], int, int]:
    page = audit_search.search(session, OFFICER, flt, limit=limit)
    found, total, as_of = [line.ledger_index for line in page.items], page.total, page.as_of
    while page.next_after is not None:
        page = audit_search.search(session, OFFICER, flt, limit=limit, after=page.next_after, as_of=as_of)
        assert page.total == total
        found += [line.ledger_index for line in page.items]
    return found, total, as_of


@pytest.fixture
def big_trail(vault_):
    """10,000 generated events plus a few emitted one by one; returns them as the reference sees them."""
    rng = random.Random(20261125)
    cast = make_cast(rng)
    events = generate(rng, cast, COUNT, start=START, span=timedelta(days=30))
    started = time.perf_counter()
    with vault_.transaction() as session:
        append_many(session, events)
        for n in range(20):  # through the real emit(), on top
            emit(
                session,
                DomainEvent(
                    kind="access.refused",
                    occurred_at=START + timedelta(days=30, minutes=n),
                    actor_id=cast.clinics[0],
                    subject_id=cast.residents[0],
                    data={
                        "action": "read",
                        "category": "health.labs",
                        "purpose": "research",
                        "actor_role": "clinic",
                        "reason": "expired",
                        "record_id": "r-x",
                    },
                ),
            )
    built = time.perf_counter() - started
    with vault_.read_transaction() as session:
        rows = session.execute(
            select(
                Event.ledger_index, Event.kind, Event.occurred_at, Event.actor_id, Event.subject_id, Event.data
            ).order_by(Event.ledger_index)
        ).all()
    reference = [
        {
            "ledger_index": r[0],
            "kind": r[1],
            "occurred_at": r[2],
            "actor_id": r[3],
            "subject_id": r[4],
            "data": json.loads(r[5]),
        }
        for r in rows
    ]
    assert len(reference) == COUNT + 20
    return cast, reference, built


def test_search_returns_exactly_the_matching_events_with_exact_totals(vault_, big_trail):
    cast, reference, built = big_trail
    assert built < 30  # a few seconds in practice; the bound only catches a pathological slowdown
    resident, clinic, landlord = cast.residents[3], cast.clinics[2], cast.landlords[1]
    filters = [
        EventFilter(),
        EventFilter(subject_id=resident),
        EventFilter(actor_id=clinic, outcome="refused"),
        EventFilter(kinds=("access.*",), purpose="treatment", category="health.labs"),
        EventFilter(category="health.*", since=START + timedelta(days=3), until=START + timedelta(days=9, hours=5)),
        EventFilter(kinds=("consent.granted", "break-glass.declared"), category="tenancy.income"),
        EventFilter(subject_id=resident, kinds=("access.permitted",), outcome="permitted", purpose="emergency"),
        EventFilter(actor_id=landlord, category="tenancy.*", outcome="permitted"),
        EventFilter(outcome="refused", purpose="research", since=START + timedelta(days=29, hours=23)),
        EventFilter(subject_id="p-nobody", purpose="legal"),  # matches nothing
        EventFilter(kinds=("record.*",), until=START + timedelta(days=1)),
    ]
    started = time.perf_counter()
    with vault_.read_transaction() as session:
        for flt in filters:
            expected = [e["ledger_index"] for e in reference if reference_match(e, flt)]
            found, total, as_of = all_pages(session, flt, limit=1000)
            assert found == expected, flt
            assert total == len(expected), flt
            assert as_of == len(reference)
    searched = time.perf_counter() - started
    assert searched < 30
    # Most filters are selective; the broad ones really were broad.
    assert len([e for e in reference if reference_match(e, filters[0])]) == COUNT + 20
    assert 0 < len([e for e in reference if reference_match(e, filters[3])]) < COUNT

    # Each line carries its leaf: the inclusion proof for its index names the same hash,
    # and the generated ledger is sound ('civicvault verify').
    with vault_.read_transaction() as session:
        page = audit_search.search(session, OFFICER, EventFilter(kinds=("access.refused",)), limit=5)
        for line in page.items:
            proof = audit_search.ledger.inclusion(session, leaf_index=line.ledger_index, tree_size=page.as_of)
            assert proof.leaf_hash == line.leaf_hash
            assert line.outcome == "refused" and not line.erased and line.data["reason"]
        report = verify.verify(session)
    assert report.size == len(reference)


def test_search_columns_are_derived_the_same_by_emit(vault_):
    """emit() fills outcome, purpose and categories from the data, as audit_index says."""
    samples = [
        (
            "access.permitted",
            {"action": "list", "category": "*", "purpose": "treatment", "categories": ["health.labs", "health.notes"]},
        ),
        (
            "access.refused",
            {"action": "read", "category": "tenancy.lease", "purpose": "tenancy-screening", "reason": "no-grant"},
        ),
        ("consent.granted", {"grant_id": "g-1", "categories": ["health.*", "tenancy.income"], "purpose": "legal"}),
        ("consent.revoked", {"grant_id": "g-1", "grantee_id": "p-x"}),
        ("record.created", {"record_id": "r-1", "category": "health.labs", "version": 1, "purpose": None}),
    ]
    with vault_.transaction() as session:
        receipts = [
            emit(session, DomainEvent(kind=k, occurred_at=START, actor_id="p-a", subject_id="p-b", data=d))
            for k, d in samples
        ]
    indices = [r.leaf_index for r in receipts]  # given by the sequencer once the transaction committed
    with vault_.read_transaction() as session:
        for index, (kind, data) in zip(indices, samples, strict=True):
            row = session.get(Event, index)
            cats = tuple(
                session.scalars(
                    select(EventCategory.category)
                    .where(EventCategory.ledger_index == index)
                    .order_by(EventCategory.category)
                )
            )
            assert (row.outcome, row.purpose) == (audit_index.outcome_of(kind), audit_index.purpose_of(data))
            assert cats == audit_index.categories_of(data)
    assert audit_index.categories_of(samples[0][1]) == ("health.labs", "health.notes")
    assert audit_index.categories_of(samples[2][1]) == ("health.*", "tenancy.income")
    assert audit_index.outcome_of("consent.revoked") is None and audit_index.purpose_of(samples[4][1]) is None


def test_pages_neither_skip_nor_repeat_while_events_are_appended(vault_):
    rng = random.Random(7)
    cast = make_cast(rng, residents=3, clinics=2, landlords=1)
    with vault_.transaction() as session:
        append_many(session, generate(rng, cast, 600, start=START, span=timedelta(days=2)))
    flt = EventFilter(kinds=("access.*",))
    seen, pages = [], 0
    with vault_.read_transaction() as session:
        first = audit_search.search(session, OFFICER, flt, limit=37)
    expected_total = first.total
    seen += [line.ledger_index for line in first.items]
    after, as_of = first.next_after, first.as_of
    while after is not None:
        # Between every two pages, more matching events arrive (and one lands "in the past" by its clock).
        with vault_.transaction() as session:
            append_many(session, generate(rng, cast, 25, start=START - timedelta(days=1), span=timedelta(days=4)))
        with vault_.read_transaction() as session:
            page = audit_search.search(session, OFFICER, flt, limit=37, after=after, as_of=as_of)
        assert page.total == expected_total and page.as_of == as_of
        seen += [line.ledger_index for line in page.items]
        after, pages = page.next_after, pages + 1
    assert pages > 5
    assert len(seen) == len(set(seen)) == expected_total
    assert seen == sorted(seen) and max(seen) < as_of
    with vault_.read_transaction() as session:
        fresh = audit_search.search(session, OFFICER, flt, limit=1)
    assert fresh.as_of > as_of and fresh.total > expected_total  # a new search sees the new events


def test_only_compliance_officers_search(vault_):
    with vault_.read_transaction() as session:
        for role in ("resident", "clinic", "landlord", "admin", "witness"):
            with pytest.raises(Forbidden):
                audit_search.search(session, Caller(id="p-x", role=role), EventFilter())


@pytest.mark.parametrize(
    "flt, message",
    [
        (EventFilter(kinds=("access.granted",)), "Unknown event kind"),
        (EventFilter(kinds=("nope.*",)), "Unknown event kind"),
        (EventFilter(outcome="maybe"), "outcome"),
        (EventFilter(purpose="curiosity"), "purpose"),
        (EventFilter(category="health.everything"), "category"),
        (EventFilter(subject_id="p-' OR 1=1 --"), "well-formed"),
        (EventFilter(since=START, until=START - timedelta(seconds=1)), "from"),
        (EventFilter(since=datetime(2026, 1, 1)), "time zone"),
    ],
)
def test_malformed_filters_are_invalid_input(vault_, flt, message):
    with vault_.read_transaction() as session, pytest.raises(InvalidInput, match=message):
        audit_search.search(session, OFFICER, flt)


def test_limit_and_as_of_are_bounded(vault_):
    with vault_.read_transaction() as session:
        with pytest.raises(InvalidInput, match="limit"):
            audit_search.search(session, OFFICER, EventFilter(), limit=MAX_AUDIT_PAGE + 1)
        with pytest.raises(InvalidInput, match="as_of"):
            audit_search.search(session, OFFICER, EventFilter(), as_of=10)


def test_verify_catches_edited_search_columns(vault_):
    """An edited outcome, purpose or category could hide events from a search: 'civicvault verify' names the entry."""
    from sqlalchemy import text

    from vault.core.errors import LedgerIntegrityError

    rng = random.Random(5)
    with vault_.transaction() as session:
        append_many(session, generate(rng, make_cast(rng, residents=3), 300, start=START, span=timedelta(days=1)))
    with vault_.read_transaction() as session:
        refusal = session.scalar(
            select(Event.ledger_index).where(Event.kind == "access.refused").order_by(Event.ledger_index)
        )
        granted = session.scalar(
            select(Event.ledger_index).where(Event.kind == "consent.granted").order_by(Event.ledger_index)
        )
        verify.verify(session)
    edits = [
        ("UPDATE events SET outcome = NULL WHERE ledger_index = :i", refusal, "search columns"),
        (
            "UPDATE events SET purpose = CASE WHEN purpose = 'legal' THEN 'treatment' ELSE 'legal' END WHERE "
            "ledger_index = :i",
            refusal,
            "search columns",
        ),
        ("DELETE FROM event_categories WHERE ledger_index = :i", granted, "search categories"),
        (
            "INSERT INTO event_categories (ledger_index, category) VALUES (:i, 'tenancy.zzz')",
            granted,
            "search categories",
        ),
    ]
    for statement, index, message in edits:
        with vault_.engine.begin() as connection:
            saved_outcome, saved_purpose = connection.execute(
                text("SELECT outcome, purpose FROM events WHERE ledger_index = :i"), {"i": index}
            ).one()
            saved_categories = (
                connection.execute(text("SELECT category FROM event_categories WHERE ledger_index = :i"), {"i": index})
                .scalars()
                .all()
            )
            assert connection.execute(text(statement), {"i": index}).rowcount >= 1
        with (
            vault_.read_transaction() as session,
            pytest.raises(LedgerIntegrityError, match=f"entry {index}: its {message}"),
        ):
            verify.verify(session)
        with vault_.engine.begin() as connection:  # put it back
            connection.execute(
                text("UPDATE events SET outcome = :o, purpose = :p WHERE ledger_index = :i"),
                {"o": saved_outcome, "p": saved_purpose, "i": index},
            )
            connection.execute(text("DELETE FROM event_categories WHERE ledger_index = :i"), {"i": index})
            for category in saved_categories:
                connection.execute(text("INSERT INTO event_categories VALUES (:i, :c)"), {"i": index, "c": category})
        with vault_.read_transaction() as session:
            verify.verify(session)
