"""The consent decision point: a pure function of (grants, delegations, break-glass, request, now).

No database, no clock, no I/O: everything it needs is passed in, so it can be
tested exhaustively and reasoned about on its own (docs/consent.md).

A request is permitted on exactly one *basis*:

``self``         the resident acting on their own records;
``grant``        a live grant from the resident that covers the category, the
                 action (``read``, ``write`` or ``attest``: an attestation
                 about the records, never their contents) and the purpose, and is not used up (a grant a delegate
                 gave carries reads only, and one its grantee gave itself
                 counts for nothing: ``GrantFacts.effective_actions``, ``self_given``);
``delegation``   a live delegation naming the caller (reads only, any purpose);
``break-glass``  a clinic's live emergency declaration (``health.*`` reads with
                 purpose ``emergency``), flagged for review.

Otherwise ``ConsentDenied`` is raised with one reason code. When several
bases fail, the reason is taken from the one that came closest to permitting:
checks run in the order category, action, purpose, revoked, not-yet-valid,
expired, used-up, and the basis that passed the most checks names the reason.
Roles that never read contents (compliance, admin, witness) are refused
whatever they hold.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from vault.core.errors import ConsentDenied
from vault.core.vocabulary import category_matches

NO_GRANT = "no-grant"
WRONG_CATEGORY = "wrong-category"
WRONG_ACTION = "wrong-action"
WRONG_PURPOSE = "wrong-purpose"
REVOKED = "revoked"
NOT_YET_VALID = "not-yet-valid"
EXPIRED = "expired"
USED_UP = "used-up"

# Not a decision: the id named nothing the vault holds (unknown, deleted, erased, or not a
# resident). Recorded on the refusal event, which names no subject; answered as 404.
NOT_FOUND = "not-found"

REASONS = (NO_GRANT, WRONG_CATEGORY, WRONG_ACTION, WRONG_PURPOSE, REVOKED, NOT_YET_VALID, EXPIRED, USED_UP)
# Reasons that would tell a caller something about a resident it has no
# consent covering: the API answers these with the same 404 as an unknown id.
UNDISCLOSED_REASONS = frozenset({NO_GRANT, WRONG_CATEGORY, NOT_FOUND})

READ, WRITE = "read", "write"
# ``attest``: the vault may answer a yes/no question about the category's records
# (vault/attestations) and sign the answer; it never lets the grantee read contents.
ATTEST = "attest"
ACTIONS = (READ, WRITE, ATTEST)
CONTENT_BLIND_ROLES = frozenset({"compliance", "admin", "witness"})
BREAK_GLASS_PATTERN = "health.*"
BREAK_GLASS_PURPOSE = "emergency"

_DETAIL = {
    NO_GRANT: "No consent from the resident covers this request.",
    WRONG_CATEGORY: "The resident's consent does not cover this category.",
    WRONG_ACTION: "The resident's consent does not cover this action.",
    WRONG_PURPOSE: "The resident's consent does not cover this purpose.",
    REVOKED: "The resident revoked this consent.",
    NOT_YET_VALID: "The resident's consent is not valid yet.",
    EXPIRED: "The resident's consent has expired.",
    USED_UP: "The resident's consent has been used as many times as it allows.",
    NOT_FOUND: "No such resource.",
}


def denied(reason: str) -> ConsentDenied:
    return ConsentDenied(_DETAIL[reason], reason=reason)


@dataclass(frozen=True)
class GrantFacts:
    id: str
    subject_id: str
    grantee_id: str
    categories: tuple[str, ...]
    purpose: str
    actions: tuple[str, ...]
    valid_from: datetime
    expires_at: datetime
    max_uses: int | None
    uses: int
    revoked: bool
    created_by: str | None = None  # the resident, or the delegate who gave it on their behalf

    @property
    def self_given(self) -> bool:
        """Given by its own grantee (a delegate naming itself): never a basis for anything."""
        return self.created_by == self.grantee_id

    @property
    def effective_actions(self) -> tuple[str, ...]:
        """A grant given by a delegate carries no more than a delegate may do itself: reads."""
        if self.created_by is None or self.created_by == self.subject_id:
            return self.actions
        return tuple(a for a in self.actions if a == READ)


@dataclass(frozen=True)
class DelegationFacts:
    id: str
    subject_id: str
    delegate_id: str
    valid_from: datetime
    expires_at: datetime
    revoked: bool


@dataclass(frozen=True)
class BreakGlassFacts:
    id: str
    subject_id: str
    clinic_id: str
    declared_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class AccessQuery:
    """What the caller wants to do."""

    subject_id: str
    actor_id: str
    actor_role: str
    category: str
    purpose: str | None
    action: str


@dataclass(frozen=True)
class Permit:
    basis: str  # self | grant | delegation | break-glass
    grant_id: str | None = None
    delegation_id: str | None = None
    break_glass_id: str | None = None

    @property
    def flagged(self) -> bool:
        """Break-glass uses are flagged for compliance review."""
        return self.basis == "break-glass"


def _first_failure(checks: Iterable[tuple[bool, str]]) -> tuple[int, str | None]:
    """(number of checks passed, reason of the first failure or None)."""
    passed = 0
    for ok, reason in checks:
        if not ok:
            return passed, reason
        passed += 1
    return passed, None


def _lifecycle(revoked: bool, valid_from: datetime, expires_at: datetime, now: datetime) -> list[tuple[bool, str]]:
    # Valid on [valid_from, expires_at): at expires_at itself it has expired.
    return [(not revoked, REVOKED), (valid_from <= now, NOT_YET_VALID), (now < expires_at, EXPIRED)]


def grant_checks(grant: GrantFacts, query: AccessQuery, now: datetime) -> tuple[int, str | None]:
    return _first_failure(
        [
            (any(category_matches(p, query.category) for p in grant.categories), WRONG_CATEGORY),
            (query.action in grant.effective_actions, WRONG_ACTION),
            (query.purpose == grant.purpose, WRONG_PURPOSE),
            *_lifecycle(grant.revoked, grant.valid_from, grant.expires_at, now),
            (grant.max_uses is None or grant.uses < grant.max_uses, USED_UP),
        ]
    )


def grant_status(grant: GrantFacts, now: datetime) -> str:
    """active | revoked | not-yet-valid | expired | used-up, as of ``now``."""
    _, reason = _first_failure(
        [
            *_lifecycle(grant.revoked, grant.valid_from, grant.expires_at, now),
            (grant.max_uses is None or grant.uses < grant.max_uses, USED_UP),
        ]
    )
    return reason or "active"


def delegation_active(delegation: DelegationFacts, now: datetime) -> bool:
    return _first_failure(_lifecycle(delegation.revoked, delegation.valid_from, delegation.expires_at, now))[1] is None


def delegation_status(delegation: DelegationFacts, now: datetime) -> str:
    return (
        _first_failure(_lifecycle(delegation.revoked, delegation.valid_from, delegation.expires_at, now))[1] or "active"
    )


def _delegation_checks(delegation: DelegationFacts, query: AccessQuery, now: datetime) -> tuple[int, str | None]:
    return _first_failure(
        [
            (True, WRONG_CATEGORY),
            (query.action == READ, WRONG_ACTION),
            (query.purpose is not None, WRONG_PURPOSE),
            *_lifecycle(delegation.revoked, delegation.valid_from, delegation.expires_at, now),
        ]
    )


def _break_glass_checks(declaration: BreakGlassFacts, query: AccessQuery, now: datetime) -> tuple[int, str | None]:
    return _first_failure(
        [
            (category_matches(BREAK_GLASS_PATTERN, query.category), WRONG_CATEGORY),
            (query.action == READ, WRONG_ACTION),
            (query.purpose == BREAK_GLASS_PURPOSE, WRONG_PURPOSE),
            *_lifecycle(False, declaration.declared_at, declaration.expires_at, now),
        ]
    )


def decide(
    *,
    grants: Iterable[GrantFacts],
    delegations: Iterable[DelegationFacts] = (),
    break_glass: Iterable[BreakGlassFacts] = (),
    query: AccessQuery,
    now: datetime,
) -> Permit:
    """Permit the query on one basis, or raise ``ConsentDenied`` with a reason code."""
    if query.actor_role == "resident" and query.actor_id == query.subject_id:
        return Permit(basis="self")
    if query.actor_role in CONTENT_BLIND_ROLES:
        raise denied(NO_GRANT)
    best: tuple[int, str] | None = None

    def consider(result: tuple[int, str | None]) -> bool:
        nonlocal best
        passed, reason = result
        if reason is None:
            return True
        if best is None or passed > best[0]:
            best = (passed, reason)
        return False

    # Grants first, soonest-expiring first, so a short-lived grant is used
    # (and its use counted) before a longer one covering the same request.
    for grant in sorted(grants, key=lambda g: (g.expires_at, g.id)):
        if grant.subject_id == query.subject_id and grant.grantee_id == query.actor_id and not grant.self_given:
            if consider(grant_checks(grant, query, now)):
                return Permit(basis="grant", grant_id=grant.id)
    if query.actor_role == "resident":
        for delegation in delegations:
            if delegation.subject_id == query.subject_id and delegation.delegate_id == query.actor_id:
                if consider(_delegation_checks(delegation, query, now)):
                    return Permit(basis="delegation", delegation_id=delegation.id)
    if query.actor_role == "clinic":
        for declaration in sorted(break_glass, key=lambda d: (d.expires_at, d.id)):
            if declaration.subject_id == query.subject_id and declaration.clinic_id == query.actor_id:
                if consider(_break_glass_checks(declaration, query, now)):
                    return Permit(basis="break-glass", break_glass_id=declaration.id)
    raise denied(best[1] if best else NO_GRANT)
