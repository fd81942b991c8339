"""Consent: grants (and their FHIR form), access requests, delegations, break-glass."""

from datetime import UTC, datetime
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from api.schemas.common import (
    AMINA,
    BREAK_GLASS,
    CATEGORY_PATTERNS,
    CHIDI,
    CLINIC,
    DELEGATION,
    GRANT,
    LANDLORD,
    REQUEST,
    TIME,
    Page,
    Strict,
    Timestamp,
)
from vault.consent.access_requests import STATUSES as REQUEST_STATUSES
from vault.consent.consent import STATUSES as GRANT_STATUSES
from vault.consent.consent import GrantView
from vault.consent.policy import ACTIONS
from vault.core.vocabulary import BREAK_GLASS_CODES, PURPOSES
from vault.records import fhir


def _categories() -> fields.List:
    return fields.List(
        fields.String(validate=validate.OneOf(CATEGORY_PATTERNS)),
        required=True,
        validate=validate.Length(min=1, max=len(CATEGORY_PATTERNS)),
    )


def _actions(**kwargs: Any) -> fields.List:
    return fields.List(
        fields.String(validate=validate.OneOf(ACTIONS)), validate=validate.Length(min=1, max=len(ACTIONS)), **kwargs
    )


class GrantIn(Strict):
    subject_id = fields.String(
        load_default=None,
        metadata={"description": "The resident; defaults to the caller. Delegates name the resident."},
    )
    grantee_id = fields.String(required=True)
    categories = _categories()
    purpose = fields.String(required=True, validate=validate.OneOf(PURPOSES))
    actions = _actions(load_default=["read"])
    valid_from = fields.AwareDateTime(load_default=None, metadata=TIME)
    expires_at = fields.AwareDateTime(required=True, metadata=TIME)
    max_uses = fields.Integer(
        load_default=None, allow_none=True, strict=True, validate=validate.Range(min=1, max=1_000_000)
    )


class GrantQuery(Page):
    subject_id = fields.String(load_default=None)
    grantee_id = fields.String(load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(GRANT_STATUSES))


class GrantOut(ma.Schema):
    id = fields.String()
    subject_id = fields.String()
    grantee_id = fields.String()
    grantee_role = fields.String()
    categories = fields.List(fields.String())
    purpose = fields.String()
    actions = fields.List(fields.String())
    valid_from = Timestamp()
    expires_at = Timestamp()
    max_uses = fields.Integer(allow_none=True)
    uses = fields.Integer()
    status = fields.String(metadata={"enum": list(GRANT_STATUSES)})
    created_at = Timestamp()
    created_by = fields.String()
    revoked_at = Timestamp(allow_none=True)
    request_id = fields.String(allow_none=True)


class GrantListOut(ma.Schema):
    items = fields.List(fields.Nested(GrantOut))
    total = fields.Integer()


class RequestIn(Strict):
    subject_id = fields.String(required=True)
    categories = _categories()
    purpose = fields.String(required=True, validate=validate.OneOf(PURPOSES))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=1000))
    actions = _actions(load_default=None)
    expires_at = fields.AwareDateTime(load_default=None, metadata=TIME)


class ApproveIn(Strict):
    categories = fields.List(
        fields.String(),
        load_default=None,
        validate=validate.Length(min=1, max=32),
        metadata={"description": "Grant only these of the requested categories (or of a requested family)."},
    )
    expires_at = fields.AwareDateTime(load_default=None, metadata=TIME)
    max_uses = fields.Integer(
        load_default=None, allow_none=True, strict=True, validate=validate.Range(min=1, max=1_000_000)
    )


class RequestQuery(Page):
    subject_id = fields.String(load_default=None)
    status = fields.String(load_default=None, validate=validate.OneOf(REQUEST_STATUSES))


class RequestOut(ma.Schema):
    id = fields.String()
    subject_id = fields.String()
    requester_id = fields.String()
    categories = fields.List(fields.String())
    purpose = fields.String()
    actions = fields.List(fields.String())
    reason = fields.String()
    expires_at = Timestamp(allow_none=True)
    status = fields.String(metadata={"enum": list(REQUEST_STATUSES)})
    created_at = Timestamp()
    decided_at = Timestamp(allow_none=True)
    decided_by = fields.String(allow_none=True)
    grant_id = fields.String(allow_none=True)


class RequestListOut(ma.Schema):
    items = fields.List(fields.Nested(RequestOut))
    total = fields.Integer()


class DelegationIn(Strict):
    delegate_id = fields.String(required=True)
    valid_from = fields.AwareDateTime(load_default=None, metadata=TIME)
    expires_at = fields.AwareDateTime(required=True, metadata=TIME)


class DelegationQuery(Page):
    subject_id = fields.String(load_default=None)


class DelegationOut(ma.Schema):
    id = fields.String()
    subject_id = fields.String()
    delegate_id = fields.String()
    valid_from = Timestamp()
    expires_at = Timestamp()
    status = fields.String()
    created_at = Timestamp()
    revoked_at = Timestamp(allow_none=True)


class DelegationListOut(ma.Schema):
    items = fields.List(fields.Nested(DelegationOut))
    total = fields.Integer()


class BreakGlassIn(Strict):
    # The coded reason (docs/consent.md); a client that sends none is recorded as "other".
    code = fields.String(load_default=None, validate=validate.OneOf(BREAK_GLASS_CODES))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=1000))


class BreakGlassOut(ma.Schema):
    id = fields.String()
    subject_id = fields.String()
    clinic_id = fields.String()
    code = fields.String()
    reason = fields.String()
    declared_at = Timestamp()
    expires_at = Timestamp()
    active = fields.Boolean()
    uses = fields.Integer()
    purpose = fields.Constant("emergency")
    categories = fields.Constant(["health.*"])


class BreakGlassListOut(ma.Schema):
    items = fields.List(fields.Nested(BreakGlassOut))
    total = fields.Integer()


class EmptyIn(Strict):
    """No fields: refuses any body field on revoke and deny."""


# --- examples ----------------------------------------------------------------------------------

GRANT_IN_EXAMPLE = {
    "grantee_id": CLINIC,
    "categories": ["health.allergies", "health.medications"],
    "purpose": "treatment",
    "actions": ["read"],
    "expires_at": "2027-03-01T00:00:00Z",
    "max_uses": 10,
}
_GRANT_VIEW = GrantView(
    id=GRANT,
    subject_id=AMINA,
    grantee_id=CLINIC,
    grantee_role="clinic",
    categories=("health.allergies", "health.medications"),
    purpose="treatment",
    actions=("read",),
    valid_from=datetime(2026, 11, 25, 9, 45, 12, 301000, tzinfo=UTC),
    expires_at=datetime(2027, 3, 1, tzinfo=UTC),
    max_uses=10,
    uses=0,
    status="active",
    created_at=datetime(2026, 11, 25, 9, 45, 12, 301000, tzinfo=UTC),
    created_by=AMINA,
    revoked_at=None,
    request_id=None,
)
GRANT_EXAMPLE: dict[str, Any] = GrantOut().dump(_GRANT_VIEW)
GRANT_REVOKED_EXAMPLE = {**GRANT_EXAMPLE, "uses": 3, "status": "revoked", "revoked_at": "2026-12-14T18:20:07.664Z"}
GRANT_LIST_EXAMPLE = {"items": [GRANT_EXAMPLE], "total": 1}
FHIR_CONSENT_EXAMPLE = fhir.consent_resource(_GRANT_VIEW)

REQUEST_IN_EXAMPLE = {
    "subject_id": AMINA,
    "categories": ["tenancy.income", "tenancy.rental-history"],
    "purpose": "tenancy-screening",
    "reason": "Application for the two-bedroom flat at 14 Quay Street, from 1 February",
    "expires_at": "2027-01-31T23:59:59Z",
}
REQUEST_EXAMPLE = {
    "id": REQUEST,
    "subject_id": AMINA,
    "requester_id": LANDLORD,
    "categories": ["tenancy.income", "tenancy.rental-history"],
    "purpose": "tenancy-screening",
    "actions": ["read"],
    "reason": REQUEST_IN_EXAMPLE["reason"],
    "expires_at": "2027-01-31T23:59:59.000Z",
    "status": "pending",
    "created_at": "2026-12-01T10:12:40.021Z",
    "decided_at": None,
    "decided_by": None,
    "grant_id": None,
}
REQUEST_APPROVED_EXAMPLE = {
    **REQUEST_EXAMPLE,
    "status": "approved",
    "decided_at": "2026-12-01T19:03:55.870Z",
    "decided_by": AMINA,
    "grant_id": "g-4vb7oyq2kxm3ezsmr6wfqlhxdu",
}
REQUEST_DENIED_EXAMPLE = {
    **REQUEST_EXAMPLE,
    "status": "denied",
    "decided_at": "2026-12-01T19:03:55.870Z",
    "decided_by": AMINA,
}
REQUEST_LIST_EXAMPLE = {"items": [REQUEST_EXAMPLE], "total": 1}
APPROVE_IN_EXAMPLE = {"expires_at": "2026-12-31T23:59:59Z", "max_uses": 5}

DELEGATION_IN_EXAMPLE = {"delegate_id": CHIDI, "expires_at": "2027-11-30T23:59:59Z"}
DELEGATION_EXAMPLE = {
    "id": DELEGATION,
    "subject_id": AMINA,
    "delegate_id": CHIDI,
    "valid_from": "2026-11-30T12:00:31.447Z",
    "expires_at": "2027-11-30T23:59:59.000Z",
    "status": "active",
    "created_at": "2026-11-30T12:00:31.447Z",
    "revoked_at": None,
}
DELEGATION_REVOKED_EXAMPLE = {**DELEGATION_EXAMPLE, "status": "revoked", "revoked_at": "2027-02-02T09:10:00.000Z"}
DELEGATION_LIST_EXAMPLE = {"items": [DELEGATION_EXAMPLE], "total": 1}

BREAK_GLASS_IN_EXAMPLE = {
    "code": "unconscious",
    "reason": "Unconscious on arrival at A&E; allergies and medications needed before treatment",
}
BREAK_GLASS_EXAMPLE = {
    "id": BREAK_GLASS,
    "subject_id": AMINA,
    "clinic_id": CLINIC,
    "code": BREAK_GLASS_IN_EXAMPLE["code"],
    "reason": BREAK_GLASS_IN_EXAMPLE["reason"],
    "declared_at": "2026-12-05T02:17:09.330Z",
    "expires_at": "2026-12-05T06:17:09.330Z",
    "active": True,
    "uses": 0,
    "purpose": "emergency",
    "categories": ["health.*"],
}
BREAK_GLASS_LIST_EXAMPLE = {"items": [{**BREAK_GLASS_EXAMPLE, "uses": 2}], "total": 1}
