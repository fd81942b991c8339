"""A resident's erasure (crypto-shredding, GDPR Art. 17) and its receipt."""

from typing import Any

import marshmallow as ma
from marshmallow import fields

from api.schemas.common import AMINA, ERASURE, ReceiptOut, Strict, Timestamp
from vault.rights.erasure import subject_commitment


class StrictTrue(fields.Field):
    """Only the JSON literal ``true``: not "yes", 1 or "on", which marshmallow's Boolean would accept."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if value is not True:
            raise ma.ValidationError("Must be true: erasure cannot be undone.")
        return True


class ErasureIn(Strict):
    confirm = StrictTrue(
        required=True,
        metadata={"type": "boolean", "enum": [True], "description": "Must be true: erasure cannot be undone."},
    )


class ErasureOut(ma.Schema):
    erasure_id = fields.String(required=True)
    erased_at = Timestamp(required=True)
    receipt = fields.Nested(
        ReceiptOut, required=True, metadata={"description": "The subject.erased entry in the ledger."}
    )
    subject_commitment = fields.String(
        required=True, metadata={"description": "SHA-256 over the nonce and the resident's id, in the ledger entry."}
    )
    commitment_nonce = fields.String(
        required=True, metadata={"description": "Given only here: with it the resident can show the entry is theirs."}
    )
    events_erased = fields.Integer(required=True)
    records_deleted = fields.Integer(required=True)
    subject_keys_destroyed = fields.Integer(required=True)


ERASURE_IN_EXAMPLE = {"confirm": True}
_NONCE = "9c41e07b3a5f28d6c1e94b07a2d35f8e0b6d27c4e91a5f38b2c07d6e4a19f35b"
ERASURE_EXAMPLE = {
    "erasure_id": ERASURE,
    "erased_at": "2027-01-15T08:00:12.734Z",
    "receipt": {
        "leaf_index": 212,
        "leaf_hash": "3f7a0c9e25b14d86e7f2a51c0b93d6e48a17c25f09e3b6d4a8c1f07e52b93d64",
        "status": "sequenced",
    },
    "subject_commitment": subject_commitment(bytes.fromhex(_NONCE), AMINA).hex(),
    "commitment_nonce": _NONCE,
    "events_erased": 37,
    "records_deleted": 4,
    "subject_keys_destroyed": 1,
}
