"""HL7 FHIR R4 (4.0.1): a grant as a ``Consent``, health records as a ``Bundle``, issued versions as ``Provenance``.

A grant's mapping (docs/consent.md has the table):

* ``status``: ``active`` while the grant is active or not yet valid,
  ``inactive`` once revoked, expired or used up;
* ``scope``: ``patient-privacy``; ``category``: LOINC 59284-0 (consent document);
* ``patient``: the resident; ``performer``: whoever gave the consent (the
  resident, or their delegate as a ``RelatedPerson``); ``dateTime``: when;
* ``policyRule``: v3 ActCode ``OPTIN`` (the resident opts in to this sharing);
* ``provision``: ``permit`` for the grant's period, to the grantee as
  information recipient (``IRCP``), for actions ``access`` (read),
  ``correct`` (write) and ``use`` (attest: the vault uses the records to
  answer a yes/no question for the grantee), for the purpose as a v3 ActReason code beside our own
  code, with each category as a ``class`` (the FHIR resource type, where one
  fits) and a ``code``.
"""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from vault.consent.consent import GrantView
from vault.core.clock import rfc3339
from vault.records.records import RecordHistory

CIVICVAULT_PURPOSE = "urn:civicvault:purpose"
CIVICVAULT_CATEGORY = "urn:civicvault:category"
MAX_USES_EXTENSION = "urn:civicvault:fhir:StructureDefinition:max-uses"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
RESOURCE_TYPES = "http://hl7.org/fhir/resource-types"
LOINC = "http://loinc.org"

# Each purpose's HL7 v3 ActReason (PurposeOfUse) code. Housing purposes have no
# exact v3 concept: the nearest is used, and our own code travels beside it.
PURPOSE_CODES = {
    "treatment": ("TREAT", "treatment"),
    "payment": ("HPAYMT", "healthcare payment"),
    "operations": ("HOPERAT", "healthcare operations"),
    "research": ("HRESCH", "healthcare research"),
    "emergency": ("ETREAT", "Emergency Treatment"),
    "tenancy-screening": ("ELIGDTRM", "eligibility determination"),
    "tenancy-management": ("MEMADMIN", "member administration"),
    "legal": ("HLEGAL", "legal"),
}

# Health categories: the FHIR resource type that holds such records, and the
# LOINC code of the matching clinical document section.
HEALTH_CATEGORIES = {
    "health.allergies": ("AllergyIntolerance", "48765-2", "Allergies and adverse reactions Document"),
    "health.medications": ("MedicationStatement", "10160-0", "History of Medication use Narrative"),
    "health.conditions": ("Condition", "11450-4", "Problem list - Reported"),
    "health.immunizations": ("Immunization", "11369-6", "History of Immunization Narrative"),
    "health.labs": ("Observation", "30954-2", "Relevant diagnostic tests/laboratory data Narrative"),
    "health.notes": ("DocumentReference", "34109-9", "Note"),
    "health.imaging": ("ImagingStudy", "18748-4", "Diagnostic imaging study"),
}

ACTION_CODES = {"read": "access", "write": "correct", "attest": "use"}
_ROLE_RESOURCE = {
    "clinic": "Organization",
    "landlord": "Organization",
    "agency": "Organization",
    "resident": "RelatedPerson",
}


def _coding(system: str, code: str, display: str | None = None) -> dict:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return coding


def _category_codes(pattern: str) -> tuple[list[dict], dict]:
    """(class codings, code concept) for one granted category or family."""
    ours = _coding(CIVICVAULT_CATEGORY, pattern)
    if pattern.endswith(".*"):
        members = [c for c in HEALTH_CATEGORIES if c.startswith(pattern[:-1])]
        classes = [_coding(RESOURCE_TYPES, HEALTH_CATEGORIES[c][0]) for c in members]
        return classes, {"coding": [ours], "text": f"all {pattern[:-2]} records"}
    if pattern in HEALTH_CATEGORIES:
        resource, loinc, display = HEALTH_CATEGORIES[pattern]
        return [_coding(RESOURCE_TYPES, resource)], {"coding": [ours, _coding(LOINC, loinc, display)]}
    return [], {"coding": [ours]}


def consent_resource(grant: GrantView) -> dict:
    classes: list[dict[str, Any]] = []
    codes: list[dict[str, Any]] = []
    for pattern in grant.categories:
        cls, code = _category_codes(pattern)
        classes.extend(c for c in cls if c not in classes)
        codes.append(code)
    reason_code, reason_display = PURPOSE_CODES[grant.purpose]
    # Given by the resident, or by a delegate acting for them.
    performer = (
        f"Patient/{grant.subject_id}" if grant.created_by == grant.subject_id else f"RelatedPerson/{grant.created_by}"
    )
    provision: dict[str, Any] = {
        "type": "permit",
        "period": {"start": rfc3339(grant.valid_from), "end": rfc3339(grant.expires_at)},
        "actor": [
            {
                "role": {
                    "coding": [
                        _coding(
                            "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                            "IRCP",
                            "information recipient",
                        )
                    ]
                },
                "reference": {
                    "reference": f"{_ROLE_RESOURCE.get(grant.grantee_role, 'Organization')}/{grant.grantee_id}"
                },
            }
        ],
        "action": [
            {"coding": [_coding("http://terminology.hl7.org/CodeSystem/consentaction", ACTION_CODES[a])]}
            for a in grant.actions
        ],
        "purpose": [_coding(ACT_REASON, reason_code, reason_display), _coding(CIVICVAULT_PURPOSE, grant.purpose)],
        "code": codes,
    }
    if classes:
        provision["class"] = classes
    resource: dict[str, Any] = {
        "resourceType": "Consent",
        "id": grant.id,
        "status": "active" if grant.status in ("active", "not-yet-valid") else "inactive",
        "scope": {
            "coding": [
                _coding("http://terminology.hl7.org/CodeSystem/consentscope", "patient-privacy", "Privacy Consent")
            ]
        },
        "category": [{"coding": [_coding(LOINC, "59284-0", "Patient Consent")]}],
        "patient": {"reference": f"Patient/{grant.subject_id}"},
        "dateTime": rfc3339(grant.created_at),
        "performer": [{"reference": performer}],
        "policyRule": {"coding": [_coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "OPTIN", "opt-in")]},
        "provision": provision,
    }
    if grant.max_uses is not None:
        resource["extension"] = [{"url": MAX_USES_EXTENSION, "valueInteger": grant.max_uses}]
    return resource


def health_bundle(
    subject_id: str, subject_name: str | None, records: Iterable[RecordHistory], *, generated_at: datetime
) -> dict:
    """A resident's health records as an R4 ``Bundle`` of type ``collection``.

    One ``Patient`` (the resident) and one ``DocumentReference`` per health
    record, at its current version: typed with the LOINC section code of its
    category, its JSON content carried as a base64 ``attachment`` (the
    vault stores free-form JSON, so no finer resource is claimed), the
    version in ``meta.versionId``.
    """
    import base64
    import json

    patient: dict[str, Any] = {"resourceType": "Patient", "id": subject_id}
    if subject_name:
        patient["name"] = [{"text": subject_name}]
    entries = [{"fullUrl": f"urn:civicvault:Patient:{subject_id}", "resource": patient}]
    for record in records:
        if record.category not in HEALTH_CATEGORIES:
            continue
        current = record.versions[-1]
        _, loinc, display = HEALTH_CATEGORIES[record.category]
        attachment = {
            "contentType": "application/json",
            "data": base64.b64encode(
                json.dumps(current.content, ensure_ascii=False, sort_keys=True).encode("utf-8")
            ).decode("ascii"),
            "creation": rfc3339(current.created_at),
        }
        if current.title:
            attachment["title"] = current.title
        entries.append(
            {
                "fullUrl": f"urn:civicvault:DocumentReference:{record.id}",
                "resource": {
                    "resourceType": "DocumentReference",
                    "id": record.id,
                    "meta": {"versionId": str(current.version), "lastUpdated": rfc3339(record.updated_at)},
                    "status": "current",
                    "type": {"coding": [_coding(LOINC, loinc, display)]},
                    "category": [{"coding": [_coding(CIVICVAULT_CATEGORY, record.category)]}],
                    "subject": {"reference": f"Patient/{subject_id}"},
                    "date": rfc3339(record.updated_at),
                    "content": [{"attachment": attachment}],
                },
            }
        )
    return {"resourceType": "Bundle", "type": "collection", "timestamp": rfc3339(generated_at), "entry": entries}


ISSUER_KEY_EXTENSION = "urn:civicvault:fhir:StructureDefinition:issuer-key"
KEY_REVOKED_EXTENSION = "urn:civicvault:fhir:StructureDefinition:issuer-key-revoked-at"
SIGNED_STATEMENT_EXTENSION = "urn:civicvault:fhir:StructureDefinition:signed-statement"
CIVICVAULT_RECORD = "urn:civicvault:record"
# ASTM E1762-95 signature type: the author's signature (the issuer vouches for the document).
AUTHOR_SIGNATURE = _coding("urn:iso-astm:E1762-95:2013", "1.2.840.10065.1.12.1.1", "Author's Signature")
PARTICIPANT_AUTHOR = _coding("http://terminology.hl7.org/CodeSystem/provenance-participant-type", "author", "Author")


def provenance_bundle(records: Iterable[RecordHistory], *, generated_at: datetime) -> dict:
    """One R4 ``Provenance`` per issued record version, in a ``Bundle`` of type ``collection``.

    ``target``: the version (``DocumentReference/{id}/_history/{version}`` for
    a health record, as in ``health_bundle``; an identifier in
    ``urn:civicvault:record`` otherwise); ``occurredDateTime``: when the issuer
    issued it; ``recorded``: when the vault stored it; ``agent`` and
    ``signature.who``: the issuer; ``signature.data``: the Ed25519 signature
    (base64) over the statement ``civicvault/record-signature/v1``
    (docs/attestations.md), whose key id, and the key's revocation time if it
    was revoked, travel as extensions of the signature.
    """
    import base64

    entries = []
    for record in records:
        for version in record.versions:
            origin = version.provenance
            if not origin.issued or origin.signature is None or origin.issued_at is None:
                continue
            pointer = f"{record.id}/_history/{version.version}"
            target: dict[str, Any] = (
                {"reference": f"DocumentReference/{pointer}"}
                if record.category in HEALTH_CATEGORIES
                else {"identifier": {"system": CIVICVAULT_RECORD, "value": pointer}, "display": record.category}
            )
            who: dict[str, Any] = {"reference": f"Organization/{origin.issuer_id}"}
            if origin.issuer_name:
                who["display"] = origin.issuer_name
            extensions: list[dict[str, Any]] = [
                {"url": SIGNED_STATEMENT_EXTENSION, "valueString": "civicvault/record-signature/v1"},
                {"url": ISSUER_KEY_EXTENSION, "valueString": origin.key_id},
            ]
            if origin.key_revoked_at is not None:
                extensions.append({"url": KEY_REVOKED_EXTENSION, "valueInstant": rfc3339(origin.key_revoked_at)})
            issued = rfc3339(origin.issued_at)
            resource = {
                "resourceType": "Provenance",
                "id": f"{record.id}-v{version.version}",
                "target": [target],
                "occurredDateTime": issued,
                "recorded": rfc3339(version.created_at),
                "agent": [{"type": {"coding": [PARTICIPANT_AUTHOR]}, "who": who}],
                "signature": [
                    {
                        "extension": extensions,
                        "type": [AUTHOR_SIGNATURE],
                        "when": issued,
                        "who": {"reference": f"Organization/{origin.issuer_id}"},
                        "targetFormat": "text/plain",
                        "sigFormat": "application/octet-stream",
                        "data": base64.b64encode(origin.signature).decode("ascii"),
                    }
                ],
            }
            entries.append({"fullUrl": f"urn:civicvault:Provenance:{resource['id']}", "resource": resource})
    return {"resourceType": "Bundle", "type": "collection", "timestamp": rfc3339(generated_at), "entry": entries}
