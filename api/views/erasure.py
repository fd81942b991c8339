"""``POST /api/v1/subjects/{subject_id}/erasure``: a resident erases themself (crypto-shredding).

vault/rights/erasure.py does the work, in steps of its own (it destroys the
keys between two transactions), so this view hands it the vault rather than
one transaction; docs/operations.md says what is destroyed, what stays, and
what the receipt proves.
"""

from typing import Any

from flask.views import MethodView

from api.context import Body, authenticate_request, current_caller, current_vault
from api.openapi import Blueprint
from api.schemas.erasure import ERASURE_EXAMPLE, ERASURE_IN_EXAMPLE, ErasureIn, ErasureOut
from vault.rights import erasure

blp = Blueprint("erasure", __name__, url_prefix="/api/v1", description="Erasure of a resident's data (GDPR Art. 17)")
blp.before_request(authenticate_request)


@blp.route("/subjects/<subject_id>/erasure")
class Erasure(MethodView):
    @blp.arguments(ErasureIn, example=ERASURE_IN_EXAMPLE)
    @blp.response(200, ErasureOut, example=ERASURE_EXAMPLE)
    @blp.problems(400, 401, 404, 409, 413, 415)
    def post(self, _body: Body, subject_id: str) -> dict[str, Any]:
        """Erase the caller's own data for good; returns the erasure's receipt"""
        done = erasure.erase(current_vault(), current_caller(), subject_id)
        return {
            "erasure_id": done.erasure_id,
            "erased_at": done.erased_at,
            "receipt": {"leaf_index": done.leaf_index, "leaf_hash": done.leaf_hash, "status": "sequenced"},
            "subject_commitment": done.subject_commitment,
            "commitment_nonce": done.commitment_nonce,
            "events_erased": done.events_erased,
            "records_deleted": done.records_deleted,
            "subject_keys_destroyed": done.subject_keys_destroyed,
        }
