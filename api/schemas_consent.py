"""Marshmallow schemas of the consent endpoints: grants, requests, delegations, break-glass."""

import marshmallow as ma
from marshmallow import fields, validate

from api.schemas import Strict, Timestamp
from vault.consent.access_requests import STATUSES as REQUEST_STATUSES
from vault.consent.consent import STATUSES as GRANT_STATUSES
from vault.consent.policy import ACTIONS
from vault.core.bounds import MAX_PAGE
from vault.core.vocabulary import CATEGORIES, CATEGORY_FAMILIES, PURPOSES

CATEGORY_PATTERNS = list(CATEGORIES) + [f"{family}.*" for family in CATEGORY_FAMILIES]
TIME = {"description": "RFC 3339 with a time zone, e.g. 2026-12-31T23:59:59Z"}


def _categories():
    return fields.List(
        fields.String(validate=validate.OneOf(CATEGORY_PATTERNS)),
        required=True,
        validate=validate.Length(min=1, max=len(CATEGORY_PATTERNS)),
    )


def _actions(**kwargs):
    return fields.List(
        fields.String(validate=validate.OneOf(ACTIONS)), validate=validate.Length(min=1, max=len(ACTIONS)), **kwargs
    )


class Page(Strict):
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=MAX_PAGE))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=2**31 - 1))


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
    reason = fields.String(required=True, validate=validate.Length(min=1, max=1000))


class BreakGlassOut(ma.Schema):
    id = fields.String()
    subject_id = fields.String()
    clinic_id = fields.String()
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
