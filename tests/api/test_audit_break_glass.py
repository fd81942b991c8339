"""The break-glass review queue: it empties only through acknowledgements, each one a ledger event."""

import secrets
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from tests.api.conftest import add_record
from tests.api.helpers import assert_problem
from vault.storage.models import BreakGlassReview, Event

QUEUE = "/api/v1/audit/break-glass"


def declare(client, clinic, resident, reason="unconscious after a fall"):
    response = client.post(f"/api/v1/subjects/{resident.id}/break-glass", json={"reason": reason}, headers=clinic.auth)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def queue(client, cast, status=None):
    response = client.get(QUEUE + (f"?status={status}" if status else ""), headers=cast.compliance.auth)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def acknowledge(client, who, declaration, note="Checked with the ward: justified."):
    return client.post(f"{QUEUE}/{declaration}/acknowledge", json={"note": note}, headers=who.auth)


def test_the_queue_empties_only_through_acknowledgements(client, cast, clock):
    first = declare(client, cast.clinic, cast.tomasz)
    clock.advance(minutes=3)
    second = declare(client, cast.clinic, cast.amina, reason="anaphylaxis in the waiting room")
    labs = add_record(client, cast.tomasz, "health.labs")
    for _ in range(2):
        assert client.get(f"/api/v1/records/{labs}?purpose=emergency", headers=cast.clinic.auth).status_code == 200

    pending = queue(client, cast)
    assert pending["total"] == 2 and [i["id"] for i in pending["items"]] == [first, second]
    item = pending["items"][0]
    assert item["status"] == "pending" and item["uses"] == 2 and item["reason"] == "unconscious after a fall"
    assert (
        item["clinic_id"] == cast.clinic.id and item["subject_id"] == cast.tomasz.id and item["acknowledged_at"] is None
    )
    assert item["declaration"]["leaf_index"] >= 0 and item["receipt"] is None

    # Nothing but an acknowledgement takes a declaration off the queue: not its window ending,
    # not time passing, not reads, not listings, not a failed or refused acknowledgement.
    clock.advance(days=30)
    client.get(f"/api/v1/subjects/{cast.tomasz.id}/break-glass", headers=cast.compliance.auth)
    assert acknowledge(client, cast.clinic, first).status_code == 403
    assert acknowledge(client, cast.compliance, first, note="   ").status_code == 400
    assert acknowledge(client, cast.compliance, "b-doesnotexist").status_code == 404
    assert queue(client, cast)["total"] == 2 and queue(client, cast, "acknowledged")["total"] == 0

    done = acknowledge(client, cast.compliance, first)
    assert done.status_code == 200
    body = done.get_json()
    assert body["status"] == "acknowledged" and body["acknowledged_by"] == cast.compliance.id
    assert body["note"] == "Checked with the ward: justified." and body["active"] is False
    assert queue(client, cast)["total"] == 1
    assert [i["id"] for i in queue(client, cast, "acknowledged")["items"]] == [first]

    again = assert_problem(acknowledge(client, cast.compliance, first, note="second thoughts"), 409)
    assert again["type"] == "urn:civicvault:problem:conflict"
    assert queue(client, cast, "acknowledged")["items"][0]["note"] == "Checked with the ward: justified."

    assert acknowledge(client, cast.compliance, second).status_code == 200
    assert queue(client, cast) == {"items": [], "total": 0}
    assert queue(client, cast, "acknowledged")["total"] == 2


def test_an_acknowledgement_is_a_ledger_event_without_the_note(client, vault_, cast, clock):
    declaration = declare(client, cast.clinic, cast.tomasz)
    marker = f"NOTEMARK{secrets.token_hex(4)}"
    body = acknowledge(client, cast.compliance, declaration, note=f"Reviewed.\nDetails: {marker}").get_json()
    receipt = body["receipt"]
    proof = client.get(
        f"/api/v1/ledger/proofs/inclusion?leaf_index={receipt['leaf_index']}", headers=cast.compliance.auth
    ).get_json()
    assert proof["leaf_hash"] == receipt["leaf_hash"]
    found = client.get("/api/v1/audit/events?kind=break-glass.acknowledged", headers=cast.compliance.auth).get_json()
    assert [(i["ledger_index"], i["actor_id"], i["subject_id"]) for i in found["items"]] == [
        (receipt["leaf_index"], cast.compliance.id, cast.tomasz.id)
    ]
    assert found["items"][0]["data"] == {"break_glass_id": declaration, "clinic_id": cast.clinic.id}
    with vault_.read_transaction() as session:
        event = session.get(Event, receipt["leaf_index"])
        assert marker.encode() not in event.body and marker not in event.data
        review = session.scalars(select(BreakGlassReview)).one()
        assert marker.encode() not in review.note_sealed and review.ledger_index == receipt["leaf_index"]
    # The note comes back to compliance, opened.
    assert marker in client.get(f"{QUEUE}/{declaration}", headers=cast.compliance.auth).get_json()["note"]


def test_a_sealed_note_moved_to_another_declaration_does_not_open(client, vault_, cast):
    from vault.compliance.break_glass_review import NOTE_KIND
    from vault.core.errors import RecordUnreadable
    from vault.keys.keys import open_text

    first, second = declare(client, cast.clinic, cast.tomasz), declare(client, cast.clinic, cast.amina)
    acknowledge(client, cast.compliance, first)
    with vault_.read_transaction() as session:
        sealed = session.get(BreakGlassReview, first).note_sealed
        assert open_text(
            vault_.keys, session, kind=NOTE_KIND, object_id=first, subject_id=cast.tomasz.id, sealed=sealed
        )
        for object_id, subject_id in ((second, cast.amina.id), (second, cast.tomasz.id), (first, cast.amina.id)):
            with pytest.raises(RecordUnreadable):
                open_text(
                    vault_.keys, session, kind=NOTE_KIND, object_id=object_id, subject_id=subject_id, sealed=sealed
                )


def test_concurrent_acknowledgements_one_wins(app, cast):
    declaration = declare(app.test_client(), cast.clinic, cast.tomasz)

    def ack(n):
        with app.test_client() as c:
            return acknowledge(c, cast.compliance, declaration, note=f"officer {n}").status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = sorted(pool.map(ack, range(6)))
    assert statuses == [200] + [409] * 5
    found = (
        app.test_client()
        .get("/api/v1/audit/events?kind=break-glass.acknowledged", headers=cast.compliance.auth)
        .get_json()
    )
    assert found["total"] == 1  # the losers' events rolled back with them


@pytest.mark.parametrize("who", ("amina", "clinic", "landlord", "admin", "witness"))
def test_other_roles_cannot_see_or_work_the_queue(client, cast, who):
    declaration = declare(client, cast.clinic, cast.tomasz)
    actor = getattr(cast, who)
    assert_problem(client.get(QUEUE, headers=actor.auth), 403)
    assert_problem(client.get(f"{QUEUE}/{declaration}", headers=actor.auth), 403)
    assert_problem(acknowledge(client, actor, declaration), 403)
    assert queue(client, cast)["total"] == 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"note": ""},
        {"note": 5},
        {"note": "x" * 2001},
        {"note": "ok", "status": "acknowledged"},
        {"note": "bell\x07"},
    ],
)
def test_malformed_acknowledgements_are_400(client, cast, body):
    declaration = declare(client, cast.clinic, cast.tomasz)
    assert_problem(client.post(f"{QUEUE}/{declaration}/acknowledge", json=body, headers=cast.compliance.auth), 400)
    assert queue(client, cast)["total"] == 1


@pytest.mark.parametrize("query", ["status=done", "limit=0", "limit=501", "offset=-1", "colour=red"])
def test_malformed_queue_queries_are_400(client, cast, query):
    assert_problem(client.get(f"{QUEUE}?{query}", headers=cast.compliance.auth), 400)


def test_queue_pages(client, cast, clock):
    made = []
    for _ in range(5):
        made.append(declare(client, cast.clinic, cast.tomasz))
        clock.advance(minutes=1)
    pages = [client.get(f"{QUEUE}?limit=2&offset={o}", headers=cast.compliance.auth).get_json() for o in (0, 2, 4)]
    assert [i["id"] for p in pages for i in p["items"]] == made
    assert {p["total"] for p in pages} == {5}
