"""Marshmallow schemas of the residents' trail: access log, disclosures, export."""

import marshmallow as ma
from marshmallow import fields, validate

from api.schemas import Strict, Timestamp
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


class AccessEntryOut(ma.Schema):
    ledger_index = fields.Integer()
    leaf_hash = fields.String()
    occurred_at = Timestamp()
    kind = fields.String()
    outcome = fields.String(metadata={"enum": ["permitted", "refused", "declared"]})
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
