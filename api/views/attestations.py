"""Attestation endpoints: a signed yes/no answer about a resident's records, and the key that signs them."""

from typing import Any

from flask.views import MethodView

from api.context import Body, Created, authenticate_request, current_vault, reading, writing
from api.openapi import Blueprint
from api.schemas.attestations import (
    ATTESTATION_EXAMPLE,
    ATTESTATION_IN_EXAMPLE,
    ATTESTATION_KEY_EXAMPLE,
    OBTAINED_EXAMPLE,
    OBTAINED_LIST_EXAMPLE,
    AttestationIn,
    AttestationKeyOut,
    AttestationOut,
    ObtainedListOut,
    ObtainedOut,
    ObtainedQuery,
)
from vault.attestations import attest, obtained
from vault.keys import attestation_key

blp = Blueprint(
    "attestations", __name__, url_prefix="/api/v1", description="Attestations: signed answers, not documents"
)
blp.before_request(authenticate_request)


@blp.route("/subjects/<subject_id>/attestations")
class SubjectAttestations(MethodView):
    @blp.arguments(AttestationIn, example=ATTESTATION_IN_EXAMPLE)
    @blp.response(201, AttestationOut, example=ATTESTATION_EXAMPLE)
    @blp.problems(400, 401, 403, 404, 409, 413, 415)
    def post(self, body: Body, subject_id: str) -> Created:
        """Ask for a signed answer to a catalogue question about the resident's records (needs an attest grant)"""
        vault = current_vault()
        key = attestation_key.read(vault.settings.attestation_key_file)  # no key, no attestation: before anything
        with writing() as call:
            issued = attest.attest(
                call.session,
                call.keys,
                call.caller,
                subject_id,
                predicate_name=body["predicate"],
                parameters=body["parameters"],
                purpose=body["purpose"],
                include_self_asserted=body["include_self_asserted"],
                now=call.now,
                valid_days=call.settings.attestation_valid_days,
                signing_key=key,
            )
        answer = {"credential": issued.credential, "pseudonym": issued.pseudonym, "receipt": issued.receipt.as_dict()}
        return answer, 201, {}


@blp.route("/attestations")
class ObtainedAttestations(MethodView):
    @blp.arguments(ObtainedQuery, location="query")
    @blp.response(200, ObtainedListOut, example=OBTAINED_LIST_EXAMPLE)
    @blp.problems(400, 401)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """The attestations issued to the caller, newest first (each with its signed credential)"""
        with reading() as call:
            items, total = obtained.list_obtained(
                call.session,
                call.keys,
                call.caller,
                subject_id=query["subject_id"],
                limit=query["limit"],
                offset=query["offset"],
            )
        return {"items": items, "total": total}


@blp.route("/attestations/<credential_id>")
class ObtainedAttestation(MethodView):
    @blp.response(200, ObtainedOut, example=OBTAINED_EXAMPLE)
    @blp.problems(401, 404)
    def get(self, credential_id: str) -> obtained.Obtained:
        """One attestation issued to the caller, its signed credential exactly as issued (404 for anyone else)"""
        with reading() as call:
            return obtained.credential_for(call.session, call.keys, call.caller, credential_id)


@blp.route("/attestations/key")
class AttestationKey(MethodView):
    @blp.response(200, AttestationKeyOut, example=ATTESTATION_KEY_EXAMPLE)
    @blp.problems(401)
    def get(self) -> dict[str, Any]:
        """The vault's attestation key (did:key), to verify attestations with"""
        with reading():  # the token is looked up like any other request's
            key = attestation_key.read(current_vault().settings.attestation_key_file)
        return {
            "did": key.did,
            "verification_method": key.verification_method,
            "public_key_multibase": key.public_key_multibase,
        }
