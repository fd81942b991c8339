"""Receipts of pending events over HTTP: ``GET /api/v1/ledger/entries/{leaf_hash}``, back-pressure, ``/healthz``.

The vault here waits for no sequencer (``CIVICVAULT_SEQUENCER=external``,
no wait), as when ``civicvault sequencer`` is down: actions still commit,
their receipts say ``pending``, and every one resolves to an index and a
valid inclusion proof once a sequencer runs, within the stated bound.
"""

import dataclasses
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

import crypto
from tests.api.conftest import add_record, grant
from tests.api.helpers import assert_problem
from vault.core.config import SequencerSettings
from vault.storage.models import PendingEvent

MAX_PENDING = 40


@pytest.fixture
def settings(settings):
    return dataclasses.replace(
        settings, sequencer=SequencerSettings(mode="external", receipt_wait_ms=0, max_pending=MAX_PENDING)
    )


def read(client, who, record, purpose="treatment"):
    response = client.get(f"/api/v1/records/{record}?purpose={purpose}", headers=who.auth)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["receipt"]


def test_receipts_are_pending_without_a_sequencer_and_each_resolves_with_a_valid_proof(client, vault_, cast, clock):
    record = add_record(client, cast.amina)
    grant(client, cast.amina, cast.clinic, clock)
    receipts = [read(client, cast.clinic, record) for _ in range(5)]
    assert all(r["status"] == "pending" and r["leaf_index"] is None for r in receipts)
    pending = client.get(f"/api/v1/ledger/entries/{receipts[0]['leaf_hash']}", headers=cast.clinic.auth)
    assert pending.status_code == 200
    assert pending.get_json()["status"] == "pending" and pending.get_json()["queued_at"]
    health = client.get("/healthz").get_json()
    assert health["ledger"]["pending"] >= 5 and health["ledger"]["sequencer"] == "external"

    # A sequencer starts (as `civicvault sequencer` would): every receipt resolves within the bound.
    stop = threading.Event()
    loop = threading.Thread(target=vault_.sequencer.run, args=(stop,), kwargs={"interval": 0.005})
    loop.start()
    bound = 5.0  # seconds; the documented bound (CIVICVAULT_LEDGER_PENDING_BOUND) is 60
    try:
        deadline = time.monotonic() + bound
        resolved = {}
        while len(resolved) < len(receipts) and time.monotonic() < deadline:
            for receipt in receipts:
                answer = client.get(f"/api/v1/ledger/entries/{receipt['leaf_hash']}", headers=cast.amina.auth)
                if answer.get_json()["status"] == "sequenced":
                    resolved[receipt["leaf_hash"]] = answer.get_json()
            time.sleep(0.01)
    finally:
        stop.set()
        loop.join()
    assert len(resolved) == len(receipts)
    indices = set()
    for leaf_hash, entry in resolved.items():
        proof = entry["inclusion"]
        assert proof["leaf_hash"] == leaf_hash and proof["leaf_index"] == entry["leaf_index"]
        crypto.verify_inclusion(
            proof["leaf_index"],
            proof["tree_size"],
            bytes.fromhex(leaf_hash),
            [bytes.fromhex(h) for h in proof["audit_path"]],
            bytes.fromhex(proof["root_hash"]),
        )
        indices.add(entry["leaf_index"])
    assert len(indices) == len(receipts)
    assert client.get("/healthz").get_json()["ledger"]["pending"] == 0


def test_an_unknown_leaf_hash_is_404_and_a_malformed_one_400(client, cast):
    assert_problem(client.get("/api/v1/ledger/entries/" + "ab" * 32, headers=cast.amina.auth), 404)
    for bad in ("xyz", "AB" * 32, "ab" * 33, "ab" * 31 + "zz"):
        assert_problem(client.get(f"/api/v1/ledger/entries/{bad}", headers=cast.amina.auth), 400)
    assert_problem(client.get("/api/v1/ledger/entries/" + "ab" * 32), 401)


def test_back_pressure_refuses_actions_with_503_and_retry_after_and_loses_nothing(client, vault_, cast, clock):
    record = add_record(client, cast.amina)
    grant(client, cast.amina, cast.clinic, clock)
    answers = []
    for _ in range(MAX_PENDING + 5):
        vault_.ledger_state.backlog_checked = float("-inf")  # read the gauge every time, not every 0.5 s
        answers.append(client.get(f"/api/v1/records/{record}?purpose=treatment", headers=cast.clinic.auth))
    refused = [a for a in answers if a.status_code == 503]
    assert refused, "the backlog limit never refused an action"
    assert all(a.status_code in (200, 503) for a in answers)
    body = assert_problem(refused[0], 503)
    assert body["type"] == "urn:civicvault:problem:ledger-busy"
    assert refused[0].headers["Retry-After"] == "5"
    assert "content" not in body
    health = client.get("/healthz").get_json()
    assert health["status"] == "degraded" and health["ledger"]["pending"] >= MAX_PENDING
    # The sequencer catches up: actions are accepted again.
    vault_.sequencer.drain()
    vault_.ledger_state.backlog_checked = float("-inf")
    assert client.get("/healthz").get_json()["status"] == "ok"
    assert read(client, cast.clinic, record)["status"] == "pending"


def test_healthz_is_degraded_when_an_event_waits_past_the_bound(client, vault_, cast):
    add_record(client, cast.amina)
    with vault_.write_transaction() as session:
        session.execute(update(PendingEvent).values(queued_at=datetime.now(UTC) - timedelta(minutes=5)))
    health = client.get("/healthz").get_json()
    assert health["status"] == "degraded" and health["ledger"]["oldest_pending_seconds"] > 60
