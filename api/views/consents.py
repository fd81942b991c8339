"""Consent endpoints: grants (and their FHIR form), access requests, delegations, break-glass."""

import json

from flask import Response, url_for
from flask.views import MethodView

from api.context import authenticate_request, caller, current_vault
from api.parsing import Blueprint
from api.schemas_consent import (
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
from vault.records import fhir

blp = Blueprint(
    "consents", __name__, url_prefix="/api/v1", description="Consent: grants, requests, delegation, break-glass"
)
blp.before_request(authenticate_request)


@blp.route("/consents")
class Consents(MethodView):
    @blp.arguments(GrantQuery, location="query")
    @blp.response(200, GrantListOut)
    def get(self, query):
        """Grants the caller may see (as resident, delegate, grantee or compliance)"""
        vault = current_vault()
        with vault.read_transaction() as session:
            items, total = consent.list_grants(session, caller(), now=vault.now(), **query)
        return {"items": items, "total": total}

    @blp.arguments(GrantIn)
    @blp.response(201, GrantOut)
    def post(self, body):
        """Give consent (the resident, or an active delegate naming subject_id)"""
        vault = current_vault()
        with vault.transaction() as session:
            grant = consent.create_grant(session, caller(), limits=vault.limits, now=vault.now(), **body)
        return grant, 201, {"Location": url_for("consents.Consent", grant_id=grant.id)}


@blp.route("/consents/<grant_id>")
class Consent(MethodView):
    @blp.response(200, GrantOut)
    def get(self, grant_id):
        """One grant"""
        vault = current_vault()
        with vault.read_transaction() as session:
            return consent.get_grant(session, caller(), grant_id, now=vault.now())


@blp.route("/consents/<grant_id>/revoke")
class RevokeConsent(MethodView):
    @blp.arguments(EmptyIn)
    @blp.response(200, GrantOut)
    def post(self, _body, grant_id):
        """Revoke a grant; effective on the next request"""
        vault = current_vault()
        with vault.transaction() as session:
            return consent.revoke_grant(session, caller(), grant_id, now=vault.now())


@blp.route("/consents/<grant_id>/fhir")
class ConsentFhir(MethodView):
    @blp.response(200, content_type="application/fhir+json")
    def get(self, grant_id):
        """The grant as an HL7 FHIR R4 Consent resource"""
        vault = current_vault()
        with vault.read_transaction() as session:
            grant = consent.get_grant(session, caller(), grant_id, now=vault.now())
        return Response(json.dumps(fhir.consent_resource(grant)), mimetype="application/fhir+json")


@blp.route("/access-requests")
class AccessRequests(MethodView):
    @blp.arguments(RequestQuery, location="query")
    @blp.response(200, RequestListOut)
    def get(self, query):
        """Requests to the caller (or the residents they manage), or made by the caller"""
        vault = current_vault()
        with vault.read_transaction() as session:
            items, total = access_requests.list_requests(session, vault.keys, caller(), now=vault.now(), **query)
        return {"items": items, "total": total}

    @blp.arguments(RequestIn)
    @blp.response(201, RequestOut)
    def post(self, body):
        """Ask a resident for access (clinics and landlords)"""
        vault = current_vault()
        with vault.transaction() as session:
            request = access_requests.create_request(
                session, vault.keys, caller(), limits=vault.limits, now=vault.now(), **body
            )
        return request, 201, {"Location": url_for("consents.AccessRequest", request_id=request.id)}


@blp.route("/access-requests/<request_id>")
class AccessRequest(MethodView):
    @blp.response(200, RequestOut)
    def get(self, request_id):
        """One access request and its outcome"""
        vault = current_vault()
        with vault.read_transaction() as session:
            return access_requests.get_request(session, vault.keys, caller(), request_id, now=vault.now())


@blp.route("/access-requests/<request_id>/approve")
class ApproveRequest(MethodView):
    @blp.arguments(ApproveIn)
    @blp.response(200, RequestOut)
    def post(self, body, request_id):
        """Approve: creates the grant (optionally shorter, or with a use limit)"""
        vault = current_vault()
        with vault.transaction() as session:
            return access_requests.approve_request(
                session, vault.keys, caller(), request_id, limits=vault.limits, now=vault.now(), **body
            )


@blp.route("/access-requests/<request_id>/deny")
class DenyRequest(MethodView):
    @blp.arguments(EmptyIn)
    @blp.response(200, RequestOut)
    def post(self, _body, request_id):
        """Deny a pending request"""
        vault = current_vault()
        with vault.transaction() as session:
            return access_requests.deny_request(session, vault.keys, caller(), request_id, now=vault.now())


@blp.route("/delegations")
class Delegations(MethodView):
    @blp.arguments(DelegationQuery, location="query")
    @blp.response(200, DelegationListOut)
    def get(self, query):
        """Delegations the caller gave or holds"""
        vault = current_vault()
        with vault.read_transaction() as session:
            items, total = delegations.list_delegations(session, caller(), now=vault.now(), **query)
        return {"items": items, "total": total}

    @blp.arguments(DelegationIn)
    @blp.response(201, DelegationOut)
    def post(self, body):
        """Appoint a delegate (guardian, caregiver) for a bounded time"""
        vault = current_vault()
        with vault.transaction() as session:
            made = delegations.create_delegation(session, caller(), limits=vault.limits, now=vault.now(), **body)
        return made, 201, {"Location": url_for("consents.Delegation", delegation_id=made.id)}


@blp.route("/delegations/<delegation_id>")
class Delegation(MethodView):
    @blp.response(200, DelegationOut)
    def get(self, delegation_id):
        """One delegation"""
        vault = current_vault()
        with vault.read_transaction() as session:
            return delegations.get_delegation(session, caller(), delegation_id, now=vault.now())


@blp.route("/delegations/<delegation_id>/revoke")
class RevokeDelegation(MethodView):
    @blp.arguments(EmptyIn)
    @blp.response(200, DelegationOut)
    def post(self, _body, delegation_id):
        """End a delegation (the resident or the delegate)"""
        vault = current_vault()
        with vault.transaction() as session:
            return delegations.revoke_delegation(session, caller(), delegation_id, now=vault.now())


@blp.route("/subjects/<subject_id>/break-glass")
class BreakGlass(MethodView):
    @blp.response(200, BreakGlassListOut)
    def get(self, subject_id):
        """Emergency declarations about a resident, with their use counts"""
        vault = current_vault()
        with vault.read_transaction() as session:
            items = break_glass.list_declarations(session, vault.keys, caller(), subject_id=subject_id, now=vault.now())
        return {"items": items, "total": len(items)}

    @blp.arguments(BreakGlassIn)
    @blp.response(201, BreakGlassOut)
    def post(self, body, subject_id):
        """Declare an emergency: health.* reads, purpose emergency, for a short window (clinics)"""
        vault = current_vault()
        with vault.transaction() as session:
            return break_glass.declare(
                session, vault.keys, caller(), subject_id=subject_id, limits=vault.limits, now=vault.now(), **body
            ), 201
