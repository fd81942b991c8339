"""Residents' encrypted records: create, list, read, add a version."""

import marshmallow as ma
from marshmallow import fields, validate

from api.schemas.common import (
    AGENCY,
    AMINA,
    ISSUER_KEY,
    RECEIPT,
    RECORD,
    TENANCY_RECORD,
    ReceiptOut,
    Strict,
    Timestamp,
)
from vault.core.content import MAX_TITLE_LENGTH
from vault.core.vocabulary import CATEGORIES, PURPOSES

PURPOSE = {"description": "Why the caller needs this; required of everyone but the resident themself."}
SIGNATURE = {
    "description": "An issuer's detached Ed25519 signature over this subject, category, content, issued_at, issuer "
    "(the caller) and key (docs/attestations.md, 'Issuer signatures'; `civicvault issuer sign` makes one). Clinics, "
    "landlords and agencies only; verified before anything is stored, and a bad one is refused with 400."
}


class SignatureIn(Strict):
    key_id = fields.String(
        required=True, validate=validate.Length(min=1, max=40), metadata={"description": "One of your issuer keys"}
    )
    issued_at = fields.String(
        required=True,
        validate=validate.Regexp(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"),
        metadata={"description": "When you issued it: UTC to the second, YYYY-MM-DDTHH:MM:SSZ, exactly as signed"},
    )
    value = fields.String(
        required=True,
        validate=validate.Regexp(r"^[0-9a-f]{128}$"),
        metadata={"description": "The 64-byte Ed25519 signature, lowercase hex"},
    )


class ProvenanceOut(ma.Schema):
    kind = fields.String(
        required=True,
        metadata={
            "enum": ["issued", "self-asserted"],
            "description": "issued: signed by the issuer below, and the signature verified before it was stored; "
            "self-asserted: nobody vouched for the content",
        },
    )
    issuer_id = fields.String(required=True, allow_none=True)
    issuer_name = fields.String(required=True, allow_none=True)
    key_id = fields.String(required=True, allow_none=True, metadata={"description": "The issuer key that signed"})
    issued_at = Timestamp(required=True, allow_none=True, metadata={"description": "When the issuer says it issued it"})
    key_revoked_at = Timestamp(
        required=True,
        allow_none=True,
        metadata={"description": "When the signing key was revoked (it signed this before), or null"},
    )


class ProvenanceWithSignatureOut(ProvenanceOut):
    signature = fields.Function(
        lambda p: None if p.signature is None else p.signature.hex(),
        required=True,
        allow_none=True,
        metadata={
            "type": "string",
            "nullable": True,
            "description": "The issuer's Ed25519 signature, lowercase hex, to check anywhere with the key's public key "
            "(GET /api/v1/issuer-keys/{key_id})",
        },
    )


class RecordCreateIn(Strict):
    category = fields.String(required=True, validate=validate.OneOf(CATEGORIES))
    purpose = fields.String(load_default=None, validate=validate.OneOf(PURPOSES), metadata=PURPOSE)
    content = fields.Dict(required=True, metadata={"description": "A JSON object, sealed at rest."})
    title = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=MAX_TITLE_LENGTH))
    signature = fields.Nested(SignatureIn, load_default=None, metadata=SIGNATURE)


class RecordUpdateIn(Strict):
    content = fields.Dict(required=True)
    purpose = fields.String(load_default=None, validate=validate.OneOf(PURPOSES), metadata=PURPOSE)
    title = fields.String(
        allow_none=True,
        validate=validate.Length(max=MAX_TITLE_LENGTH),
        metadata={"description": "Omit to keep the current title; null or empty removes it."},
    )
    expected_version = fields.Integer(
        load_default=None,
        allow_none=True,
        strict=True,
        validate=validate.Range(min=1),
        metadata={"description": "Refuse with 409 unless the record is still at this version."},
    )
    signature = fields.Nested(SignatureIn, load_default=None, metadata=SIGNATURE)


class RecordListQuery(Strict):
    category = fields.String(load_default=None, validate=validate.OneOf(CATEGORIES))
    purpose = fields.String(load_default=None, validate=validate.OneOf(PURPOSES), metadata=PURPOSE)


class RecordReadQuery(Strict):
    purpose = fields.String(load_default=None, validate=validate.OneOf(PURPOSES), metadata=PURPOSE)
    version = fields.Integer(load_default=None, validate=validate.Range(min=1, max=2**31 - 1))


class RecordMetaOut(ma.Schema):
    id = fields.String(required=True)
    subject_id = fields.String(required=True)
    category = fields.String(required=True)
    version = fields.Integer(required=True)
    title = fields.String(allow_none=True)
    created_at = Timestamp(required=True)
    updated_at = Timestamp(required=True)
    provenance = fields.Nested(
        ProvenanceOut, required=True, metadata={"description": "Issued by an issuer who signed it, or self-asserted"}
    )


class RecordListOut(ma.Schema):
    items = fields.List(fields.Nested(RecordMetaOut), required=True)
    total = fields.Integer(required=True)


class RecordOut(RecordMetaOut):
    provenance = fields.Nested(
        ProvenanceWithSignatureOut,
        required=True,
        metadata={"description": "Of this version: issued (with the signature) or self-asserted"},
    )
    content = fields.Dict(required=True)
    receipt = fields.Nested(
        ReceiptOut, required=True, metadata={"description": "The record.read entry of this read in the ledger."}
    )


SELF_ASSERTED = {
    "kind": "self-asserted",
    "issuer_id": None,
    "issuer_name": None,
    "key_id": None,
    "issued_at": None,
    "key_revoked_at": None,
}
ISSUED = {
    "kind": "issued",
    "issuer_id": AGENCY,
    "issuer_name": "Northside Payroll Services",
    "key_id": ISSUER_KEY,
    "issued_at": "2026-11-26T16:40:00.000Z",
    "key_revoked_at": None,
}
ALLERGY = {"substance": "penicillin", "reaction": "urticaria", "severity": "moderate", "recorded": "2019-04-11"}

RECORD_CREATE_EXAMPLE = {"category": "health.allergies", "title": "Penicillin allergy", "content": ALLERGY}
RECORD_UPDATE_EXAMPLE = {
    "content": {**ALLERGY, "severity": "severe", "note": "anaphylaxis in 2026; carries an auto-injector"},
    "expected_version": 1,
}
RECORD_META_EXAMPLE = {
    "id": RECORD,
    "subject_id": AMINA,
    "category": "health.allergies",
    "version": 1,
    "title": "Penicillin allergy",
    "created_at": "2026-11-25T09:30:00.000Z",
    "updated_at": "2026-11-25T09:30:00.000Z",
    "provenance": SELF_ASSERTED,
}
RECORD_UPDATED_EXAMPLE = {**RECORD_META_EXAMPLE, "version": 2, "updated_at": "2026-12-03T14:02:45.118Z"}
RECORD_LIST_EXAMPLE = {
    "items": [
        RECORD_META_EXAMPLE,
        {
            "id": TENANCY_RECORD,
            "subject_id": AMINA,
            "category": "tenancy.income",
            "version": 1,
            "title": "Income statement 2025",
            "created_at": "2026-11-26T16:41:12.907Z",
            "updated_at": "2026-11-26T16:41:12.907Z",
            "provenance": ISSUED,
        },
    ],
    "total": 2,
}
RECORD_EXAMPLE = {
    **RECORD_META_EXAMPLE,
    "provenance": {**SELF_ASSERTED, "signature": None},
    "content": ALLERGY,
    "receipt": RECEIPT,
}
