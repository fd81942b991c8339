"""Reading sealed free text about a resident, and searching their trail, is an access: logged, and on their access log.

Regression tests for compliance reads that left no trace: an officer could
open access-request reasons, break-glass reasons and review notes, and search
one resident's trail, without any ledger event. Now each opening appends
``text.opened`` (one per resident whose text was shown, naming the kinds of
text and their ids, never the text) and each search ``trail.searched``, in the
transaction that serves them: with the ledger unable to append, nothing is
released.
"""

import json

import pytest
from sqlalchemy import select, text

from tests.api.conftest import grant
from tests.api.test_ledger_unavailable import FAULTS, assert_ledger_unavailable, ledger_size
from vault.storage.models import Event
from vault.verification import verify

REQUEST_REASON = "Screening for the flat at 12 Quay Street"
GLASS_REASON = "Unconscious on arrival, allergy status needed"
NOTE = "Confirmed with the ward: patient unconscious on arrival."
QUEUE = "/api/v1/audit/break-glass"
SEARCH = "/api/v1/audit/events"
TEXTS = (REQUEST_REASON, GLASS_REASON, NOTE)


@pytest.fixture
def appends_refused(vault_):
    """Break only the ledger's appends (a trigger refuses them; reads still work), as test_ledger_unavailable does."""
    install, undo = FAULTS[vault_.engine.dialect.name]["trigger"]

    def run(statements: list[str]) -> None:
        with vault_.engine.begin() as connection:
            for statement in statements:
                connection.execute(text(statement))

    state = {"broken": False}

    def broken() -> None:
        run(install)
        state["broken"] = True

    yield broken
    if state["broken"]:
        run(undo)


def ask(client, requester, resident, reason=REQUEST_REASON) -> str:
    response = client.post(
        "/api/v1/access-requests",
        json={
            "subject_id": resident.id,
            "categories": ["tenancy.income"],
            "purpose": "tenancy-screening",
            "reason": reason,
        },
        headers=requester.auth,
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def declare(client, clinic, resident, reason=GLASS_REASON) -> str:
    response = client.post(f"/api/v1/subjects/{resident.id}/break-glass", json={"reason": reason}, headers=clinic.auth)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def events_since(vault_, size: int) -> list[Event]:
    with vault_.read_transaction() as session:
        rows = list(session.scalars(select(Event).where(Event.ledger_index >= size).order_by(Event.ledger_index)))
        session.expunge_all()
    return rows


def appended(vault_, size: int) -> list[tuple[str, str, str | None, dict]]:
    """(kind, actor, subject, data) of every event appended since the ledger had ``size`` entries."""
    return [(e.kind, e.actor_id, e.subject_id, json.loads(e.data)) for e in events_since(vault_, size)]


def opened(*texts: tuple[str, str]) -> dict:
    return {"opened": [{"what": what, "object_id": object_id} for what, object_id in texts]}


def assert_no_text_in_the_ledger(vault_) -> None:
    with vault_.read_transaction() as session:
        for data, body in session.execute(select(Event.data, Event.body)):
            stored = data + bytes(body).decode("utf-8")
            assert not any(secret in stored for secret in TEXTS), stored


def test_opening_an_access_request_reason_is_logged_for_officers_and_delegates_only(client, cast, vault_):
    request_id = ask(client, cast.landlord, cast.amina)
    url = f"/api/v1/access-requests/{request_id}"
    # The resident and the requester (its author) are shown it without an event.
    for who in (cast.amina, cast.landlord):
        size = ledger_size(vault_)
        assert client.get(url, headers=who.auth).get_json()["reason"] == REQUEST_REASON
        assert ledger_size(vault_) == size
    size = ledger_size(vault_)
    assert client.get(url, headers=cast.compliance.auth).get_json()["reason"] == REQUEST_REASON
    assert appended(vault_, size) == [
        ("text.opened", cast.compliance.id, cast.amina.id, opened(("access-request-reason", request_id)))
    ]
    assert ledger_size(vault_) == size + 1
    assert_no_text_in_the_ledger(vault_)


def test_a_delegate_shown_a_reason_is_logged_too(client, cast, clock, vault_):
    made = client.post(
        "/api/v1/delegations",
        json={"delegate_id": cast.tomasz.id, "expires_at": clock.at(days=90)},
        headers=cast.amina.auth,
    )
    assert made.status_code == 201
    request_id = ask(client, cast.landlord, cast.amina)
    size = ledger_size(vault_)
    listed = client.get("/api/v1/access-requests", headers=cast.tomasz.auth).get_json()
    assert [item["reason"] for item in listed["items"]] == [REQUEST_REASON]
    assert appended(vault_, size) == [
        ("text.opened", cast.tomasz.id, cast.amina.id, opened(("access-request-reason", request_id)))
    ]
    # Deciding on it shows the reason again: logged with the decision.
    size = ledger_size(vault_)
    assert client.post(f"/api/v1/access-requests/{request_id}/deny", headers=cast.tomasz.auth).status_code == 200
    assert [kind for kind, *_ in appended(vault_, size)] == ["access-request.denied", "text.opened"]


def test_a_listing_appends_one_event_per_resident_whose_text_was_shown(client, cast, make_actor, vault_):
    first = ask(client, cast.landlord, cast.amina)
    second = ask(client, cast.clinic, cast.amina, reason="Second opinion on the lease")
    third = ask(client, cast.landlord, cast.tomasz, reason="Screening for another flat")
    size = ledger_size(vault_)
    listed = client.get("/api/v1/access-requests?limit=500", headers=cast.compliance.auth).get_json()
    assert listed["total"] == 3
    events = appended(vault_, size)
    assert len(events) == 2 and ledger_size(vault_) == size + 2  # not one per row
    by_subject = {subject: (kind, actor, data) for kind, actor, subject, data in events}
    assert by_subject[cast.amina.id][:2] == ("text.opened", cast.compliance.id)
    assert sorted(o["object_id"] for o in by_subject[cast.amina.id][2]["opened"]) == sorted([first, second])
    assert by_subject[cast.tomasz.id] == (
        "text.opened",
        cast.compliance.id,
        opened(("access-request-reason", third)),
    )
    # A listing that shows no text about anyone appends nothing.
    size = ledger_size(vault_)
    assert client.get("/api/v1/access-requests?status=approved", headers=cast.compliance.auth).get_json()["total"] == 0
    assert ledger_size(vault_) == size


def test_break_glass_reasons_and_review_notes_are_logged_when_an_officer_opens_them(client, cast, make_actor, vault_):
    amina_glass = declare(client, cast.clinic, cast.amina)
    tomasz_glass = declare(client, cast.clinic, cast.tomasz, reason="Seizure in the waiting room")
    second_officer = make_actor("compliance", "Second Officer")

    # The declaring clinic sees its own reason without an event; an officer's view of the declarations is logged.
    url = f"/api/v1/subjects/{cast.amina.id}/break-glass"
    size = ledger_size(vault_)
    assert client.get(url, headers=cast.clinic.auth).get_json()["items"][0]["reason"] == GLASS_REASON
    assert client.get(url, headers=cast.amina.auth).status_code == 200
    assert ledger_size(vault_) == size
    assert client.get(url, headers=cast.compliance.auth).get_json()["items"][0]["reason"] == GLASS_REASON
    assert appended(vault_, size) == [
        ("text.opened", cast.compliance.id, cast.amina.id, opened(("break-glass-reason", amina_glass)))
    ]

    # The queue: one event per resident.
    size = ledger_size(vault_)
    assert client.get(QUEUE, headers=cast.compliance.auth).get_json()["total"] == 2
    assert {(kind, subject): data for kind, _, subject, data in appended(vault_, size)} == {
        ("text.opened", cast.amina.id): opened(("break-glass-reason", amina_glass)),
        ("text.opened", cast.tomasz.id): opened(("break-glass-reason", tomasz_glass)),
    }

    # Acknowledging shows the clinic's reason (logged) and the officer's own note (not logged again).
    size = ledger_size(vault_)
    acknowledged = client.post(f"{QUEUE}/{amina_glass}/acknowledge", json={"note": NOTE}, headers=cast.compliance.auth)
    assert acknowledged.status_code == 200 and acknowledged.get_json()["note"] == NOTE
    assert [(kind, data) for kind, _, _, data in appended(vault_, size)] == [
        ("break-glass.acknowledged", {"break_glass_id": amina_glass, "clinic_id": cast.clinic.id}),
        ("text.opened", opened(("break-glass-reason", amina_glass))),
    ]

    # Another officer opening the review is shown both texts: one event naming both.
    size = ledger_size(vault_)
    review = client.get(f"{QUEUE}/{amina_glass}", headers=second_officer.auth).get_json()
    assert (review["reason"], review["note"]) == (GLASS_REASON, NOTE)
    assert appended(vault_, size) == [
        (
            "text.opened",
            second_officer.id,
            cast.amina.id,
            opened(("break-glass-reason", amina_glass), ("break-glass-review-note", amina_glass)),
        )
    ]
    size = ledger_size(vault_)
    client.get(f"{QUEUE}?status=acknowledged", headers=second_officer.auth)
    assert [data for *_, data in appended(vault_, size)] == [
        opened(("break-glass-reason", amina_glass), ("break-glass-review-note", amina_glass))
    ]
    # An unknown declaration opens nothing and logs nothing.
    size = ledger_size(vault_)
    assert client.get(f"{QUEUE}/b-{'a' * 26}", headers=cast.compliance.auth).status_code == 404
    assert ledger_size(vault_) == size
    assert_no_text_in_the_ledger(vault_)
    with vault_.read_transaction() as session:
        assert verify.verify(session).size == ledger_size(vault_)  # 'civicvault verify' accepts the new kinds


def test_a_search_about_one_resident_is_logged_once_per_search_not_per_page(client, cast, clock, vault_):
    grant(client, cast.amina, cast.clinic, clock)
    grant(client, cast.amina, cast.landlord, clock, categories=("tenancy.*",), purpose="tenancy-screening")
    grant(client, cast.tomasz, cast.clinic, clock)
    auth = cast.compliance.auth

    size = ledger_size(vault_)
    first = client.get(f"{SEARCH}?subject_id={cast.amina.id}&limit=1", headers=auth).get_json()
    assert first["as_of"] == size and first["total"] == 2
    assert appended(vault_, size) == [
        ("trail.searched", cast.compliance.id, cast.amina.id, {"as_of": size, "format": "json"})
    ]
    # Its next page is the same search: no second event.
    after = ledger_size(vault_)
    second = client.get(first["next"], headers=auth).get_json()
    assert second["total"] == 2 and second["next"] is None and ledger_size(vault_) == after
    # A cursor made by hand, with no logged search behind it, is a search of its own.
    client.get(f"{SEARCH}?subject_id={cast.amina.id}&as_of={size - 1}&after=0", headers=auth)
    assert appended(vault_, after) == [
        ("trail.searched", cast.compliance.id, cast.amina.id, {"as_of": size - 1, "format": "json"})
    ]
    # A CSV export is a search too; a search not about one resident names none.
    after = ledger_size(vault_)
    assert client.get(f"{SEARCH}?subject_id={cast.amina.id}&format=csv", headers=auth).status_code == 200
    assert client.get(f"{SEARCH}?kind=consent.*", headers=auth).status_code == 200
    assert client.get(f"{SEARCH}?subject_id=p-{'a' * 26}", headers=auth).status_code == 200  # names no resident
    assert [(kind, subject, data["format"]) for kind, _, subject, data in appended(vault_, after)] == [
        ("trail.searched", cast.amina.id, "csv"),
        ("trail.searched", None, "json"),
        ("trail.searched", None, "json"),
    ]


def test_the_resident_sees_compliance_reviews_in_the_access_log_but_not_in_disclosures(client, cast, vault_):
    request_id = ask(client, cast.landlord, cast.amina)
    glass = declare(client, cast.clinic, cast.amina)
    client.get(f"/api/v1/access-requests/{request_id}", headers=cast.compliance.auth)
    client.get(f"{QUEUE}/{glass}", headers=cast.compliance.auth)
    client.get(f"{SEARCH}?subject_id={cast.amina.id}", headers=cast.compliance.auth)

    log = client.get(f"/api/v1/subjects/{cast.amina.id}/access-log", headers=cast.amina.auth).get_json()
    reviews = [item for item in log["items"] if item["outcome"] == "reviewed"]
    assert [(r["kind"], r["action"], r["actor"]["role"], r["actor"]["id"]) for r in reviews] == [
        ("trail.searched", "search", "compliance", cast.compliance.id),
        ("text.opened", "open-text", "compliance", cast.compliance.id),
        ("text.opened", "open-text", "compliance", cast.compliance.id),
    ]
    assert [r["opened"] for r in reviews] == [
        [],
        [{"what": "break-glass-reason", "object_id": glass}],
        [{"what": "access-request-reason", "object_id": request_id}],
    ]
    assert all(r["leaf_hash"] for r in reviews)
    shown = json.dumps(log)
    assert REQUEST_REASON not in shown and GLASS_REASON not in shown
    # Reviews disclose nothing outside the vault: they are not in the accounting of disclosures.
    report = client.get(f"/api/v1/subjects/{cast.amina.id}/disclosures", headers=cast.amina.auth).get_json()
    assert report["items"] == []
    # Tomasz's log shows none of it.
    other = client.get(f"/api/v1/subjects/{cast.tomasz.id}/access-log", headers=cast.tomasz.auth).get_json()
    assert not [item for item in other["items"] if item["outcome"] == "reviewed"]


@pytest.mark.parametrize(
    "opening",
    ["access-request", "access-requests", "break-glass-list", "queue", "review", "search", "search-csv"],
)
def test_no_reason_note_or_line_is_released_when_the_ledger_cannot_append(
    client,
    cast,
    vault_,
    appends_refused,
    opening,
):
    request_id = ask(client, cast.landlord, cast.amina)
    glass = declare(client, cast.clinic, cast.amina)
    acknowledged = client.post(f"{QUEUE}/{glass}/acknowledge", json={"note": NOTE}, headers=cast.compliance.auth)
    assert acknowledged.status_code == 200
    url = {
        "access-request": f"/api/v1/access-requests/{request_id}",
        "access-requests": "/api/v1/access-requests",
        "break-glass-list": f"/api/v1/subjects/{cast.amina.id}/break-glass",
        "queue": f"{QUEUE}?status=acknowledged",
        "review": f"{QUEUE}/{glass}",
        "search": f"{SEARCH}?subject_id={cast.amina.id}",
        "search-csv": f"{SEARCH}?subject_id={cast.amina.id}&format=csv",
    }[opening]
    size = ledger_size(vault_)
    appends_refused()
    response = client.get(url, headers=cast.compliance.auth)
    assert_ledger_unavailable(response)
    sent = response.get_data(as_text=True)
    assert not any(secret in sent for secret in TEXTS)
    assert request_id not in sent and glass not in sent and cast.amina.id not in sent
    assert ledger_size(vault_) == size
