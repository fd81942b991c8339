"""The compliance pages, under ``/compliance``."""

from flask import Blueprint

from api.web.pages import render
from api.web.session import page

bp = Blueprint("compliance", __name__, url_prefix="/compliance")
ROLES = ("compliance",)


@bp.route("/")
@page(*ROLES)
def home() -> tuple[str, int]:
    return render("compliance/home.html", title="Home")
