"""Break-glass: a clinic declares an emergency and reads health records for a short window.

The declaration needs a coded reason from a small vocabulary
(``vocabulary.BREAK_GLASS_CODES``: ``unconscious``, ``life-threatening``,
``unable-to-consent``, ``other``), recorded in the ``break-glass.declared``
event so that the resident sees it at once in their access log and compliance
can count declarations by kind, and a written reason (sealed under the
resident's key). For
``break_glass_minutes`` after it, the declaring clinic may read the resident's
``health.*`` records with purpose ``emergency``; every such read is an
``access.permitted`` event with ``basis: break-glass`` and ``flagged: true``,
so it stands out in the resident's view and in compliance review.

Showing this reason to anyone but the resident and the declaring clinic is
itself an access, recorded by ``vault.consent.openings``.
"""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.consent.authz import acts_for, require_resident
from vault.consent.openings import Opened, log_opened
from vault.core.caller import Caller
from vault.core.config import ConsentLimits
from vault.core.content import check_text
from vault.core.errors import Forbidden, InvalidInput, NotFound
from vault.core.ids import new_id
from vault.core.vocabulary import check_break_glass_code
from vault.keys.keys import KeyStore, open_text, seal_text
from vault.ledger.events import DomainEvent, emit
from vault.storage.models import BreakGlass, Event

MAX_REASON_LENGTH = 1000
UNCODED = "other"  # the code of a declaration made without one
REASON_KIND = "break-glass-reason"


@dataclass(frozen=True)
class BreakGlassView:
    id: str
    subject_id: str
    clinic_id: str
    reason: str
    code: str  # the coded reason (vocabulary.BREAK_GLASS_CODES)
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
    code: str | None = None,
    limits: ConsentLimits,
    now: datetime,
    share_code_id: str | None = None,
) -> BreakGlassView:
    """Declare an emergency; ``code`` None (a client that sends no code) is recorded as ``other``.

    ``share_code_id``: the share code that named the resident (the pages), recorded in the event.
    """
    if caller.role != "clinic":
        raise Forbidden("Only clinics can declare an emergency.")
    code = check_break_glass_code(UNCODED if code is None else code)
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
            data={
                "break_glass_id": row.id,
                "expires_at": row.expires_at,
                "flagged": True,
                "code": code,
                **({"share_code_id": share_code_id} if share_code_id is not None else {}),
            },
        ),
    )
    session.flush()
    return _view(keys, session, row, now, uses=0, code=code)


def _from_events(session: Session, subject_id: str, clinic_ids: set[str]) -> tuple[dict[str, int], dict[str, str]]:
    """Permitted accesses per declaration, and each declaration's code, from the declaring clinics' events."""
    counts: dict[str, int] = {}
    codes: dict[str, str] = {}
    rows = session.execute(
        select(Event.kind, Event.data).where(
            Event.subject_id == subject_id,
            Event.actor_id.in_(clinic_ids),
            Event.kind.in_(("access.permitted", "break-glass.declared")),
        )
    )
    for kind, data in rows:
        fields = json.loads(data)
        declaration = fields.get("break_glass_id")
        if not declaration:
            continue
        if kind == "break-glass.declared":
            codes[declaration] = fields.get("code") or UNCODED  # declarations from before codes existed
        else:
            counts[declaration] = counts.get(declaration, 0) + 1
    return counts, codes


def _view(keys: KeyStore, session: Session, row: BreakGlass, now: datetime, *, uses: int, code: str) -> BreakGlassView:
    return BreakGlassView(
        id=row.id,
        subject_id=row.subject_id,
        clinic_id=row.clinic_id,
        reason=open_text(
            keys, session, kind=REASON_KIND, object_id=row.id, subject_id=row.subject_id, sealed=row.reason_sealed
        ),
        code=code,
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
    uses, codes = _from_events(session, subject_id, {row.clinic_id for row in rows})
    views = [_view(keys, session, row, now, uses=uses.get(row.id, 0), code=codes.get(row.id, UNCODED)) for row in rows]
    log_opened(session, caller, (reason_opened(row) for row in rows), now=now)
    return views


def reason_opened(row: BreakGlass) -> Opened:
    return Opened(subject_id=row.subject_id, what=REASON_KIND, object_id=row.id, author_id=row.clinic_id)
