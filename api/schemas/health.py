"""Service health (``GET /healthz``)."""

import marshmallow as ma
from marshmallow import fields


class LedgerHealthOut(ma.Schema):
    sequencer = fields.String(
        metadata={"enum": ["server", "external"], "description": "who sequences (CIVICVAULT_SEQUENCER)"}
    )
    pending = fields.Integer(metadata={"description": "events committed and waiting for their index (at most)"})
    oldest_pending_seconds = fields.Float(allow_none=True, metadata={"description": "how long the oldest has waited"})
    max_pending = fields.Integer(
        metadata={"description": "back-pressure: at this backlog actions are refused with 503 ledger-busy"}
    )
    pending_bound_seconds = fields.Integer(metadata={"description": "an event pending longer is reported"})


class HealthOut(ma.Schema):
    status = fields.String(
        required=True,
        metadata={
            "enum": ["ok", "degraded"],
            "description": "degraded: events wait longer than the bound, or the backlog refuses actions",
        },
    )
    ledger = fields.Nested(LedgerHealthOut)


HEALTH_EXAMPLE = {
    "status": "ok",
    "ledger": {
        "sequencer": "server",
        "pending": 0,
        "oldest_pending_seconds": None,
        "max_pending": 100000,
        "pending_bound_seconds": 60,
    },
}
