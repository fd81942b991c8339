"""Ledger endpoints: the checkpoint, inclusion and consistency proofs, witnesses' keys and cosignatures."""

import base64
import dataclasses
from typing import Any

from flask.views import MethodView

from api.context import Body, Query, authenticate_request, reading, writing
from api.openapi import Blueprint
from api.schemas.ledger import (
    CHECKPOINT_EXAMPLE,
    CONSISTENCY_EXAMPLE,
    COSIGNATURE_EXAMPLE,
    COSIGNATURE_IN_EXAMPLE,
    ENTRY_EXAMPLE,
    ENTRY_PENDING_EXAMPLE,
    INCLUSION_ANCHORED_EXAMPLE,
    INCLUSION_EXAMPLE,
    WITNESS_IN_EXAMPLE,
    CheckpointOut,
    ConsistencyOut,
    ConsistencyQuery,
    CosignatureIn,
    CosignatureOut,
    EntryOut,
    InclusionOut,
    InclusionQuery,
    WitnessIn,
)
from vault.anchoring import proofs
from vault.ledger import checkpoints, ledger, witnesses
from vault.ledger.checkpoints import CheckpointView

blp = Blueprint("ledger", __name__, url_prefix="/api/v1/ledger", description="The verifiable log of every event")
blp.before_request(authenticate_request)


def _with_anchor(proved: proofs.Proved[Any]) -> object:
    """The proof, and the anchor it was made against when there is one (no ``anchor`` key otherwise)."""
    if proved.anchor is None:
        return proved.proof
    return {**dataclasses.asdict(proved.proof), "anchor": proved.anchor}


@blp.route("/checkpoint")
class LatestCheckpoint(MethodView):
    @blp.response(200, CheckpointOut, example=CHECKPOINT_EXAMPLE)
    @blp.problems(401, 404)
    def get(self) -> CheckpointView:
        """The latest signed checkpoint, with witness cosignatures"""
        with reading() as call:
            return checkpoints.latest(call.session, threshold=call.settings.witness_threshold)


@blp.route("/witnesses")
class Witnesses(MethodView):
    @blp.arguments(WitnessIn, example=WITNESS_IN_EXAMPLE)
    @blp.response(204)
    @blp.problems(400, 401, 403, 409, 413, 415)
    def post(self, body: Body) -> None:
        """Register the calling witness's BLS public key, with a proof of possession"""
        with writing() as call:
            witnesses.register(
                call.session,
                call.caller,
                public_key=bytes.fromhex(body["public_key"]),
                proof=bytes.fromhex(body["proof_of_possession"]),
                now=call.now,
            )


@blp.route("/cosignatures")
class Cosignatures(MethodView):
    @blp.arguments(CosignatureIn, example=COSIGNATURE_IN_EXAMPLE)
    @blp.response(201, CosignatureOut, example=COSIGNATURE_EXAMPLE)
    @blp.problems(400, 401, 403, 404, 409, 413, 415)
    def post(self, body: Body) -> dict[str, int]:
        """Cosign a checkpoint (witnesses): accepted only if consistent with what this witness cosigned before"""
        with writing() as call:
            count = witnesses.cosign(
                call.session,
                call.caller,
                tree_size=body["tree_size"],
                root=bytes.fromhex(body["root_hash"]),
                signature=base64.b64decode(body["signature"]),
                now=call.now,
            )
        return {"tree_size": body["tree_size"], "cosigners": count}


@blp.route("/proofs/inclusion")
class Inclusion(MethodView):
    @blp.arguments(InclusionQuery, location="query")
    @blp.response(
        200,
        InclusionOut,
        examples={
            "at a size": {"summary": "leaf_index=5&tree_size=26", "value": INCLUSION_EXAMPLE},
            "anchored": {"summary": "leaf_index=5&anchored=true", "value": INCLUSION_ANCHORED_EXAMPLE},
        },
    )
    @blp.problems(400, 401, 404)
    def get(self, query: Query) -> object:
        """RFC 9162 inclusion proof of a leaf in the tree of tree_size leaves (or of the latest anchored size)"""
        with reading() as call:
            return _with_anchor(proofs.inclusion(call.session, **query))


@blp.route("/proofs/consistency")
class Consistency(MethodView):
    @blp.arguments(ConsistencyQuery, location="query")
    @blp.response(200, ConsistencyOut, example=CONSISTENCY_EXAMPLE)
    @blp.problems(400, 401, 404)
    def get(self, query: Query) -> object:
        """RFC 9162 consistency proof between two tree sizes (the second may be the latest anchored size)"""
        with reading() as call:
            return _with_anchor(proofs.consistency(call.session, **query))


@blp.route("/entries/<leaf_hash>")
class Entry(MethodView):
    @blp.response(
        200,
        EntryOut,
        examples={
            "sequenced": {"summary": "in the log", "value": ENTRY_EXAMPLE},
            "pending": {"summary": "waiting for the sequencer", "value": ENTRY_PENDING_EXAMPLE},
        },
    )
    @blp.problems(400, 401, 404)
    def get(self, leaf_hash: str) -> ledger.Entry:
        """An entry by the leaf hash a receipt names: its index and inclusion proof once sequenced, or pending"""
        with reading() as call:
            return ledger.entry(call.session, leaf_hash)
