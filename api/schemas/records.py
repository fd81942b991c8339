"""Residents' encrypted records: create, list, read, add a version."""

import marshmallow as ma
from marshmallow import fields, validate

from api.schemas.common import AMINA, RECEIPT, RECORD, TENANCY_RECORD, ReceiptOut, Strict, Timestamp
from vault.core.content import MAX_TITLE_LENGTH
from vault.core.vocabulary import CATEGORIES, PURPOSES

PURPOSE = {"description": "Why the caller needs this; required of everyone but the resident themself."}


class RecordCreateIn(Strict):
    category = fields.String(required=True, validate=validate.OneOf(CATEGORIES))
    purpose = fields.String(load_default=None, validate=validate.OneOf(PURPOSES), metadata=PURPOSE)
    content = fields.Dict(required=True, metadata={"description": "A JSON object, sealed at rest."})
    title = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=MAX_TITLE_LENGTH))


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


class RecordListOut(ma.Schema):
    items = fields.List(fields.Nested(RecordMetaOut), required=True)
    total = fields.Integer(required=True)


class RecordOut(RecordMetaOut):
    content = fields.Dict(required=True)
    receipt = fields.Nested(
        ReceiptOut, required=True, metadata={"description": "The record.read entry of this read in the ledger."}
    )


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
            "title": "Payslips, September to November",
            "created_at": "2026-11-26T16:41:12.907Z",
            "updated_at": "2026-11-26T16:41:12.907Z",
        },
    ],
    "total": 2,
}
RECORD_EXAMPLE = {**RECORD_META_EXAMPLE, "content": ALLERGY, "receipt": RECEIPT}
