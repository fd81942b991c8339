"""``GET /api/v1/me``: who the bearer token belongs to."""

from flask.views import MethodView

from api.context import authenticate_request, caller, current_vault
from api.parsing import Blueprint
from api.schemas import PrincipalOut
from vault.identity import principals

blp = Blueprint("me", __name__, url_prefix="/api/v1", description="The calling principal")
blp.before_request(authenticate_request)


@blp.route("/me")
class Me(MethodView):
    @blp.response(200, PrincipalOut)
    def get(self):
        """The caller's principal"""
        vault = current_vault()
        with vault.read_transaction() as session:
            return principals.get_principal(session, vault.keys, caller().id)
