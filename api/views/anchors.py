"""Anchors: checkpoints recorded on an EVM chain (vault/anchoring).

Served from the database only: no request ever waits for the chain's node.
Proofs against the latest anchored size are the ledger's endpoints with
``anchored=true`` (api/views/ledger.py, vault/anchoring/proofs.py).
"""

from typing import Any

from flask.views import MethodView

from api.context import Query, authenticate_request, reading
from api.openapi import Blueprint
from api.schemas.anchors import ANCHORS_EXAMPLE, AnchorsOut, AnchorsQuery
from vault.anchoring import service

blp = Blueprint(
    "anchors", __name__, url_prefix="/api/v1/ledger", description="Checkpoints anchored on an Ethereum-compatible chain"
)
blp.before_request(authenticate_request)


@blp.route("/anchors")
class Anchors(MethodView):
    @blp.arguments(AnchorsQuery, location="query")
    @blp.response(200, AnchorsOut, example=ANCHORS_EXAMPLE)
    @blp.problems(400, 401)
    def get(self, query: Query) -> dict[str, Any]:
        """Anchored checkpoints, largest tree size first, with chain, transaction and block"""
        with reading() as call:
            return {"anchors": service.list_anchors(call.session, limit=query["limit"], before=query["before"])}
