"""Ledger endpoints: inclusion and consistency proofs for anyone authenticated."""

import base64

import marshmallow as ma
from flask.views import MethodView
from marshmallow import fields, validate

from api.context import authenticate_request, caller, current_vault
from api.parsing import Blueprint
from api.schemas import Strict
from api.views.anchors import ANCHORED, AnchorOut, against_latest_anchor
from vault.ledger import checkpoints, ledger, witnesses

blp = Blueprint("ledger", __name__, url_prefix="/api/v1/ledger", description="The verifiable log of every event")
blp.before_request(authenticate_request)

SIZE = {"validate": validate.Range(min=0, max=2**62)}
HEX = {"description": "lowercase hex"}


class InclusionQuery(Strict):
    leaf_index = fields.Integer(required=True, **SIZE)
    tree_size = fields.Integer(load_default=None, metadata={"description": "default: the current size"}, **SIZE)
    anchored = fields.Boolean(load_default=False, metadata=ANCHORED)


class InclusionOut(ma.Schema):
    leaf_index = fields.Integer()
    tree_size = fields.Integer()
    leaf_hash = fields.String(metadata=HEX)
    audit_path = fields.List(fields.String(metadata=HEX))
    root_hash = fields.String(metadata=HEX)
    anchor = fields.Nested(
        AnchorOut, metadata={"description": "with anchored=true: the anchor that holds root_hash on chain"}
    )


class ConsistencyQuery(Strict):
    first = fields.Integer(required=True, **SIZE)
    second = fields.Integer(load_default=None, metadata={"description": "default: the current size"}, **SIZE)
    anchored = fields.Boolean(load_default=False, metadata=ANCHORED)


class ConsistencyOut(ma.Schema):
    first = fields.Integer()
    second = fields.Integer()
    first_root = fields.String(metadata=HEX)
    second_root = fields.String(metadata=HEX)
    consistency_path = fields.List(fields.String(metadata=HEX))
    anchor = fields.Nested(
        AnchorOut, metadata={"description": "with anchored=true: the anchor that holds second_root on chain"}
    )


class SignatureOut(ma.Schema):
    name = fields.String()
    key_id = fields.String(metadata=HEX)
    signature = fields.String(metadata={"description": "base64 of the 96-byte BLS12-381 signature"})


class CheckpointOut(ma.Schema):
    origin = fields.String()
    tree_size = fields.Integer()
    root_hash = fields.String(metadata=HEX)
    note = fields.String(
        metadata={"description": "the signed note: the node's signature, then the witnesses' (docs/ledger-format.md)"}
    )
    signatures = fields.List(fields.Nested(SignatureOut))
    cosigners = fields.Integer()
    threshold = fields.Integer()
    witnessed = fields.Boolean(metadata={"description": "at least `threshold` registered witnesses cosigned"})
    aggregate_signature = fields.String(
        allow_none=True, metadata={"description": "base64 aggregate of the witnesses' signatures"}
    )


class WitnessIn(Strict):
    public_key = fields.String(
        required=True, validate=validate.Regexp(r"^[0-9a-f]{96}$"), metadata={"description": "48-byte BLS key, hex"}
    )
    proof_of_possession = fields.String(required=True, validate=validate.Regexp(r"^[0-9a-f]{192}$"), metadata=HEX)


class CosignatureIn(Strict):
    tree_size = fields.Integer(required=True, validate=validate.Range(min=1, max=2**62))
    root_hash = fields.String(required=True, validate=validate.Regexp(r"^[0-9a-f]{64}$"), metadata=HEX)
    signature = fields.String(
        required=True, validate=validate.Regexp(r"^[A-Za-z0-9+/]{128}$"), metadata={"description": "base64, 96 bytes"}
    )


class CosignatureOut(ma.Schema):
    tree_size = fields.Integer()
    cosigners = fields.Integer()


@blp.route("/checkpoint")
class LatestCheckpoint(MethodView):
    @blp.response(200, CheckpointOut)
    def get(self):
        """The latest signed checkpoint, with witness cosignatures"""
        vault = current_vault()
        with vault.read_transaction() as session:
            return checkpoints.latest(session, threshold=vault.settings.witness_threshold)


@blp.route("/witnesses")
class Witnesses(MethodView):
    @blp.arguments(WitnessIn)
    @blp.response(204)
    def post(self, body):
        """Register the calling witness's BLS public key, with a proof of possession"""
        vault = current_vault()
        with vault.transaction() as session:
            witnesses.register(
                session,
                caller(),
                public_key=bytes.fromhex(body["public_key"]),
                proof=bytes.fromhex(body["proof_of_possession"]),
                now=vault.now(),
            )


@blp.route("/cosignatures")
class Cosignatures(MethodView):
    @blp.arguments(CosignatureIn)
    @blp.response(201, CosignatureOut)
    def post(self, body):
        """Cosign a checkpoint (witnesses): accepted only if consistent with what this witness cosigned before"""
        vault = current_vault()
        with vault.transaction() as session:
            count = witnesses.cosign(
                session,
                caller(),
                tree_size=body["tree_size"],
                root=bytes.fromhex(body["root_hash"]),
                signature=base64.b64decode(body["signature"]),
                now=vault.now(),
            )
        return {"tree_size": body["tree_size"], "cosigners": count}


@blp.route("/proofs/inclusion")
class Inclusion(MethodView):
    @blp.arguments(InclusionQuery, location="query")
    @blp.response(200, InclusionOut)
    def get(self, query):
        """RFC 9162 inclusion proof of a leaf in the tree of tree_size leaves (or of the latest anchored size)"""
        with current_vault().read_transaction() as session:
            query, anchor = against_latest_anchor(session, query, "tree_size")
            proof = ledger.inclusion(session, **query)
            return proof if anchor is None else {**vars(proof), "anchor": anchor}


@blp.route("/proofs/consistency")
class Consistency(MethodView):
    @blp.arguments(ConsistencyQuery, location="query")
    @blp.response(200, ConsistencyOut)
    def get(self, query):
        """RFC 9162 consistency proof between two tree sizes (the second may be the latest anchored size)"""
        with current_vault().read_transaction() as session:
            query, anchor = against_latest_anchor(session, query, "second")
            proof = ledger.consistency(session, **query)
            return proof if anchor is None else {**vars(proof), "anchor": anchor}
