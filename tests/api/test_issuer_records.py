"""Issuer-signed records over the API: keys with proofs of possession, signatures verified before storing, provenance.

Hostile cases first-class: a bad signature, another principal's key, a revoked
key, a replay for another subject or category, a wrong proof of possession,
an agency without a write grant, and malformed input: each is refused and
nothing is stored.
"""

import base64
import hashlib
import json

import pytest
from fhir.resources.bundle import Bundle
from fhir.resources.provenance import Provenance
from sqlalchemy import select

from crypto import issuer
from vault.core.content import encode_content
from vault.records.provenance import statement
from vault.storage.models import Event, RecordVersion

from .conftest import grant
from .helpers import assert_problem

INCOME = {
    "type": "income-statement",
    "person": "Tomasz Nowak",
    "tax_year": 2025,
    "employer": "Riverside Bakery",
    "gross_annual": {"amount": 31200, "currency": "EUR"},
}
ISSUED_AT = "2026-11-25T09:58:00Z"  # two minutes before the tests' clock (T0)


class Issuer:
    """An agency with a registered key, signing as a script would with `civicvault issuer sign`."""

    def __init__(self, client, actor, key=None):
        self.actor, self.key = actor, key or issuer.IssuerKey.generate()
        response = client.post("/api/v1/issuer-keys", json=self.body(), headers=actor.auth)
        assert response.status_code == 201, response.get_json()
        self.key_id = response.get_json()["id"]

    def body(self, principal_id=None):
        return {
            "public_key": self.key.public_key.hex(),
            "proof_of_possession": self.key.prove_possession(principal_id or self.actor.id).hex(),
        }

    def sign(self, subject_id, category, content, *, issued_at=ISSUED_AT, key_id=None, issuer_id=None):
        signed = statement(
            subject_id=subject_id,
            category=category,
            body=encode_content(content),
            issued_at=issued_at,
            issuer_id=issuer_id or self.actor.id,
            key_id=key_id or self.key_id,
        )
        return {
            "key_id": key_id or self.key_id,
            "issued_at": issued_at,
            "value": issuer.sign_record(self.key, signed).hex(),
        }


@pytest.fixture
def agency(make_actor):
    return make_actor("agency", "Northside Payroll Services")


@pytest.fixture
def northside(client, agency):
    return Issuer(client, agency)


def write_grant(client, cast, subject, grantee, clock, categories=("tenancy.income",)):
    return grant(
        client, subject, grantee, clock, categories=categories, purpose="tenancy-screening", actions=("write",)
    )


def post_record(client, actor, subject, *, content=INCOME, category="tenancy.income", signature=None):
    body = {"category": category, "content": content, "purpose": "tenancy-screening", "title": "Income 2025"}
    if signature is not None:
        body["signature"] = signature
    return client.post(f"/api/v1/subjects/{subject.id}/records", json=body, headers=actor.auth)


def versions_stored(vault_) -> int:
    with vault_.read_transaction() as session:
        return len(session.scalars(select(RecordVersion.record_id)).all())


# --- keys ------------------------------------------------------------------------------------------


def test_an_agency_registers_a_key_and_anyone_can_look_it_up(client, cast, agency, northside, clock):
    listed = client.get("/api/v1/issuer-keys", headers=agency.auth).get_json()
    assert [k["id"] for k in listed["items"]] == [northside.key_id]
    public = client.get(f"/api/v1/issuer-keys/{northside.key_id}", headers=cast.amina.auth).get_json()
    assert public["issuer_id"] == agency.id and public["issuer_role"] == "agency"
    assert public["issuer_name"] == "Northside Payroll Services"
    assert public["public_key"] == northside.key.public_key.hex()
    assert public["status"] == "active" and public["revoked_at"] is None
    assert_problem(client.get("/api/v1/issuer-keys", headers=cast.amina.auth), 403)
    assert_problem(client.get("/api/v1/issuer-keys/k-a3x7qkd2m5o4rzlbwcyte6hvfu", headers=agency.auth), 404)


def test_a_wrong_proof_of_possession_is_refused(client, cast, agency):
    key = issuer.IssuerKey.generate()
    other = issuer.IssuerKey.generate()
    bodies = [
        # signed for another principal: a key someone else proved cannot be claimed
        {"public_key": key.public_key.hex(), "proof_of_possession": key.prove_possession(cast.clinic.id).hex()},
        # signed by another key
        {"public_key": key.public_key.hex(), "proof_of_possession": other.prove_possession(agency.id).hex()},
        # a record signature is not a proof of possession
        {"public_key": key.public_key.hex(), "proof_of_possession": key.sign(b"anything").hex()},
    ]
    for body in bodies:
        detail = assert_problem(client.post("/api/v1/issuer-keys", json=body, headers=agency.auth), 400)["detail"]
        assert "proof of possession does not verify" in detail
    # a key of small order (the identity), whatever the proof
    weak = {"public_key": (1).to_bytes(32, "little").hex(), "proof_of_possession": "00" * 64}
    detail = assert_problem(client.post("/api/v1/issuer-keys", json=weak, headers=agency.auth), 400)["detail"]
    assert "full order" in detail
    for malformed in [
        {"public_key": "zz" * 32, "proof_of_possession": "00" * 64},
        {"public_key": "00" * 31, "proof_of_possession": "00" * 64},
        {"public_key": key.public_key.hex(), "proof_of_possession": "00" * 63},
        {"public_key": key.public_key.hex().upper(), "proof_of_possession": "00" * 64},
        {"public_key": key.public_key.hex(), "proof_of_possession": "00" * 64 * 1000},
        {"public_key": key.public_key.hex()},
    ]:
        assert_problem(client.post("/api/v1/issuer-keys", json=malformed, headers=agency.auth), 400)
    assert client.get("/api/v1/issuer-keys", headers=agency.auth).get_json()["total"] == 0


def test_only_issuers_hold_keys_and_a_key_is_registered_once(client, cast, agency, northside):
    key = issuer.IssuerKey.generate()
    for who in (cast.amina, cast.compliance, cast.admin, cast.witness):
        body = {"public_key": key.public_key.hex(), "proof_of_possession": key.prove_possession(who.id).hex()}
        assert_problem(client.post("/api/v1/issuer-keys", json=body, headers=who.auth), 403)
    # a clinic and a landlord issue documents too
    Issuer(client, cast.clinic)
    Issuer(client, cast.landlord)
    assert_problem(client.post("/api/v1/issuer-keys", json=northside.body(), headers=agency.auth), 409)


def test_only_the_holder_revokes_a_key_and_only_once(client, cast, agency, northside):
    assert_problem(client.post(f"/api/v1/issuer-keys/{northside.key_id}/revoke", headers=cast.clinic.auth), 404)
    assert_problem(client.post(f"/api/v1/issuer-keys/{northside.key_id}/revoke", headers=cast.amina.auth), 403)
    revoked = client.post(f"/api/v1/issuer-keys/{northside.key_id}/revoke", headers=agency.auth)
    assert revoked.status_code == 200 and revoked.get_json()["status"] == "revoked"
    assert_problem(client.post(f"/api/v1/issuer-keys/{northside.key_id}/revoke", headers=agency.auth), 409)


# --- signed writes ---------------------------------------------------------------------------------


def test_an_issued_record_is_verified_stored_and_shown_as_issued(client, cast, agency, northside, clock, vault_):
    write_grant(client, cast, cast.tomasz, agency, clock)
    response = post_record(
        client, agency, cast.tomasz, signature=northside.sign(cast.tomasz.id, "tenancy.income", INCOME)
    )
    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert created["provenance"] == {
        "kind": "issued",
        "issuer_id": agency.id,
        "issuer_name": "Northside Payroll Services",
        "key_id": northside.key_id,
        "issued_at": "2026-11-25T09:58:00.000Z",
        "key_revoked_at": None,
    }
    # The resident sees it as issued, with the signature, which checks anywhere with the public key.
    read = client.get(f"/api/v1/records/{created['id']}", headers=cast.tomasz.auth).get_json()
    assert read["provenance"]["kind"] == "issued"
    public = client.get(f"/api/v1/issuer-keys/{read['provenance']['key_id']}", headers=cast.tomasz.auth).get_json()
    content_sha256 = hashlib.sha256(
        json.dumps(read["content"], sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()
    issuer.verify_record_signature(
        bytes.fromhex(public["public_key"]),
        issuer.SignedStatement(
            subject_id=cast.tomasz.id,
            category="tenancy.income",
            content_sha256=content_sha256,
            issued_at=ISSUED_AT,
            issuer_id=agency.id,
            key_id=northside.key_id,
        ),
        bytes.fromhex(read["provenance"]["signature"]),
    )
    listed = client.get(f"/api/v1/subjects/{cast.tomasz.id}/records", headers=cast.tomasz.auth).get_json()
    assert listed["items"][0]["provenance"]["kind"] == "issued"
    assert "signature" not in listed["items"][0]["provenance"]
    # What the resident types is self-asserted.
    own = client.post(
        f"/api/v1/subjects/{cast.tomasz.id}/records",
        json={"category": "tenancy.income", "content": {**INCOME, "gross_annual": {"amount": 99000}}},
        headers=cast.tomasz.auth,
    ).get_json()
    assert own["provenance"]["kind"] == "self-asserted" and own["provenance"]["issuer_id"] is None
    read = client.get(f"/api/v1/records/{own['id']}", headers=cast.tomasz.auth).get_json()
    assert read["provenance"]["signature"] is None


def test_the_write_event_names_the_key_and_a_digest_of_the_signature_never_content(
    client, cast, agency, northside, clock, vault_
):
    write_grant(client, cast, cast.tomasz, agency, clock)
    signature = northside.sign(cast.tomasz.id, "tenancy.income", INCOME)
    record_id = post_record(client, agency, cast.tomasz, signature=signature).get_json()["id"]
    with vault_.read_transaction() as session:
        events = {e.kind: json.loads(e.data) for e in session.scalars(select(Event))}
        sealed = session.scalars(select(RecordVersion.signature_sealed)).one()
    data = events["record.created"]
    assert data["record_id"] == record_id
    assert data["issuer_key_id"] == northside.key_id
    assert data["signature_sha256"] == hashlib.sha256(bytes.fromhex(signature["value"])).hexdigest()
    assert "31200" not in json.dumps(events) and signature["value"] not in json.dumps(events)
    assert events["issuer-key.registered"] == {"key_id": northside.key_id, "issuer_id": agency.id}
    # The signature is sealed at rest, never in clear.
    assert bytes.fromhex(signature["value"]) not in sealed


def test_an_agency_without_a_write_grant_is_refused_and_nothing_is_stored(
    client, cast, agency, northside, clock, vault_
):
    signature = northside.sign(cast.tomasz.id, "tenancy.income", INCOME)
    assert_problem(post_record(client, agency, cast.tomasz, signature=signature), 404)
    # a read grant is not a write grant
    grant(client, cast.tomasz, agency, clock, categories=("tenancy.income",), purpose="tenancy-screening")
    assert_problem(post_record(client, agency, cast.tomasz, signature=signature), 403)
    assert versions_stored(vault_) == 0


def _refused(client, actor, subject, signature, vault_, *, content=INCOME, category="tenancy.income", says=""):
    before = versions_stored(vault_)
    body = assert_problem(
        post_record(client, actor, subject, content=content, category=category, signature=signature), 400
    )
    assert says in body["detail"], body
    assert versions_stored(vault_) == before
    return body


def test_bad_signatures_are_refused_and_nothing_is_stored(client, cast, agency, northside, clock, vault_):
    write_grant(client, cast, cast.tomasz, agency, clock, categories=("tenancy.income", "tenancy.identity"))
    write_grant(client, cast, cast.amina, agency, clock)
    good = northside.sign(cast.tomasz.id, "tenancy.income", INCOME)
    # over other content (the figure changed after signing)
    altered = {**INCOME, "gross_annual": {"amount": 91200, "currency": "EUR"}}
    _refused(client, agency, cast.tomasz, good, vault_, content=altered, says="does not verify")
    # replayed for another subject, and for another category
    _refused(client, agency, cast.amina, good, vault_, says="does not verify")
    _refused(client, agency, cast.tomasz, good, vault_, category="tenancy.identity", says="does not verify")
    # another issued_at than signed
    _refused(client, agency, cast.tomasz, {**good, "issued_at": "2026-11-25T09:58:01Z"}, vault_, says="does not verify")
    # one bit flipped
    flipped = bytes.fromhex(good["value"])
    flipped = bytes([flipped[0] ^ 1]) + flipped[1:]
    _refused(client, agency, cast.tomasz, {**good, "value": flipped.hex()}, vault_, says="does not verify")
    # signed for another issuer id (the agency signs as if it were the clinic)
    as_clinic = northside.sign(cast.tomasz.id, "tenancy.income", INCOME, issuer_id=cast.clinic.id)
    _refused(client, agency, cast.tomasz, as_clinic, vault_, says="does not verify")
    # issued in the future beyond the skew, and within it
    future = northside.sign(cast.tomasz.id, "tenancy.income", INCOME, issued_at="2026-11-25T10:06:00Z")
    _refused(client, agency, cast.tomasz, future, vault_, says="future")
    near = northside.sign(cast.tomasz.id, "tenancy.income", INCOME, issued_at="2026-11-25T10:04:00Z")
    assert post_record(client, agency, cast.tomasz, signature=near).status_code == 201
    # the good one still works
    assert post_record(client, agency, cast.tomasz, signature=good).status_code == 201


def test_another_principals_key_an_unknown_key_and_a_revoked_key_are_refused(
    client, cast, make_actor, agency, northside, clock, vault_
):
    write_grant(client, cast, cast.tomasz, agency, clock)
    payroll = make_actor("agency", "Quayside Tax Office")
    write_grant(client, cast, cast.tomasz, payroll, clock)
    quayside = Issuer(client, payroll)
    # Quayside signs with its own key but names Northside's key id; then sends Northside's own signature
    theirs = quayside.sign(cast.tomasz.id, "tenancy.income", INCOME, key_id=northside.key_id)
    _refused(client, payroll, cast.tomasz, theirs, vault_, says="another principal")
    stolen = northside.sign(cast.tomasz.id, "tenancy.income", INCOME)
    _refused(client, payroll, cast.tomasz, stolen, vault_, says="another principal")
    unknown = northside.sign(cast.tomasz.id, "tenancy.income", INCOME, key_id="k-a3x7qkd2m5o4rzlbwcyte6hvfu")
    _refused(client, agency, cast.tomasz, unknown, vault_, says="names no issuer key")
    # revoked: new records refused, the old one still shows who signed it and when the key was revoked
    record_id = post_record(client, agency, cast.tomasz, signature=stolen).get_json()["id"]
    clock.advance(days=1)
    client.post(f"/api/v1/issuer-keys/{northside.key_id}/revoke", headers=agency.auth)
    _refused(client, agency, cast.tomasz, stolen, vault_, says="revoked")
    later = northside.sign(cast.tomasz.id, "tenancy.income", INCOME, issued_at="2026-11-26T09:59:00Z")
    _refused(client, agency, cast.tomasz, later, vault_, says="revoked")
    shown = client.get(f"/api/v1/records/{record_id}", headers=cast.tomasz.auth).get_json()["provenance"]
    assert shown["kind"] == "issued" and shown["issuer_name"] == "Northside Payroll Services"
    assert shown["key_revoked_at"] == "2026-11-26T10:00:00.000Z"
    # rotation: a new key signs again
    rotated = Issuer(client, agency)
    assert (
        post_record(
            client, agency, cast.tomasz, signature=rotated.sign(cast.tomasz.id, "tenancy.income", INCOME)
        ).status_code
        == 201
    )


def test_residents_and_content_blind_roles_cannot_sign(client, cast, agency, northside, clock, vault_):
    signature = northside.sign(cast.tomasz.id, "tenancy.income", INCOME)
    _refused(client, cast.tomasz, cast.tomasz, signature, vault_, says="Only clinics, landlords and agencies")


@pytest.mark.parametrize(
    "signature",
    [
        {"key_id": "k-a3x7qkd2m5o4rzlbwcyte6hvfu", "issued_at": ISSUED_AT},
        {"key_id": "k-a3x7qkd2m5o4rzlbwcyte6hvfu", "issued_at": ISSUED_AT, "value": "ab" * 63},
        {"key_id": "k-a3x7qkd2m5o4rzlbwcyte6hvfu", "issued_at": ISSUED_AT, "value": "AB" * 64},
        {"key_id": "k-a3x7qkd2m5o4rzlbwcyte6hvfu", "issued_at": ISSUED_AT, "value": "ab" * 64 * 1000},
        {"key_id": "k/../../x", "issued_at": ISSUED_AT, "value": "ab" * 64},
        {"key_id": "k" * 41, "issued_at": ISSUED_AT, "value": "ab" * 64},
        {"key_id": "k-a3x7qkd2m5o4rzlbwcyte6hvfu", "issued_at": "2026-11-25T09:58:00.000Z", "value": "ab" * 64},
        {"key_id": "k-a3x7qkd2m5o4rzlbwcyte6hvfu", "issued_at": "2026-02-30T09:58:00Z", "value": "ab" * 64},
        {"key_id": "k-a3x7qkd2m5o4rzlbwcyte6hvfu", "issued_at": "yesterday", "value": "ab" * 64},
        {"key_id": "k-a3x7qkd2m5o4rzlbwcyte6hvfu", "issued_at": ISSUED_AT, "value": "ab" * 64, "extra": 1},
        {"key_id": 7, "issued_at": ISSUED_AT, "value": "ab" * 64},
        "ab" * 64,
        [],
    ],
)
def test_malformed_signatures_are_400_problems(client, cast, agency, northside, clock, vault_, signature):
    write_grant(client, cast, cast.tomasz, agency, clock)
    assert_problem(post_record(client, agency, cast.tomasz, signature=signature), 400)
    assert versions_stored(vault_) == 0


def test_versions_carry_their_own_provenance(client, cast, agency, northside, clock, vault_):
    write_grant(client, cast, cast.tomasz, agency, clock)
    record_id = post_record(
        client, agency, cast.tomasz, signature=northside.sign(cast.tomasz.id, "tenancy.income", INCOME)
    ).get_json()["id"]
    v2 = {**INCOME, "tax_year": 2026}
    # a bad signature on a new version: refused, the record unchanged
    body = {
        "content": v2,
        "purpose": "tenancy-screening",
        "signature": northside.sign(cast.tomasz.id, "tenancy.income", INCOME),
    }
    assert_problem(client.put(f"/api/v1/records/{record_id}", json=body, headers=agency.auth), 400)
    body["signature"] = northside.sign(cast.tomasz.id, "tenancy.income", v2)
    updated = client.put(f"/api/v1/records/{record_id}", json=body, headers=agency.auth)
    assert updated.status_code == 200 and updated.get_json()["version"] == 2
    assert updated.get_json()["provenance"]["kind"] == "issued"
    # the resident edits it: that version is self-asserted, the earlier ones stay issued
    mine = client.put(
        f"/api/v1/records/{record_id}", json={"content": {**v2, "note": "mine"}}, headers=cast.tomasz.auth
    )
    assert mine.get_json()["version"] == 3 and mine.get_json()["provenance"]["kind"] == "self-asserted"
    for version, kind in ((1, "issued"), (2, "issued"), (3, "self-asserted")):
        read = client.get(f"/api/v1/records/{record_id}?version={version}", headers=cast.tomasz.auth).get_json()
        assert read["provenance"]["kind"] == kind


def test_a_signature_on_a_record_the_caller_may_not_write_tells_nothing(client, cast, agency, northside, clock, vault_):
    """How a signature is judged must not tell a caller without consent anything about the record."""
    record_id = client.post(
        f"/api/v1/subjects/{cast.tomasz.id}/records",
        json={"category": "tenancy.income", "content": INCOME},
        headers=cast.tomasz.auth,
    ).get_json()["id"]
    right = {
        "content": INCOME,
        "purpose": "tenancy-screening",
        "signature": northside.sign(cast.tomasz.id, "tenancy.income", INCOME),
    }
    wrong = {**right, "signature": northside.sign(cast.amina.id, "tenancy.lease", INCOME)}
    for body in (right, wrong):
        assert_problem(client.put(f"/api/v1/records/{record_id}", json=body, headers=agency.auth), 404)


# --- export --------------------------------------------------------------------------------------


def test_the_export_carries_a_fhir_provenance_per_issued_version(client, cast, agency, northside, clock):
    write_grant(client, cast, cast.tomasz, agency, clock)
    signature = northside.sign(cast.tomasz.id, "tenancy.income", INCOME)
    record_id = post_record(client, agency, cast.tomasz, signature=signature).get_json()["id"]
    client.post(
        f"/api/v1/subjects/{cast.tomasz.id}/records",
        json={"category": "tenancy.lease", "content": {"a": 1}},
        headers=cast.tomasz.auth,
    )
    client.post(f"/api/v1/issuer-keys/{northside.key_id}/revoke", headers=agency.auth)
    export = client.get(f"/api/v1/subjects/{cast.tomasz.id}/export", headers=cast.tomasz.auth).get_json()
    bundle = export["issued_records"]
    Bundle(bundle, strict=True)
    (entry,) = bundle["entry"]
    resource = entry["resource"]
    Provenance(resource, strict=True)
    assert resource["target"] == [
        {
            "identifier": {"system": "urn:civicvault:record", "value": f"{record_id}/_history/1"},
            "display": "tenancy.income",
        }
    ]
    assert resource["agent"][0]["who"] == {
        "reference": f"Organization/{agency.id}",
        "display": "Northside Payroll Services",
    }
    (sig,) = resource["signature"]
    assert sig["who"] == {"reference": f"Organization/{agency.id}"}
    assert sig["when"] == resource["occurredDateTime"] == "2026-11-25T09:58:00.000Z"
    assert base64.b64decode(sig["data"]).hex() == signature["value"]
    extensions = {e["url"]: e for e in sig["extension"]}
    assert extensions["urn:civicvault:fhir:StructureDefinition:issuer-key"]["valueString"] == northside.key_id
    assert "valueInstant" in extensions["urn:civicvault:fhir:StructureDefinition:issuer-key-revoked-at"]
    # the export's records say the same, and the signature in hex
    (issued,) = [r for r in export["records"] if r["id"] == record_id]
    assert issued["versions"][0]["provenance"]["kind"] == "issued"
    assert issued["versions"][0]["provenance"]["signature"] == signature["value"]
