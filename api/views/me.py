"""``GET /api/v1/me``: who the bearer token belongs to."""

from flask.views import MethodView

from api.context import authenticate_request, reading
from api.openapi import Blueprint
from api.schemas.me import PRINCIPAL_EXAMPLE, PrincipalOut
from vault.identity import principals
from vault.identity.principals import PrincipalInfo

blp = Blueprint("me", __name__, url_prefix="/api/v1", description="The calling principal")
blp.before_request(authenticate_request)


@blp.route("/me")
class Me(MethodView):
    @blp.response(200, PrincipalOut, example=PRINCIPAL_EXAMPLE)
    @blp.problems(401)
    def get(self) -> PrincipalInfo:
        """The caller's principal"""
        with reading() as call:
            return principals.get_principal(call.session, call.keys, call.caller.id)
