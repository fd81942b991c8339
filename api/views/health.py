"""``GET /healthz``: liveness and database reachability, no authentication."""

from flask.views import MethodView

from api.context import reading
from api.openapi import Blueprint
from api.schemas.health import HEALTH_EXAMPLE, HealthOut
from vault.storage import health

blp = Blueprint("health", __name__, description="Service health")


@blp.route("/healthz")
class Health(MethodView):
    @blp.doc(security=[])
    @blp.response(200, HealthOut, example=HEALTH_EXAMPLE)
    @blp.problems(503)
    def get(self) -> dict[str, str]:
        """The service is up and its database answers"""
        with reading() as call:
            health.check(call.session)
        return {"status": "ok"}
