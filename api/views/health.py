"""``GET /healthz``: liveness and database reachability, no authentication."""

from flask.views import MethodView
from sqlalchemy import text

from api.context import current_vault
from api.parsing import Blueprint
from api.schemas import HealthOut

blp = Blueprint("health", __name__, description="Service health")


@blp.route("/healthz")
class Health(MethodView):
    @blp.doc(security=[])
    @blp.response(200, HealthOut)
    def get(self):
        """The service is up and its database answers"""
        with current_vault().read_transaction() as session:
            session.execute(text("SELECT 1"))
        return {"status": "ok"}
