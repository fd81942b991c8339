"""``POST /api/v1/subjects/{subject_id}/erasure``: a resident erases themself (crypto-shredding).

vault/erasure.py does the work; docs/operations.md says what is destroyed,
what stays, and what the receipt proves.
"""

import marshmallow as ma
from flask.views import MethodView
from marshmallow import fields

from api.context import authenticate_request, caller, current_vault
from api.parsing import Blueprint
from api.schemas import ReceiptOut, Strict, Timestamp
from vault.rights import erasure

blp = Blueprint("erasure", __name__, url_prefix="/api/v1", description="Erasure of a resident's data (GDPR Art. 17)")
blp.before_request(authenticate_request)


class StrictTrue(fields.Field):
    """Only the JSON literal ``true``: not "yes", 1 or "on", which marshmallow's Boolean would accept."""

    def _deserialize(self, value, attr, data, **kwargs):
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


@blp.route("/subjects/<subject_id>/erasure")
class Erasure(MethodView):
    @blp.arguments(ErasureIn)
    @blp.response(200, ErasureOut)
    def post(self, _body, subject_id):
        """Erase the caller's own data for good; returns the erasure's receipt"""
        done = erasure.erase(current_vault(), caller(), subject_id)
        return {
            "erasure_id": done.erasure_id,
            "erased_at": done.erased_at,
            "receipt": {"leaf_index": done.leaf_index, "leaf_hash": done.leaf_hash},
            "subject_commitment": done.subject_commitment,
            "commitment_nonce": done.commitment_nonce,
            "events_erased": done.events_erased,
            "records_deleted": done.records_deleted,
            "subject_keys_destroyed": done.subject_keys_destroyed,
        }
