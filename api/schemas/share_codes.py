"""Share codes: a resident's short single-use code, and a clinic or landlord redeeming it for an access request."""

import marshmallow as ma
from marshmallow import fields, validate

from api.schemas.common import AMINA, LANDLORD, REQUEST, Strict, Timestamp
from api.schemas.consent import REQUEST_EXAMPLE, RequestIn
from vault.consent.share_codes import DEFAULT_MINUTES, MAX_MINUTES, MAX_TYPED


class ShareCodeIn(Strict):
    minutes = fields.Integer(
        load_default=DEFAULT_MINUTES,
        strict=True,
        validate=validate.Range(min=1, max=MAX_MINUTES),
        metadata={"description": f"How long the code lives, 1 to {MAX_MINUTES} minutes (default {DEFAULT_MINUTES})"},
    )
    subject_id = fields.String(
        load_default=None,
        metadata={"description": "The resident; defaults to the caller. Delegates name the resident."},
    )


class ShareCodeOut(ma.Schema):
    code = fields.String(
        metadata={"description": "Ten characters of Crockford base32, grouped ABCD-EFGH-JK; shown once, never stored"}
    )
    subject_id = fields.String()
    created_at = Timestamp()
    expires_at = Timestamp()


class RedeemIn(RequestIn):
    """An access request that names its resident by a share code instead of an id."""

    class Meta(RequestIn.Meta):
        exclude = ("subject_id",)

    code = fields.String(
        required=True,
        validate=validate.Length(min=1, max=MAX_TYPED),
        metadata={"description": "The code the resident shows; case, spaces and hyphens do not matter"},
    )


# --- examples ----------------------------------------------------------------------------------

SHARE_CODE_IN_EXAMPLE = {"minutes": 10}
SHARE_CODE_EXAMPLE = {
    "code": "7KQ4-M2XD-9R",
    "subject_id": AMINA,
    "created_at": "2026-12-01T10:02:11.480Z",
    "expires_at": "2026-12-01T10:12:11.480Z",
}
REDEEM_IN_EXAMPLE = {
    "code": "7KQ4-M2XD-9R",
    "categories": ["tenancy.income", "tenancy.rental-history"],
    "purpose": "tenancy-screening",
    "reason": "Application for the two-bedroom flat at 14 Quay Street, from 1 February",
    "expires_at": "2027-01-31T23:59:59Z",
}
REDEEMED_EXAMPLE = {**REQUEST_EXAMPLE, "id": REQUEST, "subject_id": AMINA, "requester_id": LANDLORD}
