"""Grants as HL7 FHIR R4 Consent resources, validated against the FHIR R4 (4.0.1) model."""

import re

import pytest
from fhir.resources import __fhir_version__
from fhir.resources.consent import Consent
from fhir.resources.fhirabstractbase import FHIRValidationError

from tests.api.conftest import grant
from tests.api.helpers import assert_problem
from vault.records.fhir import HEALTH_CATEGORIES, PURPOSE_CODES

# FHIR R4 dateTime (http://hl7.org/fhir/R4/datatypes.html#dateTime); the model
# library accepts malformed dates with a warning, so we check the pattern here.
FHIR_DATETIME = re.compile(
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])"
    r"(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?"
)
FHIR_ID = re.compile(r"[A-Za-z0-9\-\.]{1,64}")


def fetch(client, actor, grant_id):
    response = client.get(f"/api/v1/consents/{grant_id}/fhir", headers=actor.auth)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/fhir+json"
    return response.get_json()


def validate(resource: dict) -> Consent:
    assert __fhir_version__ == "4.0.1"
    consent = Consent(resource, strict=True)  # raises FHIRValidationError on any structural error
    assert consent.as_json() == resource  # nothing dropped or renamed
    # Invariant ppc-1: either a policy or a policyRule.
    assert resource.get("policy") or resource.get("policyRule")
    # ppc-2: a privacy consent names its patient.
    assert resource["scope"]["coding"][0]["code"] == "patient-privacy" and resource["patient"]["reference"].startswith(
        "Patient/"
    )
    assert FHIR_ID.fullmatch(resource["id"])
    for when in (
        resource["dateTime"],
        resource["provision"]["period"]["start"],
        resource["provision"]["period"]["end"],
    ):
        assert FHIR_DATETIME.fullmatch(when), when
    return consent


def test_a_health_grant_renders_as_a_valid_r4_consent(client, cast, clock):
    g = grant(
        client,
        cast.amina,
        cast.clinic,
        clock,
        categories=["health.allergies", "health.labs"],
        purpose="treatment",
        actions=["read", "write"],
        max_uses=5,
    )
    resource = fetch(client, cast.amina, g["id"])
    validate(resource)
    assert resource["status"] == "active"
    assert resource["patient"] == {"reference": f"Patient/{cast.amina.id}"}
    assert resource["performer"] == [{"reference": f"Patient/{cast.amina.id}"}]
    provision = resource["provision"]
    assert provision["type"] == "permit"
    assert provision["period"] == {"start": g["valid_from"], "end": g["expires_at"]}
    assert provision["actor"][0]["reference"] == {"reference": f"Organization/{cast.clinic.id}"}
    assert provision["actor"][0]["role"]["coding"][0]["code"] == "IRCP"
    assert [a["coding"][0]["code"] for a in provision["action"]] == ["access", "correct"]
    assert {
        "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
        "code": "TREAT",
        "display": "treatment",
    } in provision["purpose"]
    assert {"system": "urn:civicvault:purpose", "code": "treatment"} in provision["purpose"]
    assert {c["code"] for c in provision["class"]} == {"AllergyIntolerance", "Observation"}
    loinc = {
        coding["code"]
        for concept in provision["code"]
        for coding in concept["coding"]
        if coding["system"] == "http://loinc.org"
    }
    assert loinc == {"48765-2", "30954-2"}
    assert resource["extension"] == [{"url": "urn:civicvault:fhir:StructureDefinition:max-uses", "valueInteger": 5}]


@pytest.mark.parametrize("purpose", sorted(PURPOSE_CODES))
def test_every_purpose_maps_to_an_act_reason(client, cast, clock, purpose):
    g = grant(client, cast.amina, cast.landlord, clock, categories=["tenancy.*", "health.*"], purpose=purpose)
    resource = fetch(client, cast.landlord, g["id"])
    validate(resource)
    codes = {c["system"]: c["code"] for c in resource["provision"]["purpose"]}
    assert codes["http://terminology.hl7.org/CodeSystem/v3-ActReason"] == PURPOSE_CODES[purpose][0]
    assert codes["urn:civicvault:purpose"] == purpose
    assert {c["code"] for c in resource["provision"]["class"]} == {v[0] for v in HEALTH_CATEGORIES.values()}


def test_status_follows_the_grant(client, cast, clock):
    g = grant(client, cast.amina, cast.clinic, clock, days=1)
    client.post(f"/api/v1/consents/{g['id']}/revoke", headers=cast.amina.auth)
    revoked = fetch(client, cast.amina, g["id"])
    validate(revoked)
    assert revoked["status"] == "inactive"
    expiring = grant(client, cast.amina, cast.clinic, clock, days=1)
    clock.advance(days=2)
    assert fetch(client, cast.clinic, expiring["id"])["status"] == "inactive"


def test_a_delegate_given_grant_names_the_delegate_as_performer(client, cast, clock):
    client.post(
        "/api/v1/delegations",
        json={"delegate_id": cast.tomasz.id, "expires_at": clock.at(days=30)},
        headers=cast.amina.auth,
    )
    g = grant(
        client,
        cast.tomasz,
        cast.landlord,
        clock,
        subject_id=cast.amina.id,
        categories=["tenancy.income"],
        purpose="tenancy-screening",
    )
    resource = fetch(client, cast.amina, g["id"])
    validate(resource)
    assert resource["performer"] == [{"reference": f"RelatedPerson/{cast.tomasz.id}"}]
    assert "class" not in resource["provision"]  # no FHIR resource type holds tenancy records


def test_the_validator_rejects_a_broken_consent(client, cast, clock):
    """Guard: the model really validates (a missing required element is refused)."""
    resource = fetch(client, cast.amina, grant(client, cast.amina, cast.clinic, clock)["id"])
    broken = {k: v for k, v in resource.items() if k != "scope"}
    with pytest.raises(FHIRValidationError):
        Consent(broken, strict=True)
    with pytest.raises(FHIRValidationError):
        Consent({**resource, "patient": "Patient/x"}, strict=True)


def test_strangers_get_404_for_the_fhir_view(client, cast, clock):
    g = grant(client, cast.amina, cast.clinic, clock)
    for actor in (cast.tomasz, cast.landlord, cast.admin):
        assert_problem(client.get(f"/api/v1/consents/{g['id']}/fhir", headers=actor.auth), 404)
    assert fetch(client, cast.compliance, g["id"])["id"] == g["id"]
