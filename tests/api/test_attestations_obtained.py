"""A requester fetches the attestations it obtained again: exactly what was issued, to it only, with no new event."""

from datetime import timedelta

import pytest

from tests.api.conftest import T0
from tests.api.helpers import assert_problem
from tests.api.test_attestations import add_income, approved_request, ask, issued_by_agency, vault_key  # noqa: F401
from tests.api.test_auth_in_transaction import ledger_size
from vault.attestations import credential as vc


@pytest.fixture
def obtained(client, cast, clock, request):
    request.getfixturevalue("issued_by_agency")  # the income statement counts as issued
    add_income(client, cast.amina)
    approved_request(client, cast.amina, cast.landlord, max_uses=5)
    first = ask(client, cast.landlord, cast.amina)
    clock.now += timedelta(minutes=1)
    second = ask(client, cast.landlord, cast.amina, parameters={"amount": 60000, "currency": "EUR"})
    assert first.status_code == second.status_code == 201
    return first.get_json(), second.get_json()


def test_the_requester_lists_and_fetches_exactly_what_was_issued(client, cast, vault_, obtained):
    first, second = obtained
    size = ledger_size(vault_)
    listed = client.get("/api/v1/attestations", headers=cast.landlord.auth)
    assert listed.status_code == 200
    body = listed.get_json()
    assert body["total"] == 2
    assert [item["credential"] for item in body["items"]] == [second["credential"], first["credential"]]  # newest
    assert [item["result"] for item in body["items"]] == [False, True]  # 52,000 < 60,000; 52,000 >= 3 x 14,400
    item = body["items"][1]
    assert item["subject_id"] == cast.amina.id and item["predicate"] == "income_at_least"
    assert item["pseudonym"] == first["pseudonym"] and item["ledger_event"] == first["receipt"]["leaf_hash"]
    assert item["counted"] == "issuer-verified" and item["purpose"] == "tenancy-screening"
    assert item["id"] == first["credential"]["id"]  # urn:uuid:...
    by_urn = client.get(f"/api/v1/attestations/{item['id']}", headers=cast.landlord.auth)
    assert by_urn.status_code == 200 and by_urn.get_json()["credential"] == first["credential"]

    credential_id = first["credential"]["id"].removeprefix("urn:uuid:")
    fetched = client.get(f"/api/v1/attestations/{credential_id}", headers=cast.landlord.auth)
    assert fetched.status_code == 200
    assert fetched.get_json()["credential"] == first["credential"]
    claims = vc.verify(fetched.get_json()["credential"], key=vault_key(vault_), at=T0, requester=cast.landlord.id)
    assert claims.result is True
    assert ledger_size(vault_) == size  # fetching again discloses nothing new: no event


def test_nobody_else_sees_them_not_even_the_resident(client, cast, make_actor, obtained):
    first, _ = obtained
    credential_id = first["credential"]["id"].removeprefix("urn:uuid:")
    other_landlord = make_actor("landlord", "Quay Lettings")
    for who in (other_landlord, cast.amina, cast.clinic, cast.compliance):
        assert_problem(client.get(f"/api/v1/attestations/{credential_id}", headers=who.auth), 404)
        assert client.get("/api/v1/attestations", headers=who.auth).get_json() == {"items": [], "total": 0}
    assert_problem(client.get(f"/api/v1/attestations/{credential_id}"), 401)


@pytest.mark.parametrize("credential_id", ["5f0c6e1a-8b7d-4e3a-9c2b-1d4f6a8e0b37", "x" * 300, "key2", "%00"])
def test_an_unknown_or_malformed_id_is_404(client, cast, obtained, credential_id):
    assert_problem(client.get(f"/api/v1/attestations/{credential_id}", headers=cast.landlord.auth), 404)


def test_the_listing_filters_by_resident_and_pages(client, cast, obtained):
    about_tomasz = client.get(f"/api/v1/attestations?subject_id={cast.tomasz.id}", headers=cast.landlord.auth)
    assert about_tomasz.get_json() == {"items": [], "total": 0}
    page = client.get(f"/api/v1/attestations?subject_id={cast.amina.id}&limit=1&offset=1", headers=cast.landlord.auth)
    body = page.get_json()
    assert body["total"] == 2 and len(body["items"]) == 1 and body["items"][0]["result"] is True
    assert_problem(client.get("/api/v1/attestations?limit=0", headers=cast.landlord.auth), 400)
    assert_problem(client.get(f"/api/v1/attestations?subject_id={'p' * 300}", headers=cast.landlord.auth), 400)


def test_after_erasure_they_are_gone(client, cast, obtained):
    first, _ = obtained
    credential_id = first["credential"]["id"].removeprefix("urn:uuid:")
    erased = client.post(f"/api/v1/subjects/{cast.amina.id}/erasure", json={"confirm": True}, headers=cast.amina.auth)
    assert erased.status_code in (200, 201), erased.get_json()
    assert_problem(client.get(f"/api/v1/attestations/{credential_id}", headers=cast.landlord.auth), 404)
    assert client.get("/api/v1/attestations", headers=cast.landlord.auth).get_json()["total"] == 0
