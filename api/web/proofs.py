"""Proofs for the browser: the inclusion proof and signed checkpoint of a resident's own access-log entry."""

from flask import Blueprint

bp = Blueprint("proofs", __name__)
