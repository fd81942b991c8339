"""Share codes on the pages: a resident's short code for a clinic desk, and a clinic or landlord entering one.

``/share-code`` (residents): "Make a code" posts, and the answer shows the
code once, large and grouped, with when it ends. It is the service of
``POST /api/v1/share-codes`` (vault/consent/share_codes.py): a new code ends
the earlier one. The clinic's or landlord's side is the "Start a request"
page (api/web/provider.py), which takes a code instead of a resident id.
"""

from flask import Blueprint, request

from api.context import writing
from api.web.pages import render
from api.web.session import page
from vault.consent import share_codes

bp = Blueprint("share", __name__)


@bp.route("/share-code", methods=["GET", "POST"])
@page("resident")
def code() -> tuple[str, int]:
    made = None
    if request.method == "POST":
        with writing() as call:
            made = share_codes.create_code(call.session, call.keys, call.caller, now=call.now)
    return render(
        "share/code.html",
        title="Share code",
        made=made,
        minutes=share_codes.DEFAULT_MINUTES,
    )
