"""The resident pages, under ``/resident``."""

from flask import Blueprint

from api.web.pages import render
from api.web.session import page

bp = Blueprint("resident", __name__, url_prefix="/resident")
ROLES = ("resident",)


@bp.route("/")
@page(*ROLES)
def home() -> tuple[str, int]:
    return render("resident/home.html", title="Home")
