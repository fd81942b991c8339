"""Per-request context: the vault of this app and the authenticated caller."""

from flask import current_app, g, request

from vault.core.caller import Caller
from vault.core.errors import Unauthenticated
from vault.identity.principals import authenticate
from vault.runtime import Vault

EXTENSION = "civicvault"


def current_vault() -> Vault:
    return current_app.extensions[EXTENSION]


def caller() -> Caller:
    return g.caller


def authenticate_request() -> None:
    """``before_request`` hook of the API blueprints: bearer token -> caller."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Send 'Authorization: Bearer <token>'.")
    with current_vault().read_transaction() as session:
        g.caller = authenticate(session, token.strip())
