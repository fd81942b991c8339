"""Share codes over the API: a resident makes one, a clinic or landlord redeems it once to ask for access."""

import dataclasses
import threading

import pytest
import sqlalchemy as sa

from tests.api.conftest import HIGH_LIMITS
from vault.consent.share_codes import INVALID

REQUEST = {
    "categories": ["tenancy.income"],
    "purpose": "tenancy-screening",
    "reason": "Application for flat 2, 7 Harbour Row",
}


def make_code(client, resident, **body):
    answer = client.post("/api/v1/share-codes", json=body, headers=resident.auth)
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def redeem(client, who, code, **fields):
    return client.post("/api/v1/share-codes/redeem", json={"code": code, **REQUEST, **fields}, headers=who.auth)


def test_a_resident_makes_a_code_shown_once(client, cast, clock):
    made = make_code(client, cast.amina)
    assert set(made) == {"code", "subject_id", "created_at", "expires_at"}
    assert len(made["code"]) == 12 and made["subject_id"] == cast.amina.id
    assert made["expires_at"] == clock.at(minutes=10)
    short = make_code(client, cast.amina, minutes=3)
    assert short["expires_at"] == clock.at(minutes=3)
    assert client.post("/api/v1/share-codes", headers=cast.amina.auth).status_code == 201  # no body: the default


def test_redeeming_starts_a_request_the_resident_sees(client, cast, clock):
    made = make_code(client, cast.amina)
    answer = redeem(client, cast.landlord, made["code"])
    assert answer.status_code == 201, answer.get_json()
    request = answer.get_json()
    assert answer.headers["Location"].endswith(f"/api/v1/access-requests/{request['id']}")
    assert (request["subject_id"], request["requester_id"], request["status"]) == (
        cast.amina.id,
        cast.landlord.id,
        "pending",
    )
    assert request["reason"] == REQUEST["reason"] and request["categories"] == ["tenancy.income"]
    # Exactly what POST /api/v1/access-requests answers: the same fields.
    direct = client.post(
        "/api/v1/access-requests", json={"subject_id": cast.amina.id, **REQUEST}, headers=cast.landlord.auth
    ).get_json()
    assert set(direct) == set(request)
    seen = client.get("/api/v1/access-requests?status=pending", headers=cast.amina.auth).get_json()
    assert request["id"] in {r["id"] for r in seen["items"]}
    approved = client.post(f"/api/v1/access-requests/{request['id']}/approve", json={}, headers=cast.amina.auth)
    assert approved.status_code == 200 and approved.get_json()["grant_id"]


def test_a_code_works_once(client, cast, clock):
    made = make_code(client, cast.amina)
    assert redeem(client, cast.clinic, made["code"], categories=["health.*"], purpose="treatment").status_code == 201
    again = redeem(client, cast.landlord, made["code"])
    assert again.status_code == 404 and again.get_json()["detail"] == INVALID


def test_an_expired_code_is_not_found(client, cast, clock):
    made = make_code(client, cast.amina, minutes=1)
    clock.advance(minutes=1)
    answer = redeem(client, cast.landlord, made["code"])
    assert answer.status_code == 404 and answer.get_json()["detail"] == INVALID


@pytest.mark.parametrize("code", ["nonsense", "ABCD-EFGH-J!", "0000-0000-00", "x" * 40])
def test_a_malformed_or_unknown_code_gets_the_same_clear_message(client, cast, clock, code):
    make_code(client, cast.amina)
    answer = redeem(client, cast.landlord, code)
    assert answer.status_code == 404 and answer.get_json()["detail"] == INVALID


def test_a_code_longer_than_anyone_types_is_refused_by_the_schema(client, cast):
    answer = redeem(client, cast.landlord, "A" * 41)
    assert answer.status_code == 400 and "code" in answer.get_json()["errors"]["json"]


def test_wrong_roles_are_refused(client, cast, clock):
    for who in (cast.clinic, cast.landlord, cast.compliance, cast.admin):
        assert client.post("/api/v1/share-codes", json={}, headers=who.auth).status_code == 403
    made = make_code(client, cast.amina)
    for who in (cast.amina, cast.tomasz, cast.compliance, cast.admin):
        answer = redeem(client, who, made["code"])
        assert answer.status_code == 403, who
    assert redeem(client, cast.landlord, made["code"]).status_code == 201  # the refusals did not use it


def test_a_resident_cannot_make_a_code_for_someone_else(client, cast):
    answer = client.post("/api/v1/share-codes", json={"subject_id": cast.tomasz.id}, headers=cast.amina.auth)
    assert answer.status_code == 404


@pytest.mark.parametrize("body", [{"minutes": 0}, {"minutes": 31}, {"minutes": "10"}, {"extra": 1}])
def test_bad_bodies_are_400(client, cast, body):
    assert client.post("/api/v1/share-codes", json=body, headers=cast.amina.auth).status_code == 400


def test_a_bad_request_leaves_the_code_unused(client, cast, clock):
    made = make_code(client, cast.amina)
    bad = redeem(client, cast.landlord, made["code"], expires_at=clock.at(days=4000))
    assert bad.status_code == 400
    assert redeem(client, cast.landlord, made["code"]).status_code == 201


def test_concurrent_redemptions_of_one_code_have_one_winner(app, cast, clock):
    made = make_code(app.test_client(), cast.amina)
    barrier, answers = threading.Barrier(2), []

    def run(who):
        client = app.test_client()
        barrier.wait()
        answers.append(redeem(client, who, made["code"]).status_code)

    threads = [threading.Thread(target=run, args=(who,)) for who in (cast.landlord, cast.clinic)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [201, 404]


def test_the_code_is_not_stored_in_plaintext(client, cast, vault_, settings):
    made = make_code(client, cast.amina)
    raw = made["code"].replace("-", "")
    with vault_.engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT * FROM share_codes")).all()
        events = connection.execute(sa.text("SELECT data FROM events")).all()
    assert rows and all(raw not in str(row) and made["code"] not in str(row) for row in rows)
    assert all(raw not in str(row) for row in events)
    if settings.database_url is None or settings.database_url.startswith("sqlite"):
        for path in settings.home.glob("*.db*"):
            data = path.read_bytes()
            assert raw.encode() not in data and made["code"].encode() not in data


def test_redemptions_are_rate_limited_per_caller(cast, settings):
    from api import create_app
    from vault.runtime import Vault

    vault = Vault.open(
        dataclasses.replace(settings, rate_limits=dataclasses.replace(HIGH_LIMITS, share_codes="3/hour"))
    )
    try:
        client = create_app(vault=vault).test_client()
        statuses = [redeem(client, cast.landlord, "0000-0000-00").status_code for _ in range(4)]
        assert statuses == [404, 404, 404, 429]
        assert redeem(client, cast.clinic, "0000-0000-00").status_code == 404  # another caller counts apart
    finally:
        vault.close()
