"""Anchors: checkpoints recorded on an EVM chain, and proofs against the latest anchored size.

Served from the database only: no request ever waits for the chain's node.
"""

import marshmallow as ma
from flask.views import MethodView
from marshmallow import fields, validate

from api.context import authenticate_request, current_vault
from api.parsing import Blueprint
from api.schemas import Strict, Timestamp
from vault.anchoring import service
from vault.core.errors import InvalidInput

blp = Blueprint(
    "anchors", __name__, url_prefix="/api/v1/ledger", description="Checkpoints anchored on an Ethereum-compatible chain"
)
blp.before_request(authenticate_request)

HEX = {"description": "lowercase hex"}


class AnchorsQuery(Strict):
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))
    before = fields.Integer(
        load_default=None,
        validate=validate.Range(min=1, max=2**62),
        metadata={"description": "only anchors of a smaller tree size (the next page)"},
    )


class AnchorOut(ma.Schema):
    origin = fields.String()
    tree_size = fields.Integer()
    root_hash = fields.String(metadata=HEX)
    chain_id = fields.Integer()
    contract = fields.String(metadata={"description": "the anchor contract's address (EIP-55)"})
    transaction_hash = fields.Function(lambda a: "0x" + a.transaction_hash, metadata={"description": "0x-prefixed hex"})
    block_number = fields.Integer()
    block_hash = fields.Function(lambda a: "0x" + a.block_hash, metadata={"description": "0x-prefixed hex"})
    gas_used = fields.Integer()
    anchored_at = Timestamp()


class AnchorsOut(ma.Schema):
    anchors = fields.List(fields.Nested(AnchorOut))


@blp.route("/anchors")
class Anchors(MethodView):
    @blp.arguments(AnchorsQuery, location="query")
    @blp.response(200, AnchorsOut)
    def get(self, query):
        """Anchored checkpoints, largest tree size first, with chain, transaction and block"""
        with current_vault().read_transaction() as session:
            return {"anchors": service.list_anchors(session, limit=query["limit"], before=query["before"])}


ANCHORED = {
    "description": "prove against the latest anchored tree size (instead of giving the size); "
    "the answer names the anchor"
}


def against_latest_anchor(session, query: dict, size_field: str):
    """With ``anchored=true``: put the latest anchored size into ``size_field``; returns (query, anchor or None)."""
    query = dict(query)
    if not query.pop("anchored", False):
        return query, None
    if query.get(size_field) is not None:
        raise InvalidInput(f"Give either {size_field} or anchored=true, not both.")
    anchor = service.latest_anchor(session)  # 404 while nothing is anchored
    if "leaf_index" in query and query["leaf_index"] >= anchor.tree_size:
        raise InvalidInput(
            f"Entry {query['leaf_index']} is not covered by the latest anchor yet (size {anchor.tree_size})."
        )
    if "first" in query and query["first"] > anchor.tree_size:
        raise InvalidInput(f"first must be at most the latest anchored size, {anchor.tree_size}.")
    query[size_field] = anchor.tree_size
    return query, anchor
