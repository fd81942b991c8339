"""What residents see of the trail: access log, accounting of disclosures, export."""

import marshmallow as ma
from marshmallow import fields, validate

from api.schemas.common import AMINA, CLINIC, GRANT, LANDLORD, RECORD, TENANCY_RECORD, Strict, Timestamp
from api.schemas.consent import FHIR_CONSENT_EXAMPLE, GRANT_EXAMPLE
from api.schemas.ledger import ROOT_26
from vault.core.bounds import MAX_PAGE


class AccessLogQuery(Strict):
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=MAX_PAGE))
    before = fields.Integer(
        load_default=None,
        validate=validate.Range(min=0, max=2**62),
        metadata={
            "description": "Page back: only entries with a ledger index below this (next_before of the previous page)."
        },
    )


class ActorOut(ma.Schema):
    id = fields.String()
    role = fields.String()
    name = fields.String(allow_none=True)


class OpenedTextOut(ma.Schema):
    what = fields.String(metadata={"enum": ["access-request-reason", "break-glass-reason", "break-glass-review-note"]})
    object_id = fields.String()


class AccessEntryOut(ma.Schema):
    ledger_index = fields.Integer()
    leaf_hash = fields.String()
    occurred_at = Timestamp()
    kind = fields.String()
    outcome = fields.String(metadata={"enum": ["permitted", "refused", "declared", "reviewed"]})
    actor = fields.Nested(ActorOut)
    action = fields.String(allow_none=True)
    record_id = fields.String(allow_none=True)
    version = fields.Integer(allow_none=True)
    category = fields.String(allow_none=True)
    purpose = fields.String(allow_none=True)
    basis = fields.String(allow_none=True)
    grant_id = fields.String(allow_none=True)
    delegation_id = fields.String(allow_none=True)
    break_glass_id = fields.String(allow_none=True)
    flagged = fields.Boolean()
    reason = fields.String(allow_none=True)
    opened = fields.List(
        fields.Nested(OpenedTextOut),
        metadata={"description": "outcome reviewed, action open-text: the sealed texts shown (never the text)."},
    )
    description = fields.String(
        allow_none=True,
        metadata={
            "description": "An attestation (action attest): the question, to whom, and the answer, "
            "e.g. 'attestation income_at_least (3x annual rent 14400 EUR) for Harbour Housing: true'; "
            "the answer is shown to the resident only."
        },
    )


class AccessLogOut(ma.Schema):
    items = fields.List(fields.Nested(AccessEntryOut))
    total = fields.Integer()
    next_before = fields.Integer(allow_none=True)


class DisclosureQuery(Strict):
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "csv"]))


class DisclosureOut(ma.Schema):
    date = Timestamp()
    recipient = fields.Nested(ActorOut)
    description = fields.String()
    purpose = fields.String()
    basis = fields.String()
    record_id = fields.String()
    version = fields.Integer(allow_none=True)
    category = fields.String()
    ledger_index = fields.Integer()
    leaf_hash = fields.String()
    kind = fields.String(
        metadata={
            "description": "read (a record's content), listing (the record titles in one category) or "
            "attestation (a signed answer about the records, never their content)"
        }
    )
    grant_id = fields.String(allow_none=True, metadata={"description": "the grant that permitted it, if one did"})
    records = fields.Integer(metadata={"description": "how many records it concerned (a listing: how many titles)"})
    proof = fields.String(
        metadata={"description": "Path of the inclusion proof of this line at the report's tree_size."}
    )


class DisclosureReportOut(ma.Schema):
    subject_id = fields.String()
    generated_at = Timestamp()
    period_start = Timestamp()
    period_end = Timestamp()
    tree_size = fields.Integer()
    root_hash = fields.String()
    items = fields.List(fields.Nested(DisclosureOut))
    total = fields.Integer()


# --- examples ----------------------------------------------------------------------------------

_CLINIC_ACTOR = {"id": CLINIC, "role": "clinic", "name": "Riverside Clinic"}
_READ = {
    "ledger_index": 20,
    "leaf_hash": "1460920ac1c145f8a06d985d905811baa0d82459b0e913481e717a2f4ea19309",
    "occurred_at": "2026-11-29T11:04:52.215Z",
    "kind": "access.permitted",
    "outcome": "permitted",
    "actor": _CLINIC_ACTOR,
    "action": "read",
    "record_id": RECORD,
    "version": 1,
    "category": "health.allergies",
    "purpose": "treatment",
    "basis": "grant",
    "grant_id": GRANT,
    "delegation_id": None,
    "break_glass_id": None,
    "flagged": False,
    "reason": None,
}
_REFUSED = {
    **_READ,
    "ledger_index": 17,
    "leaf_hash": "7b1640fea1a56a613cb00ad0f0d4fd2899d70b6d57c8f7a703ae9f4dd6b180b1",
    "occurred_at": "2026-11-28T16:40:09.871Z",
    "kind": "access.refused",
    "outcome": "refused",
    "actor": {"id": LANDLORD, "role": "landlord", "name": "Harbour Housing"},
    "record_id": TENANCY_RECORD,
    "category": "tenancy.income",
    "purpose": "tenancy-screening",
    "basis": None,
    "grant_id": None,
    "reason": "expired",
}
ACCESS_LOG_EXAMPLE = {"items": [_READ, _REFUSED], "total": 2, "next_before": 17}

DISCLOSURES_EXAMPLE = {
    "subject_id": AMINA,
    "generated_at": "2026-11-30T09:12:44.502Z",
    "period_start": "2020-11-30T09:12:44.502Z",
    "period_end": "2026-11-30T09:12:44.502Z",
    "tree_size": 26,
    "root_hash": ROOT_26,
    "items": [
        {
            "date": _READ["occurred_at"],
            "recipient": _CLINIC_ACTOR,
            "description": f"Allergies and adverse reactions (health.allergies): record {RECORD}, version 1",
            "purpose": "treatment",
            "basis": "grant",
            "record_id": RECORD,
            "version": 1,
            "category": "health.allergies",
            "ledger_index": 20,
            "leaf_hash": _READ["leaf_hash"],
            "kind": "read",
            "grant_id": _READ["grant_id"],
            "records": 1,
            "proof": "/api/v1/ledger/proofs/inclusion?leaf_index=20&tree_size=26",
        }
    ],
    "total": 1,
}
DISCLOSURES_CSV_EXAMPLE = (
    "date,recipient_id,recipient_role,recipient_name,description,purpose,basis,ledger_index,leaf_hash,proof\r\n"
    f'{_READ["occurred_at"]},{CLINIC},clinic,Riverside Clinic,"Allergies and adverse reactions (health.allergies): '
    f'record {RECORD}, version 1",treatment,grant,20,{_READ["leaf_hash"]},'
    "/api/v1/ledger/proofs/inclusion?leaf_index=20&tree_size=26\r\n"
)

EXPORT_EXAMPLE = {
    "format": "civicvault-export-v1",
    "generated_at": "2026-11-30T09:15:02.118Z",
    "subject": {"id": AMINA, "role": "resident", "name": "Amina Yusuf", "created_at": "2026-11-02T08:15:04.512Z"},
    "records": [
        {
            "id": RECORD,
            "subject_id": AMINA,
            "category": "health.allergies",
            "current_version": 1,
            "created_at": "2026-11-25T09:30:00.000Z",
            "updated_at": "2026-11-25T09:30:00.000Z",
            "versions": [
                {
                    "version": 1,
                    "title": "Penicillin allergy",
                    "content": {"substance": "penicillin", "reaction": "urticaria", "severity": "moderate"},
                    "created_at": "2026-11-25T09:30:00.000Z",
                    "created_by": AMINA,
                }
            ],
        }
    ],
    "health_records": {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": "2026-11-30T09:15:02.118Z",
        "entry": [
            {
                "fullUrl": f"urn:civicvault:Patient:{AMINA}",
                "resource": {"resourceType": "Patient", "id": AMINA, "name": [{"text": "Amina Yusuf"}]},
            }
        ],
    },
    "grants": [{**GRANT_EXAMPLE, "fhir": FHIR_CONSENT_EXAMPLE}],
    "access_requests": [],
    "delegations": [],
    "break_glass": [],
    "access_log": [_READ],
    "receipt": {
        "leaf_index": 27,
        "leaf_hash": "ae56bab4ae2c41114ec8356c8ed5dcf82ba8ee130f6f18b2aed32602ce35b8c4",
        "status": "sequenced",
    },
}
