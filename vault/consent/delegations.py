"""Delegation: a resident appoints a guardian or caregiver for a bounded time.

An active delegate manages the resident's consent (grants, requests) and
reads the resident's records for a stated purpose; they cannot write records
or appoint further delegates. Either party may end a delegation early.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from vault.consent import policy
from vault.consent.access import delegation_facts
from vault.core.bounds import MAX_PAGE, check_window
from vault.core.caller import Caller
from vault.core.config import ConsentLimits
from vault.core.errors import Forbidden, InvalidInput, NotFound
from vault.core.ids import is_well_formed_id, new_id
from vault.ledger.events import DomainEvent, emit
from vault.storage.models import Delegation, Principal


@dataclass(frozen=True)
class DelegationView:
    id: str
    subject_id: str
    delegate_id: str
    valid_from: datetime
    expires_at: datetime
    status: str
    created_at: datetime
    revoked_at: datetime | None


def _view(row: Delegation, now: datetime) -> DelegationView:
    return DelegationView(
        id=row.id,
        subject_id=row.subject_id,
        delegate_id=row.delegate_id,
        valid_from=row.valid_from,
        expires_at=row.expires_at,
        status=policy.delegation_status(delegation_facts(row), now),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def create_delegation(
    session: Session,
    caller: Caller,
    *,
    delegate_id: str,
    expires_at: datetime,
    valid_from: datetime | None = None,
    limits: ConsentLimits,
    now: datetime,
) -> DelegationView:
    if caller.role != "resident":
        raise Forbidden("Only residents appoint delegates.")
    valid_from = valid_from or now
    check_window(valid_from, expires_at, now=now, max_days=limits.max_delegation_days, what="A delegation")
    delegate = session.get(Principal, delegate_id) if is_well_formed_id(delegate_id) else None
    if delegate is None or delegate.role != "resident" or delegate.erased_at is not None:
        raise InvalidInput("The delegate must be a known resident principal.")
    if delegate.id == caller.id:
        raise InvalidInput("A resident cannot be their own delegate.")
    row = Delegation(
        id=new_id("d"),
        subject_id=caller.id,
        delegate_id=delegate.id,
        valid_from=valid_from,
        expires_at=expires_at,
        created_at=now,
    )
    session.add(row)
    emit(
        session,
        DomainEvent(
            kind="delegation.granted",
            occurred_at=now,
            actor_id=caller.id,
            subject_id=caller.id,
            data={
                "delegation_id": row.id,
                "delegate_id": delegate.id,
                "valid_from": valid_from,
                "expires_at": expires_at,
            },
        ),
    )
    session.flush()
    return _view(row, now)


def _load(session: Session, caller: Caller, delegation_id: str) -> Delegation:
    row = session.get(Delegation, delegation_id) if is_well_formed_id(delegation_id) else None
    if row is None or not (caller.role == "compliance" or caller.id in (row.subject_id, row.delegate_id)):
        raise NotFound()
    return row


def get_delegation(session: Session, caller: Caller, delegation_id: str, *, now: datetime) -> DelegationView:
    return _view(_load(session, caller, delegation_id), now)


def revoke_delegation(session: Session, caller: Caller, delegation_id: str, *, now: datetime) -> DelegationView:
    """End a delegation (the resident, or the delegate stepping down); idempotent."""
    row = _load(session, caller, delegation_id)
    if caller.id not in (row.subject_id, row.delegate_id):
        raise Forbidden("Only the resident or the delegate can end a delegation.")
    if row.revoked_at is None:
        row.revoked_at, row.revoked_by = now, caller.id
        emit(
            session,
            DomainEvent(
                kind="delegation.revoked",
                occurred_at=now,
                actor_id=caller.id,
                subject_id=row.subject_id,
                data={"delegation_id": row.id, "delegate_id": row.delegate_id},
            ),
        )
        session.flush()
    return _view(row, now)


def list_delegations(
    session: Session, caller: Caller, *, subject_id: str | None = None, limit: int = 100, offset: int = 0, now: datetime
) -> tuple[list[DelegationView], int]:
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise InvalidInput(f"limit must be 1 to {MAX_PAGE} and offset at least 0.")
    conditions = []
    if caller.role != "compliance":
        conditions.append(or_(Delegation.subject_id == caller.id, Delegation.delegate_id == caller.id))
    if subject_id is not None:
        conditions.append(Delegation.subject_id == subject_id)
    total = session.execute(select(func.count()).select_from(Delegation).where(*conditions)).scalar_one()
    rows = session.scalars(
        select(Delegation)
        .where(*conditions)
        .order_by(Delegation.created_at.desc(), Delegation.id)
        .limit(limit)
        .offset(offset)
    )
    return [_view(row, now) for row in rows], total
