"""``GET /healthz``: liveness, database reachability and the sequencer's backlog, no authentication."""

from datetime import UTC, datetime
from typing import Any

from flask.views import MethodView

from api.context import reading
from api.openapi import Blueprint
from api.schemas.health import HEALTH_EXAMPLE, HealthOut
from vault.ledger import ledger
from vault.storage import health

blp = Blueprint("health", __name__, description="Service health")


@blp.route("/healthz")
class Health(MethodView):
    @blp.doc(security=[])
    @blp.response(200, HealthOut, example=HEALTH_EXAMPLE)
    @blp.problems(503)
    def get(self) -> dict[str, Any]:
        """The service is up, its database answers, and how many events wait for the sequencer"""
        with reading() as call:
            health.check(call.session)
            backlog = ledger.pending_backlog(call.session, now=datetime.now(UTC))  # wall clock, as queued_at
        sequencer = call.settings.sequencer
        late = backlog.oldest_seconds is not None and backlog.oldest_seconds > sequencer.pending_bound_seconds
        return {
            "status": "degraded" if late or backlog.pending >= sequencer.max_pending else "ok",
            "ledger": {
                "sequencer": sequencer.mode,
                "pending": backlog.pending,
                "oldest_pending_seconds": backlog.oldest_seconds,
                "max_pending": sequencer.max_pending,
                "pending_bound_seconds": sequencer.pending_bound_seconds,
            },
        }
