"""Break-glass: a clinic declares an emergency and reads health records for a short window.

The declaration needs a written reason (sealed under the resident's key). For
``break_glass_minutes`` after it, the declaring clinic may read the resident's
``health.*`` records with purpose ``emergency``; every such read is an
``access.permitted`` event with ``basis: break-glass`` and ``flagged: true``,
so it stands out in the resident's view and in compliance review.
"""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.consent.authz import acts_for, require_resident
from vault.core.caller import Caller
from vault.core.config import ConsentLimits
from vault.core.content import check_text
from vault.core.errors import Forbidden, InvalidInput, NotFound
from vault.core.ids import new_id
from vault.keys.keys import KeyStore, open_text, seal_text
from vault.ledger.events import DomainEvent, emit
from vault.storage.models import BreakGlass, Event

MAX_REASON_LENGTH = 1000
REASON_KIND = "break-glass-reason"


@dataclass(frozen=True)
class BreakGlassView:
    id: str
    subject_id: str
    clinic_id: str
    reason: str
    declared_at: datetime
    expires_at: datetime
    active: bool
    uses: int


def declare(
    session: Session,
    keys: KeyStore,
    caller: Caller,
    *,
    subject_id: str,
    reason: str,
    limits: ConsentLimits,
    now: datetime,
) -> BreakGlassView:
    if caller.role != "clinic":
        raise Forbidden("Only clinics can declare an emergency.")
    reason = check_text(reason, what="A reason", max_length=MAX_REASON_LENGTH)
    if not reason:
        raise InvalidInput("An emergency access needs a written reason.")
    require_resident(session, subject_id)
    row = BreakGlass(
        id=new_id("b"),
        subject_id=subject_id,
        clinic_id=caller.id,
        reason_sealed=b"",
        declared_at=now,
        expires_at=now + timedelta(minutes=limits.break_glass_minutes),
    )
    row.reason_sealed = seal_text(keys, session, kind=REASON_KIND, object_id=row.id, subject_id=subject_id, text=reason)
    session.add(row)
    emit(
        session,
        DomainEvent(
            kind="break-glass.declared",
            occurred_at=now,
            actor_id=caller.id,
            subject_id=subject_id,
            data={"break_glass_id": row.id, "expires_at": row.expires_at, "flagged": True},
        ),
    )
    session.flush()
    return _view(keys, session, row, now, uses=0)


def _uses(session: Session, subject_id: str, clinic_ids: set[str]) -> dict[str, int]:
    """Permitted accesses per declaration, from the declaring clinics' events."""
    counts: dict[str, int] = {}
    rows = session.scalars(
        select(Event.data).where(
            Event.subject_id == subject_id, Event.actor_id.in_(clinic_ids), Event.kind == "access.permitted"
        )
    )
    for data in rows:
        declaration = json.loads(data).get("break_glass_id")
        if declaration:
            counts[declaration] = counts.get(declaration, 0) + 1
    return counts


def _view(keys: KeyStore, session: Session, row: BreakGlass, now: datetime, *, uses: int) -> BreakGlassView:
    return BreakGlassView(
        id=row.id,
        subject_id=row.subject_id,
        clinic_id=row.clinic_id,
        reason=open_text(
            keys, session, kind=REASON_KIND, object_id=row.id, subject_id=row.subject_id, sealed=row.reason_sealed
        ),
        declared_at=row.declared_at,
        expires_at=row.expires_at,
        active=row.declared_at <= now < row.expires_at,
        uses=uses,
    )


def list_declarations(
    session: Session, keys: KeyStore, caller: Caller, *, subject_id: str, now: datetime
) -> list[BreakGlassView]:
    """Emergency declarations about a resident, with how often each was used.

    Seen by the resident, their delegates and compliance officers; a clinic
    sees its own declarations.
    """
    require_resident(session, subject_id)
    query = (
        select(BreakGlass)
        .where(BreakGlass.subject_id == subject_id)
        .order_by(BreakGlass.declared_at.desc(), BreakGlass.id)
    )
    if caller.role == "clinic":
        query = query.where(BreakGlass.clinic_id == caller.id)
    elif caller.role != "compliance" and acts_for(session, caller, subject_id, now) is None:
        raise NotFound()
    rows = list(session.scalars(query))
    if caller.role == "clinic" and not rows:
        raise NotFound()
    uses = _uses(session, subject_id, {row.clinic_id for row in rows})
    return [_view(keys, session, row, now, uses=uses.get(row.id, 0)) for row in rows]
