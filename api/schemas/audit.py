"""Compliance: trail search, break-glass review, flags."""

from datetime import UTC, datetime

import marshmallow as ma
from marshmallow import fields, validate

from api.schemas.common import (
    AMINA,
    BREAK_GLASS,
    CATEGORY_PATTERNS,
    CLINIC,
    COMPLIANCE,
    GRANT,
    LANDLORD,
    RECORD,
    TIME,
    ReceiptOut,
    Strict,
    Timestamp,
    id_field,
)
from api.schemas.consent import BREAK_GLASS_EXAMPLE
from vault.compliance import audit_csv, audit_flags, break_glass_review
from vault.compliance.audit_search import KIND_PATTERNS, EventLine
from vault.core.bounds import MAX_AUDIT_PAGE as MAX_PAGE
from vault.core.vocabulary import PURPOSES
from vault.storage import audit_index

INDEX = validate.Range(min=0, max=2**62)


class EventQuery(Strict):
    subject_id = id_field("the resident the events concern")
    actor_id = id_field("the principal who acted")
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
        load_default=None,
        validate=INDEX,
        metadata={"description": "cursor: the last ledger_index of the previous page"},
    )
    as_of = fields.Integer(
        load_default=None,
        validate=INDEX,
        metadata={"description": "the ledger size the search is pinned to (from the first page)"},
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
    code = fields.String(metadata={"description": "the coded reason; other for a declaration made without one"})
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


# --- examples ----------------------------------------------------------------------------------

_EVENT_LINE = EventLine(
    ledger_index=20,
    leaf_hash="1460920ac1c145f8a06d985d905811baa0d82459b0e913481e717a2f4ea19309",
    occurred_at=datetime(2026, 11, 29, 11, 4, 52, 215000, tzinfo=UTC),
    kind="access.permitted",
    outcome="permitted",
    actor_id=CLINIC,
    subject_id=AMINA,
    purpose="treatment",
    categories=("health.allergies",),
    data={
        "action": "read",
        "actor_role": "clinic",
        "basis": "grant",
        "break_glass_id": None,
        "category": "health.allergies",
        "delegation_id": None,
        "flagged": False,
        "grant_id": GRANT,
        "purpose": "treatment",
        "record_id": RECORD,
    },
    erased=False,
)
_EVENT = EventOut().dump(_EVENT_LINE)
EVENT_PAGE_EXAMPLE = {
    "items": [_EVENT],
    "total": 3,
    "as_of": 26,
    "limit": 1,
    "next_after": 20,
    "next": f"/api/v1/audit/events?subject_id={AMINA}&kind=access.%2A&limit=1&as_of=26&after=20",
}
EVENTS_CSV_EXAMPLE = "".join(audit_csv.stream([[_EVENT_LINE]]))  # what format=csv sends

_DECLARATION = {
    "leaf_index": 22,
    "leaf_hash": "5c0f7d2e91b84a36c8e1d07f3a96b25e4d18c7a03f62e9b5d1a47c80e36f29b1",
    "status": "sequenced",
}
REVIEW_EXAMPLE = {
    **{k: v for k, v in BREAK_GLASS_EXAMPLE.items() if k not in ("purpose", "categories")},
    "active": False,
    "uses": 2,
    "declaration": _DECLARATION,
    "status": "pending",
    "acknowledged_at": None,
    "acknowledged_by": None,
    "note": None,
    "receipt": None,
}
ACKNOWLEDGE_IN_EXAMPLE = {
    "note": "Confirmed with the A&E duty consultant: patient unconscious, admission record attached. Justified."
}
REVIEW_ACKNOWLEDGED_EXAMPLE = {
    **REVIEW_EXAMPLE,
    "status": "acknowledged",
    "acknowledged_at": "2026-12-06T10:31:18.045Z",
    "acknowledged_by": COMPLIANCE,
    "note": ACKNOWLEDGE_IN_EXAMPLE["note"],
    "receipt": {
        "leaf_index": 31,
        "leaf_hash": "a3e9c15b7d02f84e6c19b0d5f72a38e4c61d9b07f5e23a8c4d10b6e97f3c25a8",
        "status": "sequenced",
    },
}
REVIEW_LIST_EXAMPLE = {"items": [REVIEW_EXAMPLE], "total": 1}

FLAG_LIST_EXAMPLE = {
    "from": "2026-11-29T00:00:00.000Z",
    "to": "2026-12-06T00:00:00.000Z",
    "thresholds": {
        "refusal_count": 5,
        "refusal_minutes": 10,
        "volume_window_hours": 24,
        "volume_baseline_windows": 7,
        "volume_factor": 5.0,
        "volume_min_reads": 20,
        "expiry_hours": 24,
    },
    "items": [
        {
            "rule": "break-glass",
            "principal_id": CLINIC,
            "subject_id": AMINA,
            "first_at": "2026-12-05T02:17:09.330Z",
            "last_at": "2026-12-05T02:19:40.806Z",
            "count": 3,
            "ledger_indices": [22, 23, 24],
            "detail": {"break_glass_id": BREAK_GLASS, "reads": 2, "acknowledged": False},
        },
        {
            "rule": "refusal-burst",
            "principal_id": LANDLORD,
            "subject_id": AMINA,
            "first_at": "2026-12-02T13:05:00.412Z",
            "last_at": "2026-12-02T13:08:51.977Z",
            "count": 6,
            "ledger_indices": [25, 26, 27, 28, 29, 30],
            "detail": {"subjects": 1, "reasons": ["expired"], "minutes": 3.9},
        },
    ],
    "total": 2,
}
