"""Issuer keys: clinics, landlords and agencies register the Ed25519 keys they sign records with."""

from typing import Any

from flask import url_for
from flask.views import MethodView

from api.context import Body, Created, authenticate_request, reading, writing
from api.openapi import Blueprint
from api.schemas.issuer_keys import (
    ISSUER_KEY_EXAMPLE,
    ISSUER_KEY_IN_EXAMPLE,
    ISSUER_KEY_LIST_EXAMPLE,
    ISSUER_KEY_REVOKED_EXAMPLE,
    IssuerKeyIn,
    IssuerKeyListOut,
    IssuerKeyOut,
)
from vault.identity import issuer_keys
from vault.identity.issuer_keys import IssuerKeyView

blp = Blueprint(
    "issuer_keys",
    __name__,
    url_prefix="/api/v1/issuer-keys",
    description="Issuers' signing keys: the Ed25519 keys that sign issued records",
)
blp.before_request(authenticate_request)


@blp.route("")
class IssuerKeys(MethodView):
    @blp.arguments(IssuerKeyIn, example=ISSUER_KEY_IN_EXAMPLE)
    @blp.response(201, IssuerKeyOut, example=ISSUER_KEY_EXAMPLE)
    @blp.problems(400, 401, 403, 409, 413, 415)
    def post(self, body: Body) -> Created:
        """Register an Ed25519 public key, with a proof of possession (clinics, landlords, agencies)"""
        with writing() as call:
            key = issuer_keys.register_key(
                call.session,
                call.keys,
                call.caller,
                public_key=bytes.fromhex(body["public_key"]),
                proof=bytes.fromhex(body["proof_of_possession"]),
                now=call.now,
            )
        return key, 201, {"Location": url_for("issuer_keys.IssuerKey", key_id=key.id)}

    @blp.response(200, IssuerKeyListOut, example=ISSUER_KEY_LIST_EXAMPLE)
    @blp.problems(401, 403)
    def get(self) -> dict[str, Any]:
        """The caller's issuer keys, newest first, revoked ones included"""
        with reading() as call:
            items = issuer_keys.list_keys(call.session, call.keys, call.caller)
        return {"items": items, "total": len(items)}


@blp.route("/<key_id>")
class IssuerKey(MethodView):
    @blp.response(200, IssuerKeyOut, example=ISSUER_KEY_EXAMPLE)
    @blp.problems(401, 404)
    def get(self, key_id: str) -> IssuerKeyView:
        """A key's public information, to check a signature with (any caller)"""
        with reading() as call:
            return issuer_keys.get_key(call.session, call.keys, key_id)


@blp.route("/<key_id>/revoke")
class IssuerKeyRevoke(MethodView):
    @blp.response(200, IssuerKeyOut, example=ISSUER_KEY_REVOKED_EXAMPLE)
    @blp.problems(401, 403, 404, 409)
    def post(self, key_id: str) -> IssuerKeyView:
        """Revoke one of your keys: it signs nothing new; what it signed still shows it, with this time"""
        with writing() as call:
            return issuer_keys.revoke_key(call.session, call.keys, call.caller, key_id, now=call.now)
