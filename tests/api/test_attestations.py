"""Attestations over the API: a landlord gets a signed answer, never the figure.

The journey of docs/attestations.md: the landlord asks for ``attest`` on the
income category, the resident approves, the landlord gets a credential that
verifies offline and cannot read the income record. Then the refusals: uses
counted and exhausted, revoked and expired grants, unknown subjects, bad
predicates and parameters, no evidence; and what stays at rest.
"""

import collections
import json
from datetime import UTC, datetime

import pytest

from tests.api.conftest import T0
from tests.api.helpers import assert_problem
from vault.attestations import credential as vc
from vault.attestations import documents
from vault.keys import attestation_key

INCOME = {"type": "income-statement", "tax_year": 2025, "gross_annual": {"amount": 52000, "currency": "EUR"}}
QUESTION = {
    "predicate": "income_at_least",
    "parameters": {"multiple": 3, "annual_rent": 14400, "currency": "EUR"},
    "purpose": "tenancy-screening",
}
AGENCY = "p-7ukq3gq3l4r2yx6tbqz5m4wxna"


@pytest.fixture
def issued_by_agency(monkeypatch):
    """Records count as issued by an agency whose signature the vault verified (part of provenance)."""
    issued = collections.defaultdict(lambda: (AGENCY, True))
    monkeypatch.setattr(documents, "_provenances", lambda session, keys, subject_id, categories: issued)


def add_income(client, resident, content=None) -> str:
    response = client.post(
        f"/api/v1/subjects/{resident.id}/records",
        json={"category": "tenancy.income", "content": content or INCOME, "title": "Income statement 2025"},
        headers=resident.auth,
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def approved_request(client, resident, landlord, *, actions=("attest",), max_uses=None) -> dict:
    response = client.post(
        "/api/v1/access-requests",
        json={
            "subject_id": resident.id,
            "categories": ["tenancy.income"],
            "purpose": "tenancy-screening",
            "actions": list(actions),
            "reason": "Screening for the flat at 4 Quay Street",
        },
        headers=landlord.auth,
    )
    assert response.status_code == 201, response.get_json()
    request = response.get_json()
    assert request["actions"] == sorted(actions)  # the resident sees what is asked before approving
    body = {} if max_uses is None else {"max_uses": max_uses}
    response = client.post(f"/api/v1/access-requests/{request['id']}/approve", json=body, headers=resident.auth)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def ask(client, landlord, resident, **changes):
    return client.post(
        f"/api/v1/subjects/{resident.id}/attestations", json={**QUESTION, **changes}, headers=landlord.auth
    )


def vault_key(vault_) -> str:
    return attestation_key.read(vault_.settings.attestation_key_file).did


def test_the_landlords_journey(client, cast, clock, vault_, issued_by_agency):
    record_id = add_income(client, cast.amina)
    approved_request(client, cast.amina, cast.landlord)
    response = ask(client, cast.landlord, cast.amina)
    assert response.status_code == 201, response.get_json()
    answer = response.get_json()
    credential = answer["credential"]
    claims = vc.verify(credential, key=vault_key(vault_), at=T0, requester=cast.landlord.id)
    assert claims.result is True and claims.predicate == "income_at_least"
    assert claims.pseudonym == answer["pseudonym"] and claims.pseudonym.startswith("urn:civicvault:pseudonym:")
    assert credential["credentialSubject"]["counted"] == "issuer-verified"
    assert credential["evidence"][0]["issuers"] == [{"id": AGENCY}]
    assert credential["evidence"][0]["ledgerEvent"] == answer["receipt"]["leaf_hash"]
    assert credential["validUntil"] == "2026-12-25T10:00:00Z"
    text = json.dumps(answer)
    assert "52000" not in text and record_id not in text and cast.amina.id not in text  # never the figure or ids
    # attest never reads: the landlord's read of the income record is refused with consent-denied
    read = client.get(f"/api/v1/records/{record_id}?purpose=tenancy-screening", headers=cast.landlord.auth)
    assert assert_problem(read, 403)["reason"] == "wrong-action"
    listing = client.get(
        f"/api/v1/subjects/{cast.amina.id}/records?purpose=tenancy-screening", headers=cast.landlord.auth
    )
    assert listing.status_code == 403 and "52000" not in listing.get_data(as_text=True)


def test_the_answer_can_be_false_and_is_signed_as_such(client, cast, clock, vault_, issued_by_agency):
    add_income(client, cast.amina, {**INCOME, "gross_annual": {"amount": 40000, "currency": "EUR"}})
    approved_request(client, cast.amina, cast.landlord)
    credential = ask(client, cast.landlord, cast.amina).get_json()["credential"]
    assert vc.verify(credential, key=vault_key(vault_), at=T0).result is False


def test_the_same_pseudonym_for_one_requester_another_for_the_next(client, cast, clock, make_actor, issued_by_agency):
    add_income(client, cast.amina)
    other = make_actor("landlord", "Quayside Lettings")
    approved_request(client, cast.amina, cast.landlord)
    approved_request(client, cast.amina, other)
    first = ask(client, cast.landlord, cast.amina).get_json()["pseudonym"]
    again = ask(client, cast.landlord, cast.amina).get_json()["pseudonym"]
    elsewhere = ask(client, other, cast.amina).get_json()["pseudonym"]
    assert first == again != elsewhere


def test_self_asserted_records_count_only_when_asked_and_the_credential_says_so(client, cast, clock, vault_):
    add_income(client, cast.amina)  # the resident typed it in: no issuer
    approved_request(client, cast.amina, cast.landlord)
    refused = assert_problem(ask(client, cast.landlord, cast.amina), 409)
    assert refused["type"] == "urn:civicvault:problem:no-evidence"
    response = ask(client, cast.landlord, cast.amina, include_self_asserted=True)
    assert response.status_code == 201, response.get_json()
    credential = response.get_json()["credential"]
    assert credential["credentialSubject"]["counted"] == "issuer-verified and self-asserted"
    assert credential["evidence"][0]["issuers"] == []


def test_no_evidence_is_logged_and_counts_no_use(client, cast, clock, issued_by_agency):
    approved = approved_request(client, cast.amina, cast.landlord, max_uses=1)
    assert_problem(ask(client, cast.landlord, cast.amina), 409)
    log = client.get(f"/api/v1/subjects/{cast.amina.id}/access-log", headers=cast.amina.auth).get_json()
    assert log["items"][0]["kind"] == "attestation.no-evidence"
    grant = client.get(f"/api/v1/consents/{approved['grant_id']}", headers=cast.amina.auth).get_json()
    assert grant["uses"] == 0
    add_income(client, cast.amina)
    assert ask(client, cast.landlord, cast.amina).status_code == 201


def test_uses_are_counted_and_exhausted(client, cast, clock, issued_by_agency):
    add_income(client, cast.amina)
    approved = approved_request(client, cast.amina, cast.landlord, max_uses=2)
    assert ask(client, cast.landlord, cast.amina).status_code == 201
    assert ask(client, cast.landlord, cast.amina).status_code == 201
    assert assert_problem(ask(client, cast.landlord, cast.amina), 403)["reason"] == "used-up"
    grant = client.get(f"/api/v1/consents/{approved['grant_id']}", headers=cast.amina.auth).get_json()
    assert grant["uses"] == 2


def test_revoked_and_expired_grants_are_refused_and_logged(client, cast, clock, issued_by_agency):
    add_income(client, cast.amina)
    approved = approved_request(client, cast.amina, cast.landlord)
    response = client.post(f"/api/v1/consents/{approved['grant_id']}/revoke", json={}, headers=cast.amina.auth)
    assert response.status_code == 200
    assert assert_problem(ask(client, cast.landlord, cast.amina), 403)["reason"] == "revoked"
    approved_request(client, cast.amina, cast.landlord)
    clock.advance(days=31)  # the default grant ends after 30 days
    assert assert_problem(ask(client, cast.landlord, cast.amina), 403)["reason"] == "expired"
    log = client.get(f"/api/v1/subjects/{cast.amina.id}/access-log", headers=cast.amina.auth).get_json()
    refusals = [item for item in log["items"] if item["kind"] == "access.refused" and item["action"] == "attest"]
    assert [item["reason"] for item in refusals] == ["expired", "revoked"]


def test_a_read_grant_does_not_attest_and_strangers_get_the_unknown_answer(client, cast, clock, issued_by_agency):
    add_income(client, cast.amina)
    approved_request(client, cast.amina, cast.landlord, actions=("read",))
    assert assert_problem(ask(client, cast.landlord, cast.amina), 403)["reason"] == "wrong-action"
    assert_problem(ask(client, cast.clinic, cast.amina), 404)  # no grant at all: as for an unknown id
    unknown = client.post(
        "/api/v1/subjects/p-aaaaaaaaaaaaaaaaaaaaaaaaaa/attestations", json=QUESTION, headers=cast.landlord.auth
    )
    assert_problem(unknown, 404)


@pytest.mark.parametrize(
    "changes",
    [
        {"predicate": "credit_score_above"},
        {"parameters": {"multiple": 3, "annual_rent": 14400}},
        {"parameters": {"multiple": 3, "annual_rent": 14400, "currency": "EUR", "extra": 1}},
        {"parameters": {"amount": -5, "currency": "EUR"}},
        {"parameters": {"amount": 1e300, "currency": "EUR"}},
        {"parameters": {"amount": 30000, "multiple": 2, "currency": "EUR"}},
        {"parameters": {"multiple": 3.001, "annual_rent": 14400, "currency": "EUR"}},
        {"parameters": []},
        {"purpose": "fun"},
        {"include_self_asserted": "yes"},
    ],
)
def test_bad_questions_are_400(client, cast, clock, changes):
    assert_problem(ask(client, cast.landlord, cast.amina, **changes), 400)


def test_the_key_endpoint_names_the_vaults_key(client, cast, vault_):
    response = client.get("/api/v1/attestations/key", headers=cast.landlord.auth)
    assert response.status_code == 200
    body = response.get_json()
    assert body["did"] == vault_key(vault_)
    assert body["verification_method"] == f"{body['did']}#{body['public_key_multibase']}"


def test_the_ledger_event_holds_no_answer_and_the_credential_is_sealed(client, cast, clock, vault_, issued_by_agency):
    add_income(client, cast.amina)
    approved_request(client, cast.amina, cast.landlord)
    credential = ask(client, cast.landlord, cast.amina).get_json()["credential"]
    from sqlalchemy import select

    from vault.storage.models import Attestation, Event

    with vault_.read_transaction() as session:
        event = session.scalars(select(Event).where(Event.kind == "attestation.issued")).one()
        row = session.scalars(select(Attestation)).one()
        data = json.loads(event.data)
        assert "result" not in data and "52000" not in event.data
        assert data["credential_id"] == credential["id"]
        assert data["credential_sha256"] == vc.digest(credential)
        assert data["parameters"] == {"multiple": 3.0, "annual_rent": 14400, "currency": "EUR"}
        assert b"credentialSubject" not in bytes(row.credential_sealed)
        assert row.pseudonym == credential["credentialSubject"]["id"]


def test_no_key_no_attestation(client, cast, clock, vault_, issued_by_agency):
    add_income(client, cast.amina)
    approved_request(client, cast.amina, cast.landlord, max_uses=1)
    vault_.settings.attestation_key_file.unlink()
    response = ask(client, cast.landlord, cast.amina)
    assert response.status_code == 500 and "credential" not in response.get_data(as_text=True)
    attestation_key.create(vault_.settings.attestation_key_file)
    assert ask(client, cast.landlord, cast.amina).status_code == 201  # the failed one used nothing


def test_the_ledger_failing_returns_no_credential(client, cast, clock, vault_, issued_by_agency, monkeypatch):
    from vault.core.errors import LedgerUnavailable
    from vault.ledger import ledger

    add_income(client, cast.amina)
    approved = approved_request(client, cast.amina, cast.landlord, max_uses=1)

    def unavailable(*args, **kwargs):
        raise LedgerUnavailable("The audit trail cannot record the request.")

    monkeypatch.setattr(ledger, "append_many", unavailable)
    response = ask(client, cast.landlord, cast.amina)
    assert response.status_code == 503 and "credential" not in response.get_data(as_text=True)
    monkeypatch.undo()
    grant = client.get(f"/api/v1/consents/{approved['grant_id']}", headers=cast.amina.auth).get_json()
    assert grant["uses"] == 0


def test_at_rest_the_sqlite_file_holds_no_answer(client, cast, clock, vault_, issued_by_agency):
    if vault_.engine.dialect.name != "sqlite":
        pytest.skip("scans the SQLite file")
    add_income(client, cast.amina)
    approved_request(client, cast.amina, cast.landlord)
    credential = ask(client, cast.landlord, cast.amina).get_json()["credential"]
    vault_.engine.dispose()
    path = vault_.engine.url.database
    blob = b""
    for suffix in ("", "-wal"):
        try:
            with open(path + suffix, "rb") as handle:
                blob += handle.read()
        except FileNotFoundError:
            pass
    subject = credential["credentialSubject"]
    for needle in (json.dumps(subject, sort_keys=True, separators=(",", ":")), '"result":true', "credentialSubject"):
        assert needle.encode() not in blob
    assert b"52000" not in blob


def test_the_rate_limit_applies_per_caller(vault_, make_actor):
    import dataclasses

    from api import create_app
    from vault.core.config import RateLimits

    vault_.settings = dataclasses.replace(vault_.settings, rate_limits=RateLimits(attestations="2/hour"))
    app = create_app(vault=vault_)
    client = app.test_client()
    landlord = make_actor("landlord")
    resident = make_actor("resident")
    statuses = [ask(client, landlord, resident).status_code for _ in range(3)]
    assert statuses[:2] == [404, 404] and statuses[2] == 429


def _utc(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def test_the_residents_disclosures_say_what_left_and_only_she_sees_the_answer(client, cast, clock, issued_by_agency):
    add_income(client, cast.amina)
    approved_request(client, cast.amina, cast.landlord)
    assert ask(client, cast.landlord, cast.amina).status_code == 201
    assert_problem(ask(client, cast.landlord, cast.amina, predicate="adult", parameters={}), 404)  # not granted
    expected = "attestation income_at_least (3x annual rent 14400 EUR) for Harbour Housing: true"
    report = client.get(f"/api/v1/subjects/{cast.amina.id}/disclosures", headers=cast.amina.auth).get_json()
    (line,) = [item for item in report["items"] if item["kind"] == "attestation"]
    assert line["description"] == expected and line["recipient"]["id"] == cast.landlord.id
    assert line["purpose"] == "tenancy-screening" and line["category"] == "tenancy.income" and line["records"] == 1
    csv = client.get(f"/api/v1/subjects/{cast.amina.id}/disclosures?format=csv", headers=cast.amina.auth)
    assert expected in csv.get_data(as_text=True)
    log = client.get(f"/api/v1/subjects/{cast.amina.id}/access-log", headers=cast.amina.auth).get_json()
    issued = [item for item in log["items"] if item["kind"] == "attestation.issued"]
    assert [item["description"] for item in issued] == [expected] and issued[0]["action"] == "attest"
    # A compliance officer sees that an attestation left, and not its answer.
    seen = client.get(f"/api/v1/subjects/{cast.amina.id}/disclosures", headers=cast.compliance.auth).get_json()
    (line,) = [item for item in seen["items"] if item["kind"] == "attestation"]
    assert line["description"].endswith(": answer sealed for the resident") and "true" not in line["description"]


def test_a_no_evidence_answer_is_a_disclosure_too(client, cast, clock, issued_by_agency):
    approved_request(client, cast.amina, cast.landlord)
    assert_problem(ask(client, cast.landlord, cast.amina, parameters={"amount": 30000, "currency": "EUR"}), 409)
    report = client.get(f"/api/v1/subjects/{cast.amina.id}/disclosures", headers=cast.amina.auth).get_json()
    (line,) = [item for item in report["items"] if item["kind"] == "attestation"]
    assert line["description"] == "attestation income_at_least (30000 EUR) for Harbour Housing: no counted record"


def test_erasure_deletes_the_sealed_credentials(client, cast, clock, vault_, issued_by_agency):
    from sqlalchemy import func, select

    from vault.storage.models import Attestation

    add_income(client, cast.amina)
    approved_request(client, cast.amina, cast.landlord)
    assert ask(client, cast.landlord, cast.amina).status_code == 201
    confirm = {"confirm": True}
    response = client.post(f"/api/v1/subjects/{cast.amina.id}/erasure", json=confirm, headers=cast.amina.auth)
    assert response.status_code in (200, 201), response.get_json()
    with vault_.read_transaction() as session:
        assert session.scalar(select(func.count()).select_from(Attestation)) == 0
    assert_problem(ask(client, cast.landlord, cast.amina), 404)


def _grant_attest(client, resident, landlord, clock, category):
    body = {
        "grantee_id": landlord.id,
        "categories": [category],
        "purpose": "tenancy-screening",
        "actions": ["attest"],
        "expires_at": clock.at(days=30),
    }
    response = client.post("/api/v1/consents", json=body, headers=resident.auth)
    assert response.status_code == 201, response.get_json()


def test_the_other_predicates_read_their_own_categories(client, cast, clock, vault_, issued_by_agency):
    for category, content in (
        ("tenancy.identity", {"type": "identity", "date_of_birth": "1990-05-04"}),
        ("tenancy.rental-history", {"type": "eviction", "date": "2024-03-01"}),
    ):
        response = client.post(
            f"/api/v1/subjects/{cast.amina.id}/records",
            json={"category": category, "content": content},
            headers=cast.amina.auth,
        )
        assert response.status_code == 201
        _grant_attest(client, cast.amina, cast.landlord, clock, category)
    key = vault_key(vault_)
    adult = ask(client, cast.landlord, cast.amina, predicate="adult", parameters={}).get_json()["credential"]
    assert vc.verify(adult, key=key, at=T0).result is True
    recent = ask(client, cast.landlord, cast.amina, predicate="no_eviction_within", parameters={"years": 5})
    assert vc.verify(recent.get_json()["credential"], key=key, at=T0).result is False
    long_ago = ask(client, cast.landlord, cast.amina, predicate="no_eviction_within", parameters={"years": 1})
    assert vc.verify(long_ago.get_json()["credential"], key=key, at=T0).result is True
    # The income grant was never given: that question is the unknown id's 404.
    assert_problem(ask(client, cast.landlord, cast.amina), 404)


def test_the_ledger_verifies_with_attestations_and_their_erasure(client, cast, clock, vault_, issued_by_agency):
    from vault.verification.verify import verify

    add_income(client, cast.amina)
    approved_request(client, cast.amina, cast.landlord)
    assert ask(client, cast.landlord, cast.amina).status_code == 201
    assert_problem(ask(client, cast.landlord, cast.amina, parameters={"amount": 1, "currency": "USD"}), 409)
    with vault_.read_transaction() as session:
        before = verify(session)
    response = client.post(f"/api/v1/subjects/{cast.amina.id}/erasure", json={"confirm": True}, headers=cast.amina.auth)
    assert response.status_code in (200, 201)
    with vault_.read_transaction() as session:
        after = verify(session)
    assert after.size > before.size and after.erased >= 2


def test_concurrent_attestations_on_a_limited_grant_get_exactly_its_uses(app, cast, clock, issued_by_agency):
    from concurrent.futures import ThreadPoolExecutor

    client = app.test_client()
    add_income(client, cast.amina)
    approved_request(client, cast.amina, cast.landlord, max_uses=3)

    def one(_):
        with app.test_client() as c:
            return ask(c, cast.landlord, cast.amina).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(one, range(8)))
    assert statuses == [201] * 3 + [403] * 5
