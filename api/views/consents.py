"""Consent endpoints: grants (and their FHIR form), access requests, delegations, break-glass."""

import json
from typing import Any

from flask import Response, url_for
from flask.views import MethodView

from api.context import Body, Created, Query, authenticate_request, reading, writing
from api.openapi import Blueprint
from api.schemas.consent import (
    APPROVE_IN_EXAMPLE,
    BREAK_GLASS_EXAMPLE,
    BREAK_GLASS_IN_EXAMPLE,
    BREAK_GLASS_LIST_EXAMPLE,
    DELEGATION_EXAMPLE,
    DELEGATION_IN_EXAMPLE,
    DELEGATION_LIST_EXAMPLE,
    DELEGATION_REVOKED_EXAMPLE,
    FHIR_CONSENT_EXAMPLE,
    GRANT_EXAMPLE,
    GRANT_IN_EXAMPLE,
    GRANT_LIST_EXAMPLE,
    GRANT_REVOKED_EXAMPLE,
    REQUEST_APPROVED_EXAMPLE,
    REQUEST_DENIED_EXAMPLE,
    REQUEST_EXAMPLE,
    REQUEST_IN_EXAMPLE,
    REQUEST_LIST_EXAMPLE,
    ApproveIn,
    BreakGlassIn,
    BreakGlassListOut,
    BreakGlassOut,
    DelegationIn,
    DelegationListOut,
    DelegationOut,
    DelegationQuery,
    EmptyIn,
    GrantIn,
    GrantListOut,
    GrantOut,
    GrantQuery,
    RequestIn,
    RequestListOut,
    RequestOut,
    RequestQuery,
)
from vault.consent import access_requests, break_glass, consent, delegations
from vault.consent.access_requests import RequestView
from vault.consent.consent import GrantView
from vault.consent.delegations import DelegationView
from vault.records import fhir

blp = Blueprint(
    "consents", __name__, url_prefix="/api/v1", description="Consent: grants, requests, delegation, break-glass"
)
blp.before_request(authenticate_request)

FHIR_JSON = "application/fhir+json"
WRITE_PROBLEMS = (400, 401, 403, 404, 409, 413, 415)  # a decision on one grant, request or delegation


@blp.route("/consents")
class Consents(MethodView):
    @blp.arguments(GrantQuery, location="query")
    @blp.response(200, GrantListOut, example=GRANT_LIST_EXAMPLE)
    @blp.problems(400, 401)
    def get(self, query: Query) -> dict[str, Any]:
        """Grants the caller may see (as resident, delegate, grantee or compliance)"""
        with reading() as call:
            items, total = consent.list_grants(call.session, call.caller, now=call.now, **query)
        return {"items": items, "total": total}

    @blp.arguments(GrantIn, example=GRANT_IN_EXAMPLE)
    @blp.response(201, GrantOut, example=GRANT_EXAMPLE)
    @blp.problems(400, 401, 404, 409, 413, 415)
    def post(self, body: Body) -> Created:
        """Give consent (the resident, or an active delegate naming subject_id)"""
        with writing() as call:
            grant = consent.create_grant(call.session, call.caller, limits=call.limits, now=call.now, **body)
        return grant, 201, {"Location": url_for("consents.Consent", grant_id=grant.id)}


@blp.route("/consents/<grant_id>")
class Consent(MethodView):
    @blp.response(200, GrantOut, example=GRANT_EXAMPLE)
    @blp.problems(401, 404)
    def get(self, grant_id: str) -> GrantView:
        """One grant"""
        with reading() as call:
            return consent.get_grant(call.session, call.caller, grant_id, now=call.now)


@blp.route("/consents/<grant_id>/revoke")
class RevokeConsent(MethodView):
    @blp.arguments(EmptyIn, required=False, example={})
    @blp.response(200, GrantOut, example=GRANT_REVOKED_EXAMPLE)
    @blp.problems(*WRITE_PROBLEMS)
    def post(self, _body: Body, grant_id: str) -> GrantView:
        """Revoke a grant; effective on the next request"""
        with writing() as call:
            return consent.revoke_grant(call.session, call.caller, grant_id, now=call.now)


@blp.route("/consents/<grant_id>/fhir")
class ConsentFhir(MethodView):
    @blp.response(200, content_type=FHIR_JSON, example=FHIR_CONSENT_EXAMPLE)
    @blp.problems(401, 404)
    def get(self, grant_id: str) -> Response:
        """The grant as an HL7 FHIR R4 Consent resource"""
        with reading() as call:
            grant = consent.get_grant(call.session, call.caller, grant_id, now=call.now)
        return Response(json.dumps(fhir.consent_resource(grant)), mimetype=FHIR_JSON)


@blp.route("/access-requests")
class AccessRequests(MethodView):
    @blp.arguments(RequestQuery, location="query")
    @blp.response(200, RequestListOut, example=REQUEST_LIST_EXAMPLE)
    @blp.problems(400, 401)
    def get(self, query: Query) -> dict[str, Any]:
        """Requests to the caller (or the residents they manage), or made by the caller"""
        with writing() as call:  # reasons shown to a delegate or an officer append text.opened events
            items, total = access_requests.list_requests(call.session, call.keys, call.caller, now=call.now, **query)
        return {"items": items, "total": total}

    @blp.arguments(RequestIn, example=REQUEST_IN_EXAMPLE)
    @blp.response(201, RequestOut, example=REQUEST_EXAMPLE)
    @blp.problems(400, 401, 403, 404, 409, 413, 415)
    def post(self, body: Body) -> Created:
        """Ask a resident for access (clinics and landlords)"""
        with writing() as call:
            made = access_requests.create_request(
                call.session, call.keys, call.caller, limits=call.limits, now=call.now, **body
            )
        return made, 201, {"Location": url_for("consents.AccessRequest", request_id=made.id)}


@blp.route("/access-requests/<request_id>")
class AccessRequest(MethodView):
    @blp.response(200, RequestOut, example=REQUEST_EXAMPLE)
    @blp.problems(401, 404)
    def get(self, request_id: str) -> RequestView:
        """One access request and its outcome"""
        with writing() as call:  # a reason shown to a delegate or an officer appends a text.opened event
            return access_requests.get_request(call.session, call.keys, call.caller, request_id, now=call.now)


@blp.route("/access-requests/<request_id>/approve")
class ApproveRequest(MethodView):
    @blp.arguments(ApproveIn, required=False, example=APPROVE_IN_EXAMPLE)
    @blp.response(200, RequestOut, example=REQUEST_APPROVED_EXAMPLE)
    @blp.problems(*WRITE_PROBLEMS)
    def post(self, body: Body, request_id: str) -> RequestView:
        """Approve: creates the grant (optionally shorter, or with a use limit)"""
        with writing() as call:
            return access_requests.approve_request(
                call.session, call.keys, call.caller, request_id, limits=call.limits, now=call.now, **body
            )


@blp.route("/access-requests/<request_id>/deny")
class DenyRequest(MethodView):
    @blp.arguments(EmptyIn, required=False, example={})
    @blp.response(200, RequestOut, example=REQUEST_DENIED_EXAMPLE)
    @blp.problems(*WRITE_PROBLEMS)
    def post(self, _body: Body, request_id: str) -> RequestView:
        """Deny a pending request"""
        with writing() as call:
            return access_requests.deny_request(call.session, call.keys, call.caller, request_id, now=call.now)


@blp.route("/delegations")
class Delegations(MethodView):
    @blp.arguments(DelegationQuery, location="query")
    @blp.response(200, DelegationListOut, example=DELEGATION_LIST_EXAMPLE)
    @blp.problems(400, 401)
    def get(self, query: Query) -> dict[str, Any]:
        """Delegations the caller gave or holds"""
        with reading() as call:
            items, total = delegations.list_delegations(call.session, call.caller, now=call.now, **query)
        return {"items": items, "total": total}

    @blp.arguments(DelegationIn, example=DELEGATION_IN_EXAMPLE)
    @blp.response(201, DelegationOut, example=DELEGATION_EXAMPLE)
    @blp.problems(400, 401, 403, 409, 413, 415)
    def post(self, body: Body) -> Created:
        """Appoint a delegate (guardian, caregiver) for a bounded time"""
        with writing() as call:
            made = delegations.create_delegation(call.session, call.caller, limits=call.limits, now=call.now, **body)
        return made, 201, {"Location": url_for("consents.Delegation", delegation_id=made.id)}


@blp.route("/delegations/<delegation_id>")
class Delegation(MethodView):
    @blp.response(200, DelegationOut, example=DELEGATION_EXAMPLE)
    @blp.problems(401, 404)
    def get(self, delegation_id: str) -> DelegationView:
        """One delegation"""
        with reading() as call:
            return delegations.get_delegation(call.session, call.caller, delegation_id, now=call.now)


@blp.route("/delegations/<delegation_id>/revoke")
class RevokeDelegation(MethodView):
    @blp.arguments(EmptyIn, required=False, example={})
    @blp.response(200, DelegationOut, example=DELEGATION_REVOKED_EXAMPLE)
    @blp.problems(*WRITE_PROBLEMS)
    def post(self, _body: Body, delegation_id: str) -> DelegationView:
        """End a delegation (the resident or the delegate)"""
        with writing() as call:
            return delegations.revoke_delegation(call.session, call.caller, delegation_id, now=call.now)


@blp.route("/subjects/<subject_id>/break-glass")
class BreakGlass(MethodView):
    @blp.response(200, BreakGlassListOut, example=BREAK_GLASS_LIST_EXAMPLE)
    @blp.problems(401, 404)
    def get(self, subject_id: str) -> dict[str, Any]:
        """Emergency declarations about a resident, with their use counts"""
        with writing() as call:  # reasons shown to a delegate or an officer append text.opened events
            items = break_glass.list_declarations(
                call.session, call.keys, call.caller, subject_id=subject_id, now=call.now
            )
        return {"items": items, "total": len(items)}

    @blp.arguments(BreakGlassIn, example=BREAK_GLASS_IN_EXAMPLE)
    @blp.response(201, BreakGlassOut, example=BREAK_GLASS_EXAMPLE)
    @blp.problems(400, 401, 403, 404, 409, 413, 415)
    def post(self, body: Body, subject_id: str) -> tuple[object, int]:
        """Declare an emergency: health.* reads, purpose emergency, for a short window (clinics)"""
        with writing() as call:
            declared = break_glass.declare(
                call.session, call.keys, call.caller, subject_id=subject_id, limits=call.limits, now=call.now, **body
            )
        return declared, 201
