"""Checkpoints anchored on an Ethereum-compatible chain, and proofs against the latest anchored size."""

import marshmallow as ma
from marshmallow import fields, validate

from api.schemas.common import HEX, Strict, Timestamp

ANCHORED = {
    "description": "prove against the latest anchored tree size (instead of giving the size); "
    "the answer names the anchor"
}


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


ANCHOR_EXAMPLE = {
    "origin": "civicvault",
    "tree_size": 26,
    "root_hash": "111c8206a1059c439802be4e203e34192dade95396332b68f25ab1cc05e5628b",
    "chain_id": 11155111,
    "contract": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
    "transaction_hash": "0x8d3f5e0c4b2a71e9d6c0f3a85b17e2c4d9a06f1e3b7c52d8e4a90f16b3c7d2e5",
    "block_number": 7204113,
    "block_hash": "0x2c6e9b1f04d8a37e5c21b9f60d4e8a73c15f2b96e07d3a48c9b1e5f26a0d7c34",
    "gas_used": 74218,
    "anchored_at": "2026-11-30T01:10:03.482Z",
}
ANCHORS_EXAMPLE = {"anchors": [ANCHOR_EXAMPLE]}
