"""Ledger endpoints: inclusion and consistency proofs for anyone authenticated."""

import marshmallow as ma
from flask.views import MethodView
from marshmallow import fields, validate

from api.context import authenticate_request, current_vault
from api.parsing import Blueprint
from api.schemas import Strict
from vault import checkpoints, ledger

blp = Blueprint("ledger", __name__, url_prefix="/api/v1/ledger", description="The verifiable log of every event")
blp.before_request(authenticate_request)

SIZE = {"validate": validate.Range(min=0, max=2**62)}
HEX = {"description": "lowercase hex"}


class InclusionQuery(Strict):
    leaf_index = fields.Integer(required=True, **SIZE)
    tree_size = fields.Integer(load_default=None, metadata={"description": "default: the current size"}, **SIZE)


class InclusionOut(ma.Schema):
    leaf_index = fields.Integer()
    tree_size = fields.Integer()
    leaf_hash = fields.String(metadata=HEX)
    audit_path = fields.List(fields.String(metadata=HEX))
    root_hash = fields.String(metadata=HEX)


class ConsistencyQuery(Strict):
    first = fields.Integer(required=True, **SIZE)
    second = fields.Integer(load_default=None, metadata={"description": "default: the current size"}, **SIZE)


class ConsistencyOut(ma.Schema):
    first = fields.Integer()
    second = fields.Integer()
    first_root = fields.String(metadata=HEX)
    second_root = fields.String(metadata=HEX)
    consistency_path = fields.List(fields.String(metadata=HEX))


class SignatureOut(ma.Schema):
    name = fields.String()
    key_id = fields.String(metadata=HEX)
    signature = fields.String(metadata={"description": "base64 of the 96-byte BLS12-381 signature"})


class CheckpointOut(ma.Schema):
    origin = fields.String()
    tree_size = fields.Integer()
    root_hash = fields.String(metadata=HEX)
    note = fields.String(metadata={"description": "the signed note (docs/ledger-format.md)"})
    signatures = fields.List(fields.Nested(SignatureOut))


@blp.route("/checkpoint")
class LatestCheckpoint(MethodView):
    @blp.response(200, CheckpointOut)
    def get(self):
        """The latest signed checkpoint"""
        with current_vault().read_transaction() as session:
            return checkpoints.latest(session)


@blp.route("/proofs/inclusion")
class Inclusion(MethodView):
    @blp.arguments(InclusionQuery, location="query")
    @blp.response(200, InclusionOut)
    def get(self, query):
        """RFC 9162 inclusion proof of a leaf in the tree of tree_size leaves"""
        with current_vault().read_transaction() as session:
            return ledger.inclusion(session, **query)


@blp.route("/proofs/consistency")
class Consistency(MethodView):
    @blp.arguments(ConsistencyQuery, location="query")
    @blp.response(200, ConsistencyOut)
    def get(self, query):
        """RFC 9162 consistency proof between two tree sizes"""
        with current_vault().read_transaction() as session:
            return ledger.consistency(session, **query)
