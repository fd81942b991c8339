"""The provider pages, under ``/provider``."""

from flask import Blueprint

from api.web.pages import render
from api.web.session import page

bp = Blueprint("provider", __name__, url_prefix="/provider")
ROLES = (
    "clinic",
    "landlord",
)


@bp.route("/")
@page(*ROLES)
def home() -> tuple[str, int]:
    return render("provider/home.html", title="Home")
