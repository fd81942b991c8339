"""Marshmallow schemas of the compliance endpoints: trail search, break-glass review, flags."""

import marshmallow as ma
from marshmallow import fields, validate

from api.schemas import ReceiptOut, Strict, Timestamp
from api.schemas_consent import CATEGORY_PATTERNS, TIME
from vault.compliance import audit_flags, break_glass_review
from vault.compliance.audit_search import KIND_PATTERNS
from vault.core.bounds import MAX_AUDIT_PAGE as MAX_PAGE
from vault.core.vocabulary import PURPOSES
from vault.storage import audit_index

ID = {"validate": validate.Length(min=1, max=40)}
INDEX = {"validate": validate.Range(min=0, max=2**62)}


class EventQuery(Strict):
    subject_id = fields.String(load_default=None, metadata={"description": "the resident the events concern"}, **ID)
    actor_id = fields.String(load_default=None, metadata={"description": "the principal who acted"}, **ID)
    kind = fields.List(
        fields.String(validate=validate.OneOf(KIND_PATTERNS)),
        load_default=list,
        validate=validate.Length(max=len(KIND_PATTERNS)),
        metadata={"description": "event kind, or a family such as access.*; repeat for several (any of them)"},
    )
    outcome = fields.String(load_default=None, validate=validate.OneOf(audit_index.OUTCOMES))
    purpose = fields.String(load_default=None, validate=validate.OneOf(PURPOSES))
    category = fields.String(
        load_default=None,
        validate=validate.OneOf(CATEGORY_PATTERNS),
        metadata={"description": "exact (also matches grants of its family) or a family such as health.*"},
    )
    since = fields.AwareDateTime(
        data_key="from", load_default=None, metadata={"description": "inclusive; " + TIME["description"]}
    )
    until = fields.AwareDateTime(
        data_key="to", load_default=None, metadata={"description": "exclusive; " + TIME["description"]}
    )
    limit = fields.Integer(
        load_default=100, validate=validate.Range(min=1, max=MAX_PAGE), metadata={"description": "JSON pages only"}
    )
    after = fields.Integer(
        load_default=None, metadata={"description": "cursor: the last ledger_index of the previous page"}, **INDEX
    )
    as_of = fields.Integer(
        load_default=None,
        metadata={"description": "the ledger size the search is pinned to (from the first page)"},
        **INDEX,
    )
    format = fields.String(
        load_default=None,
        validate=validate.OneOf(("json", "csv")),
        metadata={"description": "csv: every match as text/csv (or send Accept: text/csv)"},
    )


class EventOut(ma.Schema):
    ledger_index = fields.Integer(
        metadata={"description": "prove with GET /api/v1/ledger/proofs/inclusion?leaf_index="}
    )
    leaf_hash = fields.String(metadata={"description": "RFC 9162 leaf hash, lowercase hex"})
    occurred_at = Timestamp()
    kind = fields.String()
    outcome = fields.String(allow_none=True, metadata={"enum": list(audit_index.OUTCOMES)})
    actor_id = fields.String(allow_none=True)
    subject_id = fields.String(allow_none=True)
    purpose = fields.String(allow_none=True)
    categories = fields.List(fields.String())
    data = fields.Dict(
        allow_none=True, metadata={"description": "the event's ids and codes (never record content); null once erased"}
    )
    erased = fields.Boolean()


class EventPageOut(ma.Schema):
    items = fields.List(fields.Nested(EventOut))
    total = fields.Integer(metadata={"description": "exact number of matches up to as_of"})
    as_of = fields.Integer(metadata={"description": "ledger size the search is pinned to; pass it back with after"})
    limit = fields.Integer()
    next_after = fields.Integer(allow_none=True)
    next = fields.String(allow_none=True, metadata={"description": "path and query of the next page; null on the last"})


class ReviewQuery(Strict):
    status = fields.String(load_default="pending", validate=validate.OneOf(break_glass_review.STATUSES))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=MAX_PAGE))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=2**31 - 1))


class AcknowledgeIn(Strict):
    note = fields.String(
        required=True,
        validate=validate.Length(min=1, max=break_glass_review.MAX_NOTE_LENGTH),
        metadata={"description": "the officer's finding; sealed at rest, never in the ledger"},
    )


class ReviewOut(ma.Schema):
    id = fields.String(metadata={"description": "the break-glass declaration"})
    subject_id = fields.String()
    clinic_id = fields.String()
    reason = fields.String(
        allow_none=True, metadata={"description": "the clinic's stated reason; null if the resident was erased"}
    )
    declared_at = Timestamp()
    expires_at = Timestamp()
    active = fields.Boolean()
    uses = fields.Integer()
    declaration = fields.Nested(ReceiptOut, allow_none=True)
    status = fields.String(metadata={"enum": list(break_glass_review.STATUSES)})
    acknowledged_at = Timestamp(allow_none=True)
    acknowledged_by = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    receipt = fields.Nested(ReceiptOut, allow_none=True, metadata={"description": "the break-glass.acknowledged event"})


class ReviewListOut(ma.Schema):
    items = fields.List(fields.Nested(ReviewOut))
    total = fields.Integer()


class FlagQuery(Strict):
    since = fields.AwareDateTime(
        data_key="from", load_default=None, metadata={"description": "inclusive; default: 7 days before to"}
    )
    until = fields.AwareDateTime(data_key="to", load_default=None, metadata={"description": "exclusive; default: now"})
    rule = fields.List(
        fields.String(validate=validate.OneOf(audit_flags.RULES)),
        load_default=list,
        validate=validate.Length(max=len(audit_flags.RULES)),
    )


class FlagOut(ma.Schema):
    rule = fields.String(metadata={"enum": list(audit_flags.RULES)})
    principal_id = fields.String()
    subject_id = fields.String(allow_none=True)
    first_at = Timestamp()
    last_at = Timestamp()
    count = fields.Integer()
    ledger_indices = fields.List(
        fields.Integer(), metadata={"description": f"the first {audit_flags.MAX_INDICES} events"}
    )
    detail = fields.Dict()


class ThresholdsOut(ma.Schema):
    refusal_count = fields.Integer()
    refusal_minutes = fields.Integer()
    volume_window_hours = fields.Integer()
    volume_baseline_windows = fields.Integer()
    volume_factor = fields.Float()
    volume_min_reads = fields.Integer()
    expiry_hours = fields.Integer()


class FlagListOut(ma.Schema):
    since = Timestamp(data_key="from")
    until = Timestamp(data_key="to")
    thresholds = fields.Nested(ThresholdsOut)
    items = fields.List(fields.Nested(FlagOut))
    total = fields.Integer()
