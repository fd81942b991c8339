"""The admin pages, under ``/admin``."""

from flask import Blueprint

from api.web.pages import render
from api.web.session import page

bp = Blueprint("admin", __name__, url_prefix="/admin")
ROLES = ("admin",)


@bp.route("/")
@page(*ROLES)
def principals() -> tuple[str, int]:
    return render("admin/home.html", title="Home")
