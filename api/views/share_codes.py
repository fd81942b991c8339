"""Share codes: a resident makes a short single-use code; a clinic or landlord redeems it to ask for access."""

from flask import url_for
from flask.views import MethodView

from api.context import Body, Created, authenticate_request, writing
from api.openapi import Blueprint
from api.schemas.consent import RequestOut
from api.schemas.share_codes import (
    REDEEM_IN_EXAMPLE,
    REDEEMED_EXAMPLE,
    SHARE_CODE_EXAMPLE,
    SHARE_CODE_IN_EXAMPLE,
    RedeemIn,
    ShareCodeIn,
    ShareCodeOut,
)
from vault.consent import share_codes

blp = Blueprint("share_codes", __name__, url_prefix="/api/v1", description="Share codes: a resident's code for a desk")
blp.before_request(authenticate_request)


@blp.route("/share-codes")
class ShareCodes(MethodView):
    @blp.arguments(ShareCodeIn, required=False, example=SHARE_CODE_IN_EXAMPLE)
    @blp.response(201, ShareCodeOut, example=SHARE_CODE_EXAMPLE)
    @blp.problems(400, 401, 403, 404, 413, 415)
    def post(self, body: Body) -> tuple[object, int]:
        """Make a share code (a resident, or a delegate naming subject_id); earlier live codes end"""
        with writing() as call:
            made = share_codes.create_code(
                call.session,
                call.keys,
                call.caller,
                subject_id=body.get("subject_id"),
                minutes=body.get("minutes", share_codes.DEFAULT_MINUTES),
                now=call.now,
            )
        return made, 201


@blp.route("/share-codes/redeem")
class ShareCodeRedemptions(MethodView):
    @blp.arguments(RedeemIn, example=REDEEM_IN_EXAMPLE)
    @blp.response(201, RequestOut, example=REDEEMED_EXAMPLE)
    @blp.problems(400, 401, 403, 404, 409, 413, 415)
    def post(self, body: Body) -> Created:
        """Use a share code once and ask its resident for access (clinics and landlords)"""
        code = body.pop("code")
        with writing() as call:
            made = share_codes.request_with_code(
                call.session, call.keys, call.caller, code, limits=call.limits, now=call.now, **body
            )
        return made, 201, {"Location": url_for("consents.AccessRequest", request_id=made.id)}
