"""Share codes on the pages: a resident's short code for a clinic desk, and a clinic or landlord entering one."""

from flask import Blueprint

bp = Blueprint("share", __name__)
