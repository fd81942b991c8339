"""The verifiable log: checkpoints, inclusion and consistency proofs, witnesses' keys and cosignatures."""

import marshmallow as ma
from marshmallow import fields, validate

from api.schemas.anchors import ANCHOR_EXAMPLE, ANCHORED, AnchorOut
from api.schemas.common import HEX, Strict, Timestamp

SIZE = validate.Range(min=0, max=2**62)
CURRENT = {"description": "default: the current size"}


class InclusionQuery(Strict):
    leaf_index = fields.Integer(required=True, validate=SIZE)
    tree_size = fields.Integer(load_default=None, validate=SIZE, metadata=CURRENT)
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
    first = fields.Integer(required=True, validate=SIZE)
    second = fields.Integer(load_default=None, validate=SIZE, metadata=CURRENT)
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


class EntryOut(ma.Schema):
    leaf_hash = fields.String(metadata=HEX)
    status = fields.String(
        metadata={
            "enum": ["pending", "sequenced"],
            "description": "pending: committed, waiting for the sequencer; sequenced: in the log at leaf_index",
        }
    )
    leaf_index = fields.Integer(allow_none=True)
    queued_at = Timestamp(allow_none=True, metadata={"description": "pending: when the event was committed"})
    inclusion = fields.Nested(
        InclusionOut, allow_none=True, metadata={"description": "sequenced: its inclusion proof at the current size"}
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
        required=True,
        validate=validate.Regexp(r"^[A-Za-z0-9+/]{128}$"),
        metadata={
            "description": "base64 of the 96-byte BLS12-381 signature over the cosignature message "
            "('civicvault-cosignature/v1' and the checkpoint text: docs/ledger-format.md section 6), "
            "never the log's own signed bytes"
        },
    )


class CosignatureOut(ma.Schema):
    tree_size = fields.Integer()
    cosigners = fields.Integer()


# --- examples: one real ledger of 26 entries, its checkpoint and proofs --------------------------

ROOT_26 = "111c8206a1059c439802be4e203e34192dade95396332b68f25ab1cc05e5628b"
# Signed by the example node key SigningKey(sha256(b"civicvault example node key")), public key
# a399e5cf...0177fc, in the note format of docs/ledger-format.md section 6.
NODE_SIGNATURE = (
    "hWJIxGEdPcdwYOmcvcg31wsYMGrp2MVWvekMs+M2jvBKxEo2GgkE2NKXJoAHMNaXGGr6J9r0ozbNgy1/"
    "wB7bb3V3Yw35eGag6N376XdcuqcvqRvI4+CjbCc/Gtfzsi5x"
)
CHECKPOINT_EXAMPLE = {
    "origin": "civicvault",
    "tree_size": 26,
    "root_hash": ROOT_26,
    "note": "civicvault\n26\nERyCBqEFnEOYAr5OID40GS2t6VOWMyto8lqxzAXlYos=\n\n"
    "\u2014 civicvault wh7dsYViSMRhHT3HcGDpnL3IN9cLGDBq6djFVr3pDLPjNo7wSsRKNhoJBNjSlyaABzDWlxhq+ifa9KM2zYMtf8Ae"
    "2291d2MN+XhmoOjd++l3XLqnL6kbyOPgo2wnPxrX87IucQ==\n",
    "signatures": [{"name": "civicvault", "key_id": "c21eddb1", "signature": NODE_SIGNATURE}],
    "cosigners": 0,
    "threshold": 1,
    "witnessed": False,
    "aggregate_signature": None,
}
INCLUSION_EXAMPLE = {
    "leaf_index": 5,
    "tree_size": 26,
    "leaf_hash": "623649e97acda06c623175c5aec2473bfcbcaf1cf264274cbd50befa4de636df",
    "audit_path": [
        "97dcd110de9114024a8fe0e9e96f9bfed00c0332c2221c55ae73607e26f4f118",
        "fc74d1b3d55df5f6d735e0ee70ab4230e38b839f9495284c1cb874812339c263",
        "7eaa9b73956b260311fa3f13f3c5b7a85d051bfc44e2e2a9c4f8a1dc95c2fd2a",
        "aa279c6e9780a02ca7154ef5c4ab061dfc627cb55b0aa63a17ef07ae18119dce",
        "25dca93df74f165c6a68879768af99712b666ddc9185f0d446ecdd5bc4501d60",
    ],
    "root_hash": ROOT_26,
}
CONSISTENCY_EXAMPLE = {
    "first": 20,
    "second": 26,
    "first_root": "594ffb25c3e8d621662b151d44fc74543530336318ba0e16eb495e7e0360828c",
    "second_root": ROOT_26,
    "consistency_path": [
        "dcd2eccaa8f2482b6cab266a325168b0af0a55f0c9a5bbc1bded24c0634719be",
        "f8d95808d9989dbcd3f52b69fe9c0561253a980764f195b1d19aedd9ad60a70c",
        "fce991cd174c0ae84f715db35f45494897144fce1d443bcf762bfa3fd55acdfe",
        "eb697a88f324374a137ce62c1cb512b697fccf58354bf8d4d49f7b4a879f6d62",
    ],
}
INCLUSION_ANCHORED_EXAMPLE = {**INCLUSION_EXAMPLE, "anchor": ANCHOR_EXAMPLE}
WITNESS_IN_EXAMPLE = {
    "public_key": "ae6ba5ab38893a1f4bf8c037641debd4d9d02e4a7ef8e5cb593a446a6d2a4955eb7e7b3ef2e147fc0f6c856e512aa675",
    "proof_of_possession": "b5af253bde70ea4a6506107f683769ae2f96ac4ac8da16785d1d28b6133979e134538c9963130bed"
    "4e1bdc631557549606ebbda63faf7a57d74e6ca97576f854665a11258da74b6bf1b8c2e8de922c46354ce73528d3a6bd71134791f0d26357",
}
COSIGNATURE_IN_EXAMPLE = {
    "tree_size": 26,
    "root_hash": ROOT_26,
    "signature": "hf8MlEkb1ePIwP6653oEWAQoivH416LdfEk0DIVxLaE2atMZbIMtCH54lEatoYN+"
    "A49lXT2ry86hMBU6ExahhvL5ESn0s5OSLbMCc8m7rwdSGXL+6hL7ID3meemSD7SG",
}
COSIGNATURE_EXAMPLE = {"tree_size": 26, "cosigners": 1}
ENTRY_EXAMPLE = {
    "leaf_hash": INCLUSION_EXAMPLE["leaf_hash"],
    "status": "sequenced",
    "leaf_index": 5,
    "queued_at": None,
    "inclusion": INCLUSION_EXAMPLE,
}
ENTRY_PENDING_EXAMPLE = {
    "leaf_hash": "0c8e6f3b1d2a4957e8f0b6c3d1a29e7f5b4c8d0e2f1a3b5c7d9e0f2a4b6c8d0e",
    "status": "pending",
    "leaf_index": None,
    "queued_at": "2026-11-30T09:14:03.512Z",
    "inclusion": None,
}
