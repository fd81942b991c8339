"""The ledger under use: gap-free indices under concurrent writers, proofs, bad queries, no personal data."""

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select, text

import crypto
from tests.api.conftest import add_record, grant
from tests.api.helpers import assert_problem
from vault.ledger import ledger
from vault.storage.models import Event, LedgerHead, LedgerNode


def test_concurrent_writers_get_unique_gap_free_indices(app, vault_, cast, clock):
    record = add_record(app.test_client(), cast.amina)
    grant(app.test_client(), cast.amina, cast.clinic, clock)

    def work(i):
        with app.test_client() as c:
            if i % 2:
                return c.get(f"/api/v1/records/{record}?purpose=treatment", headers=cast.clinic.auth).get_json()[
                    "receipt"
                ]["leaf_index"]
            return c.get(f"/api/v1/records/{record}", headers=cast.amina.auth).get_json()["receipt"]["leaf_index"]

    with ThreadPoolExecutor(max_workers=16) as pool:
        indices = list(pool.map(work, range(48)))
    assert len(set(indices)) == 48
    with vault_.read_transaction() as session:
        size = session.get(LedgerHead, 1).size
        stored = session.scalars(select(Event.ledger_index).order_by(Event.ledger_index)).all()
        assert stored == list(range(size))
        leaves = session.scalars(select(LedgerNode.hash).where(LedgerNode.level == 0).order_by(LedgerNode.index)).all()
        assert crypto.root_from_leaves(leaves) == ledger.root(session, size)
        for event in session.scalars(select(Event)):
            assert ledger.leaf_hash_of(event.salt, event.body) == leaves[event.ledger_index]


def test_a_failed_action_leaves_no_entry(client, vault_, cast):
    with vault_.read_transaction() as session:
        before = ledger.size(session)
    bad = client.put("/api/v1/records/r-unknown", json={"content": {}}, headers=cast.amina.auth)
    assert_problem(bad, 404)
    with vault_.read_transaction() as session:
        # The refusal is recorded (an unknown id leaves the same trace as a foreign one); nothing else.
        assert ledger.size(session) == before + 1
        assert session.get(Event, before).kind == "access.refused"
    stale_record = add_record(client, cast.amina)
    with vault_.read_transaction() as session:
        after_create = ledger.size(session)
    assert after_create == before + 3  # the refusal, then access.permitted (write) and record.created
    conflict = client.put(
        f"/api/v1/records/{stale_record}", json={"content": {}, "expected_version": 5}, headers=cast.amina.auth
    )
    assert_problem(conflict, 409)
    with vault_.read_transaction() as session:
        assert ledger.size(session) == after_create
        assert session.scalar(select(func.count()).select_from(Event)) == after_create


def test_a_refusal_is_appended_in_its_own_transaction(client, vault_, cast):
    record = add_record(client, cast.amina)
    with vault_.read_transaction() as session:
        before = ledger.size(session)
    assert_problem(client.get(f"/api/v1/records/{record}?purpose=treatment", headers=cast.clinic.auth), 404)
    with vault_.read_transaction() as session:
        assert ledger.size(session) == before + 1
        last = session.get(Event, before)
        assert last.kind == "access.refused" and json.loads(last.data)["reason"] == "no-grant"


def test_when_the_ledger_cannot_append_no_content_is_released(client, vault_, cast):
    record = add_record(client, cast.amina, content={"secret": "SECRET-CONTENT"})
    with vault_.engine.begin() as connection:  # the pending events' table is gone: no event can be recorded
        connection.execute(text("ALTER TABLE ledger_pending RENAME TO ledger_pending_gone"))
    try:
        response = client.get(f"/api/v1/records/{record}", headers=cast.amina.auth)
    finally:
        with vault_.engine.begin() as connection:
            connection.execute(text("ALTER TABLE ledger_pending_gone RENAME TO ledger_pending"))
    # An integrity incident: the audit trail is unavailable (503, no retry hint), never a conflict to retry.
    assert assert_problem(response, 503)["type"] == "urn:civicvault:problem:ledger-unavailable"
    assert "Retry-After" not in response.headers
    assert "SECRET-CONTENT" not in response.get_data(as_text=True)


def test_no_ledger_entry_carries_identifiers_or_content(client, vault_, cast, clock):
    record = add_record(client, cast.amina, "health.labs", content={"marker": "MARKER-CONTENT"}, title="MARKER-TITLE")
    grant(client, cast.amina, cast.clinic, clock, categories=["health.labs"])
    client.get(f"/api/v1/records/{record}?purpose=treatment", headers=cast.clinic.auth)
    markers = [cast.amina.id, cast.clinic.id, record, "health.labs", "MARKER-CONTENT", "MARKER-TITLE", "treatment"]
    with vault_.read_transaction() as session:
        events = session.scalars(select(Event).order_by(Event.ledger_index)).all()
        nodes = session.scalars(select(LedgerNode.hash)).all()
    entries = [ledger.entry_bytes(e.salt, e.body) for e in events]
    assert all(len(e) == 33 and e[0] == 1 for e in entries)
    for blob in entries + list(nodes):
        for marker in markers:
            assert marker.encode() not in blob and marker.encode().hex().encode() not in blob
    # The off-chain bodies carry ids and codes by design, but never content or titles.
    for event in events:
        assert b"MARKER" not in event.body


@pytest.mark.parametrize(
    "query",
    [
        "leaf_index=-1",
        "leaf_index=x",
        "leaf_index=0&tree_size=0",
        "leaf_index=5&tree_size=3",
        "leaf_index=0&tree_size=999999",
        "tree_size=1",
        "leaf_index=0&extra=1",
    ],
)
def test_bad_inclusion_queries_are_400(client, cast, query):
    add_record(client, cast.amina)
    assert_problem(client.get(f"/api/v1/ledger/proofs/inclusion?{query}", headers=cast.amina.auth), 400)


@pytest.mark.parametrize("query", ["first=0", "first=3&second=2", "first=1&second=999999", "second=1", "first=a"])
def test_bad_consistency_queries_are_400(client, cast, query):
    add_record(client, cast.amina)
    add_record(client, cast.amina)
    assert_problem(client.get(f"/api/v1/ledger/proofs/consistency?{query}", headers=cast.amina.auth), 400)


def test_proofs_need_a_token(client, cast):
    add_record(client, cast.amina)
    assert_problem(client.get("/api/v1/ledger/proofs/inclusion?leaf_index=0"), 401)


def test_a_consistency_proof_from_the_api_verifies(client, cast):
    for i in range(7):
        add_record(client, cast.amina, content={"i": i})
    for first in (1, 3, 4, 9, 13):
        proof = client.get(f"/api/v1/ledger/proofs/consistency?first={first}", headers=cast.clinic.auth).get_json()
        crypto.verify_consistency(
            proof["first"],
            proof["second"],
            bytes.fromhex(proof["first_root"]),
            bytes.fromhex(proof["second_root"]),
            [bytes.fromhex(h) for h in proof["consistency_path"]],
        )
