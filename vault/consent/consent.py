"""Grants: residents (or their delegates) give, list and revoke consent.

A grant's status is computed, never stored, except for revocation: it is
``revoked``, ``not-yet-valid``, ``expired``, ``used-up`` or ``active`` as of the
``now`` it is looked at, so expiry and use limits need no background job.
Who may see a grant: its resident, the resident's active delegates, its
grantee and compliance officers; anyone else gets ``NotFound``.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from vault.consent import policy
from vault.consent.access import delegation_facts, grant_facts
from vault.consent.authz import acts_for, require_resident
from vault.core.bounds import MAX_PAGE, check_window
from vault.core.caller import Caller
from vault.core.config import ConsentLimits
from vault.core.errors import Forbidden, InvalidInput, NotFound
from vault.core.ids import is_well_formed_id, new_id
from vault.core.vocabulary import CATEGORIES, check_category_pattern, check_purpose
from vault.ledger.events import DomainEvent, emit
from vault.storage.models import Delegation, Grant, Principal

GRANTEE_ROLES = ("clinic", "landlord", "agency", "resident")
STATUSES = ("active", "revoked", "not-yet-valid", "expired", "used-up")


@dataclass(frozen=True)
class GrantView:
    id: str
    subject_id: str
    grantee_id: str
    grantee_role: str
    categories: tuple[str, ...]
    purpose: str
    actions: tuple[str, ...]
    valid_from: datetime
    expires_at: datetime
    max_uses: int | None
    uses: int
    status: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    request_id: str | None


def view(row: Grant, grantee_role: str, now: datetime) -> GrantView:
    facts = grant_facts(row)
    return GrantView(
        id=row.id,
        subject_id=row.subject_id,
        grantee_id=row.grantee_id,
        grantee_role=grantee_role,
        categories=facts.categories,
        purpose=row.purpose,
        actions=facts.actions,
        valid_from=row.valid_from,
        expires_at=row.expires_at,
        max_uses=row.max_uses,
        uses=row.uses,
        status=policy.grant_status(facts, now),
        created_at=row.created_at,
        created_by=row.created_by,
        revoked_at=row.revoked_at,
        request_id=row.request_id,
    )


def _role(session: Session, principal_id: str) -> str:
    return session.scalar(select(Principal.role).where(Principal.id == principal_id)) or "unknown"


def managed_subjects(session: Session, caller: Caller, now: datetime) -> list[str]:
    """The residents for whom ``caller`` is an active delegate."""
    rows = session.scalars(select(Delegation).where(Delegation.delegate_id == caller.id))
    return [d.subject_id for d in rows if policy.delegation_active(delegation_facts(d), now)]


def require_manager(session: Session, caller: Caller, subject_id: str, now: datetime) -> str:
    """The resident or an active delegate, else the ``NotFound`` an unknown id gets."""
    require_resident(session, subject_id)
    acting = acts_for(session, caller, subject_id, now)
    if acting is None:
        raise NotFound()
    return acting


def check_categories(categories: list[str]) -> tuple[str, ...]:
    if not categories:
        raise InvalidInput("Name at least one category.")
    checked = sorted({check_category_pattern(c) for c in categories})
    if len(checked) > len(CATEGORIES):
        raise InvalidInput("Too many categories.")
    return tuple(checked)


def check_actions(actions: list[str]) -> tuple[str, ...]:
    if not actions or any(a not in policy.ACTIONS for a in actions):
        raise InvalidInput(f"Actions must be a non-empty list of: {', '.join(policy.ACTIONS)}.")
    return tuple(sorted(set(actions)))


GRANTEE_REFUSED = "The grantee must be a clinic, landlord, agency or resident that can receive consent."
# What a delegate may do with the resident's records (policy: reads only), hence all it may pass on.
DELEGATE_GRANTABLE_ACTIONS = frozenset({policy.READ})


def check_delegate_grant(caller: Caller, *, grantee_id: str, actions: tuple[str, ...]) -> None:
    """A delegate manages the resident's grants for others, within what a delegate may do itself.

    It never names itself as grantee (a grant would let it write, and outlive the
    delegation), and never passes on an action a delegate cannot perform.
    """
    if grantee_id == caller.id:
        raise Forbidden("A delegate cannot give itself consent; only the resident can.")
    beyond = sorted(set(actions) - DELEGATE_GRANTABLE_ACTIONS)
    if beyond:
        raise Forbidden(f"A delegate cannot give consent to {', '.join(beyond)}: only the resident can.")


def create_grant(
    session: Session,
    caller: Caller,
    *,
    subject_id: str | None = None,
    grantee_id: str,
    categories: list[str],
    purpose: str,
    actions: list[str],
    expires_at: datetime,
    valid_from: datetime | None = None,
    max_uses: int | None = None,
    limits: ConsentLimits,
    now: datetime,
    request_id: str | None = None,
) -> GrantView:
    """Record the resident's consent (given by them or an active delegate)."""
    subject_id = subject_id or caller.id
    acting = require_manager(session, caller, subject_id, now)
    cats, acts, purpose = check_categories(categories), check_actions(actions), check_purpose(purpose)
    valid_from = valid_from or now
    check_window(valid_from, expires_at, now=now, max_days=limits.max_grant_days, what="A grant")
    if max_uses is not None and not 1 <= max_uses <= 1_000_000:
        raise InvalidInput("max_uses must be between 1 and 1000000.")
    if grantee_id == subject_id:
        raise InvalidInput("A resident needs no consent to reach their own records.")
    if acting == "delegate":
        check_delegate_grant(caller, grantee_id=grantee_id, actions=acts)
    grantee = session.get(Principal, grantee_id) if is_well_formed_id(grantee_id) else None
    if grantee is None or grantee.role not in GRANTEE_ROLES or grantee.erased_at is not None:
        # One answer whatever the id names (nothing, an erased resident, a compliance officer, ...):
        # the caller learns neither another principal's role nor whether it exists.
        raise InvalidInput(GRANTEE_REFUSED)
    row = Grant(
        id=new_id("g"),
        subject_id=subject_id,
        grantee_id=grantee.id,
        categories=" ".join(cats),
        purpose=purpose,
        actions=" ".join(acts),
        valid_from=valid_from,
        expires_at=expires_at,
        max_uses=max_uses,
        uses=0,
        created_by=caller.id,
        created_at=now,
        request_id=request_id,
    )
    session.add(row)
    emit(
        session,
        DomainEvent(
            kind="consent.granted",
            occurred_at=now,
            actor_id=caller.id,
            subject_id=subject_id,
            data={
                "grant_id": row.id,
                "grantee_id": grantee.id,
                "categories": list(cats),
                "purpose": purpose,
                "actions": list(acts),
                "valid_from": valid_from,
                "expires_at": expires_at,
                "max_uses": max_uses,
                "acting_as": acting,
                "request_id": request_id,
            },
        ),
    )
    session.flush()
    return view(row, grantee.role, now)


def _visible(session: Session, caller: Caller, row: Grant | None, now: datetime) -> bool:
    if row is None:
        return False
    if caller.role == "compliance" or caller.id in (row.subject_id, row.grantee_id):
        return True
    return acts_for(session, caller, row.subject_id, now) == "delegate"


def get_grant(session: Session, caller: Caller, grant_id: str, *, now: datetime) -> GrantView:
    row = session.get(Grant, grant_id) if is_well_formed_id(grant_id) else None
    if row is None or not _visible(session, caller, row, now):
        raise NotFound()
    return view(row, _role(session, row.grantee_id), now)


def revoke_grant(session: Session, caller: Caller, grant_id: str, *, now: datetime) -> GrantView:
    """Revoke a grant; effective for every request that starts after the commit.

    Idempotent: revoking a revoked grant changes nothing and emits nothing.
    """
    row = session.get(Grant, grant_id, with_for_update=True) if is_well_formed_id(grant_id) else None
    if row is None or acts_for(session, caller, row.subject_id, now) is None:
        if _visible(session, caller, row, now):
            raise Forbidden("Only the resident or their active delegate can revoke this consent.")
        raise NotFound()
    if row.revoked_at is None:
        row.revoked_at, row.revoked_by = now, caller.id
        emit(
            session,
            DomainEvent(
                kind="consent.revoked",
                occurred_at=now,
                actor_id=caller.id,
                subject_id=row.subject_id,
                data={"grant_id": row.id, "grantee_id": row.grantee_id},
            ),
        )
        session.flush()
    return view(row, _role(session, row.grantee_id), now)


def status_condition(status: str, now: datetime):
    """SQL for ``policy.grant_status(grant, now) == status``."""
    live = and_(Grant.revoked_at.is_(None), Grant.valid_from <= now, Grant.expires_at > now)
    unlimited_or_left = or_(Grant.max_uses.is_(None), Grant.uses < Grant.max_uses)
    return {
        "revoked": Grant.revoked_at.is_not(None),
        "not-yet-valid": and_(Grant.revoked_at.is_(None), Grant.valid_from > now),
        "expired": and_(Grant.revoked_at.is_(None), Grant.valid_from <= now, Grant.expires_at <= now),
        "used-up": and_(live, Grant.max_uses.is_not(None), Grant.uses >= Grant.max_uses),
        "active": and_(live, unlimited_or_left),
    }[status]


def list_grants(
    session: Session,
    caller: Caller,
    *,
    subject_id: str | None = None,
    grantee_id: str | None = None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
    now: datetime,
) -> tuple[list[GrantView], int]:
    """Grants the caller may see, newest first, with the exact total."""
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"Unknown status {status!r}; expected one of: {', '.join(STATUSES)}.")
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise InvalidInput(f"limit must be 1 to {MAX_PAGE} and offset at least 0.")
    conditions = []
    if caller.role != "compliance":
        delegated = managed_subjects(session, caller, now)
        conditions.append(
            or_(Grant.subject_id == caller.id, Grant.grantee_id == caller.id, Grant.subject_id.in_(delegated))
        )
    if subject_id is not None:
        conditions.append(Grant.subject_id == subject_id)
    if grantee_id is not None:
        conditions.append(Grant.grantee_id == grantee_id)
    if status is not None:
        conditions.append(status_condition(status, now))
    total = session.execute(select(func.count()).select_from(Grant).where(*conditions)).scalar_one()
    rows = session.execute(
        select(Grant, Principal.role)
        .join(Principal, Principal.id == Grant.grantee_id)
        .where(*conditions)
        .order_by(Grant.created_at.desc(), Grant.id)
        .limit(limit)
        .offset(offset)
    )
    return [view(row, role, now) for row, role in rows], total
