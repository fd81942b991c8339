"""A ledger that cannot append is an integrity incident: 503, no content, nothing done, logged loudly.

Regression tests for appends that failed and were answered 409 "conflicts with
a concurrent change; retry it". Faults are injected into the database on both
backends: a trigger that refuses every append, the ledger head row removed,
the events table renamed away. Each is undone afterwards (PostgreSQL keeps
one schema for the whole run).
"""

import logging

import pytest
from sqlalchemy import text

from tests.api.conftest import add_record
from tests.api.helpers import assert_problem
from vault.core.ids import new_id

LEDGER_UNAVAILABLE = "urn:civicvault:problem:ledger-unavailable"

# The action's transaction appends by inserting into ledger_pending (docs/ledger-format.md section 10):
# these faults make that insert fail. A broken sequencer (the head row gone) is another matter: the
# event is durable as pending, and the action goes ahead (test_a_broken_sequencer_...).
FAULTS = {
    "sqlite": {
        "trigger": (
            [
                "CREATE TRIGGER cv_break_ledger BEFORE INSERT ON ledger_pending "
                "BEGIN SELECT RAISE(ABORT, 'ledger broken'); END"
            ],
            ["DROP TRIGGER cv_break_ledger"],
        ),
        "pending-table-renamed": (
            ["ALTER TABLE ledger_pending RENAME TO ledger_pending_gone"],
            ["ALTER TABLE ledger_pending_gone RENAME TO ledger_pending"],
        ),
    },
    "postgresql": {
        "trigger": (
            [
                "CREATE FUNCTION cv_break_ledger() RETURNS trigger LANGUAGE plpgsql "
                "AS $$ BEGIN RAISE EXCEPTION 'ledger broken'; END $$",
                "CREATE TRIGGER cv_break_ledger BEFORE INSERT ON ledger_pending "
                "FOR EACH ROW EXECUTE FUNCTION cv_break_ledger()",
            ],
            ["DROP TRIGGER cv_break_ledger ON ledger_pending", "DROP FUNCTION cv_break_ledger()"],
        ),
        "pending-table-renamed": (
            ["ALTER TABLE ledger_pending RENAME TO ledger_pending_gone"],
            ["ALTER TABLE ledger_pending_gone RENAME TO ledger_pending"],
        ),
    },
}


@pytest.fixture(params=sorted(FAULTS["sqlite"]))
def break_ledger(request, vault_):
    """A function that breaks the ledger's appends; undone after the test."""
    statements = FAULTS[vault_.engine.dialect.name][request.param]
    state = {}

    def run(sql: list[str]) -> None:
        with vault_.engine.begin() as connection:
            for statement in sql:
                connection.execute(text(statement), state)

    def broken() -> None:
        with vault_.engine.begin() as connection:
            state["size"] = connection.execute(text("SELECT size FROM ledger_head")).scalar_one()
        run(statements[0])
        state["broken"] = True

    yield broken
    if state.get("broken"):
        run(statements[1])


def ledger_size(vault_) -> int:
    with vault_.engine.begin() as connection:
        return connection.execute(text("SELECT size FROM ledger_head")).scalar_one()


def assert_ledger_unavailable(response) -> dict:
    problem = assert_problem(response, 503)
    assert problem["type"] == LEDGER_UNAVAILABLE
    assert "audit trail is unavailable" in problem["detail"]
    assert "Retry-After" not in response.headers  # an incident, not a hiccup to retry
    assert "content" not in problem and "receipt" not in problem
    return problem


def test_a_read_while_the_ledger_cannot_append_is_503_and_releases_nothing(
    client, make_actor, break_ledger, vault_, caplog
):
    resident = make_actor("resident")
    record_id = add_record(client, resident, content={"diagnosis": "hypertension"}, title="Blood pressure")
    break_ledger()
    with caplog.at_level(logging.ERROR, logger="civicvault"):
        response = client.get(f"/api/v1/records/{record_id}", headers=resident.auth)
    assert_ledger_unavailable(response)
    text_sent = response.get_data(as_text=True)
    assert "hypertension" not in text_sent and "Blood pressure" not in text_sent
    # Logged loudly, with no ids, names or content.
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("LEDGER UNAVAILABLE" in r.getMessage() for r in errors), [r.getMessage() for r in caplog.records]
    for record in caplog.records:
        message = record.getMessage()
        assert resident.id not in message and record_id not in message and "hypertension" not in message


def test_a_write_while_the_ledger_cannot_append_is_503_and_does_nothing(client, make_actor, break_ledger, vault_):
    resident = make_actor("resident")
    clinic = make_actor("clinic")
    break_ledger()
    url = f"/api/v1/subjects/{resident.id}/records"
    assert_ledger_unavailable(
        client.post(url, json={"category": "health.notes", "content": {"n": 1}}, headers=resident.auth)
    )
    body = {
        "grantee_id": clinic.id,
        "categories": ["health.*"],
        "purpose": "treatment",
        "actions": ["read"],
        "expires_at": "2099-01-01T00:00:00Z",
    }
    response = client.post("/api/v1/consents", json=body, headers=resident.auth)
    assert response.status_code in (400, 503), response.get_json()  # a bound on the window may speak first
    if response.status_code == 503:
        assert_ledger_unavailable(response)


def test_nothing_was_kept_once_the_ledger_is_back(client, make_actor, vault_, request):
    """The failed write was rolled back whole: no record, and the ledger has no gap."""
    resident = make_actor("resident")
    size = ledger_size(vault_)
    with vault_.engine.begin() as connection:
        if vault_.engine.dialect.name == "sqlite":
            connection.execute(
                text(
                    "CREATE TRIGGER cv_break_ledger BEFORE INSERT ON ledger_pending "
                    "BEGIN SELECT RAISE(ABORT, 'ledger broken'); END"
                )
            )
        else:
            connection.execute(text("ALTER TABLE ledger_pending RENAME TO ledger_pending_gone"))
    try:
        url = f"/api/v1/subjects/{resident.id}/records"
        assert_ledger_unavailable(
            client.post(url, json={"category": "health.notes", "content": {"n": 1}}, headers=resident.auth)
        )
    finally:
        with vault_.engine.begin() as connection:
            if vault_.engine.dialect.name == "sqlite":
                connection.execute(text("DROP TRIGGER cv_break_ledger"))
            else:
                connection.execute(text("ALTER TABLE ledger_pending_gone RENAME TO ledger_pending"))
    assert ledger_size(vault_) == size
    assert client.get(url, headers=resident.auth).get_json()["total"] == 0
    assert (
        client.post(url, json={"category": "health.notes", "content": {"n": 1}}, headers=resident.auth).status_code
        == 201
    )
    assert ledger_size(vault_) > size


def test_a_foreign_id_and_an_unknown_id_still_answer_alike(client, make_actor, break_ledger):
    resident = make_actor("resident")
    clinic = make_actor("clinic")
    record_id = add_record(client, resident, content={"secret": "yes"})
    break_ledger()
    answers = []
    for target in (record_id, new_id("r")):
        response = client.get(f"/api/v1/records/{target}?purpose=treatment", headers=clinic.auth)
        answers.append((response.status_code, response.mimetype, response.get_data()))
    assert answers[0] == answers[1], answers
    assert b"yes" not in answers[0][2]


def test_a_broken_sequencer_leaves_the_event_pending_and_the_action_done(client, make_actor, vault_, caplog):
    """Fail closed means the event is durable before content leaves, and a pending event is: the read is
    answered with a pending receipt; the sequencer's failure is logged, and /healthz shows the backlog.
    Once the sequencer can work again, the receipt resolves. (On SQLite the action's own transaction
    sequences, so there the action fails with it: 503, nothing released.)"""
    resident = make_actor("resident")
    record_id = add_record(client, resident, content={"n": 1})
    size = ledger_size(vault_)
    with vault_.engine.begin() as connection:
        connection.execute(text("DELETE FROM ledger_head"))
    if vault_.ledger_state.inline:
        try:
            assert_ledger_unavailable(client.get(f"/api/v1/records/{record_id}", headers=resident.auth))
        finally:
            with vault_.engine.begin() as connection:
                connection.execute(text("INSERT INTO ledger_head (id, size) VALUES (1, :size)"), {"size": size})
        return
    try:
        with caplog.at_level(logging.ERROR, logger="civicvault"):
            response = client.get(f"/api/v1/records/{record_id}", headers=resident.auth)
        assert response.status_code == 200
        receipt = response.get_json()["receipt"]
        assert (receipt["status"], receipt["leaf_index"]) == ("pending", None)
        assert any("sequencing failed" in r.getMessage() for r in caplog.records)
        assert client.get("/healthz").get_json()["ledger"]["pending"] == 1
    finally:
        with vault_.engine.begin() as connection:
            connection.execute(text("INSERT INTO ledger_head (id, size) VALUES (1, :size)"), {"size": size})
    vault_.sequencer.drain()
    entry = client.get(f"/api/v1/ledger/entries/{receipt['leaf_hash']}", headers=resident.auth).get_json()
    assert (entry["status"], entry["leaf_index"]) == ("sequenced", size)
