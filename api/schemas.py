"""Marshmallow schemas: the shapes of requests and responses.

Every input schema refuses unknown fields (``RAISE``). Times are RFC 3339 UTC.
"""

import marshmallow as ma
from marshmallow import fields, validate

from vault.core.clock import rfc3339
from vault.core.content import MAX_TITLE_LENGTH
from vault.core.vocabulary import CATEGORIES, PURPOSES, ROLES


class Strict(ma.Schema):
    class Meta:
        unknown = ma.RAISE


class Timestamp(fields.Field):
    """Output-only RFC 3339 UTC timestamp, e.g. ``2026-11-25T09:30:00.000Z``."""

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else rfc3339(value)


class PrincipalOut(ma.Schema):
    id = fields.String(required=True)
    role = fields.String(required=True, metadata={"enum": list(ROLES)})
    name = fields.String(required=True)
    created_at = Timestamp(required=True)


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


class ReceiptOut(ma.Schema):
    leaf_index = fields.Integer(
        required=True, metadata={"description": "0-based index of this read's entry in the ledger"}
    )
    leaf_hash = fields.String(required=True, metadata={"description": "RFC 9162 leaf hash of the entry, lowercase hex"})


class RecordOut(RecordMetaOut):
    content = fields.Dict(required=True)
    receipt = fields.Nested(ReceiptOut, required=True)


class ProblemOut(ma.Schema):
    """RFC 9457 problem details, the body of every error response."""

    type = fields.String(required=True, metadata={"example": "urn:civicvault:problem:not-found"})
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    errors = fields.Dict(metadata={"description": "Field -> messages, for invalid input."})
    reason = fields.String(metadata={"description": "Reason code of a consent denial."})


class HealthOut(ma.Schema):
    status = fields.String(required=True)
