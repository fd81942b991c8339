"""The break-glass review queue: every emergency access waits for a compliance officer.

A break-glass declaration is *pending* until a compliance officer
acknowledges it with a note; nothing else (its window ending, the clinic's
reads, time passing) takes it off the queue. An acknowledgement is final: a
second one is a 409. It is itself a ledger event, ``break-glass.acknowledged``
(ids only), and its receipt comes back to the officer.

The note is free text about the resident's emergency, so it is sealed like
the clinic's reason: under the resident's subject key, with associated data
binding it to the declaration (``crypto.sealed_text_aad``, kind
``break-glass-review-note``); it is never in the event. So master key
rotation never has to re-seal it, and an erasure shreds it with the rest of
the resident's data.

Every view that shows a declaration's reason or a review's note appends, in
the transaction that opens them, one ``text.opened`` event per resident whose text was
shown (``openings.log_opened``: ids and kinds of text, never the text);
a note shown back to the officer who wrote it is not logged again. If the
event cannot be appended, nothing is shown.
"""

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vault.consent.authz import require_compliance
from vault.consent.break_glass import REASON_KIND, UNCODED, reason_opened
from vault.consent.openings import Opened, log_opened
from vault.core.bounds import MAX_PAGE
from vault.core.caller import Caller
from vault.core.errors import Conflict, InvalidInput, NotFound, RecordUnreadable
from vault.core.ids import is_well_formed_id
from vault.keys.keys import KeyStore, open_text, seal_text
from vault.ledger.events import DomainEvent, emit_sequenced
from vault.ledger.ledger import Receipt, receipt_for
from vault.storage.models import BreakGlass, BreakGlassReview, Event

NOTE_KIND = "break-glass-review-note"
MAX_NOTE_LENGTH = 2000
STATUSES = ("pending", "acknowledged")


@dataclass(frozen=True)
class Review:
    id: str  # the break-glass declaration's id
    subject_id: str
    clinic_id: str
    reason: str | None  # None when the resident's keys were destroyed (erasure)
    code: str  # the coded reason (vocabulary.BREAK_GLASS_CODES); "other" for declarations made without one
    declared_at: datetime
    expires_at: datetime
    active: bool
    uses: int
    declaration: Receipt | None  # the break-glass.declared event in the ledger
    status: str
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    note: str | None
    receipt: Receipt | None  # the break-glass.acknowledged event in the ledger


def check_note(note: str) -> str:
    """A note: 1 to MAX_NOTE_LENGTH characters, line breaks and tabs allowed, no other control characters."""
    note = note.strip()
    if not note:
        raise InvalidInput("An acknowledgement needs a note.")
    if len(note) > MAX_NOTE_LENGTH:
        raise InvalidInput(f"A note may have at most {MAX_NOTE_LENGTH} characters.")
    if any((ord(ch) < 32 and ch not in "\n\t") or ord(ch) == 127 for ch in note):
        raise InvalidInput("A note must not contain control characters other than line breaks and tabs.")
    try:
        note.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("A note must be valid Unicode.") from None
    return note


def _note(keys: KeyStore, session: Session, row: BreakGlass, review: BreakGlassReview) -> str | None:
    try:
        return open_text(
            keys, session, kind=NOTE_KIND, object_id=row.id, subject_id=row.subject_id, sealed=review.note_sealed
        )
    except RecordUnreadable:
        return None  # the resident's keys are gone (erasure)


def _reason(keys: KeyStore, session: Session, row: BreakGlass) -> str | None:
    try:
        return open_text(
            keys, session, kind=REASON_KIND, object_id=row.id, subject_id=row.subject_id, sealed=row.reason_sealed
        )
    except RecordUnreadable:
        return None  # the resident's keys are gone (erasure): the reason is unreadable by design


def _ledger_facts(session: Session, row: BreakGlass) -> tuple[int | None, int, str]:
    """The declaration's ledger index, how many permitted accesses used it, and its coded reason."""
    declared, uses, code = None, 0, UNCODED
    events = session.execute(
        select(Event.ledger_index, Event.kind, Event.data).where(
            Event.subject_id == row.subject_id,
            Event.actor_id == row.clinic_id,
            Event.kind.in_(("break-glass.declared", "access.permitted")),
        )
    )
    for index, kind, data in events:
        fields = json.loads(data) if data else {}
        if fields.get("break_glass_id") != row.id:
            continue
        if kind == "break-glass.declared":
            declared, code = index, fields.get("code") or UNCODED
        else:
            uses += 1
    return declared, uses, code


def _view(session: Session, keys: KeyStore, row: BreakGlass, review: BreakGlassReview | None, now: datetime) -> Review:
    declared, uses, code = _ledger_facts(session, row)
    return Review(
        id=row.id,
        subject_id=row.subject_id,
        clinic_id=row.clinic_id,
        reason=_reason(keys, session, row),
        code=code,
        declared_at=row.declared_at,
        expires_at=row.expires_at,
        active=row.declared_at <= now < row.expires_at,
        uses=uses,
        declaration=receipt_for(session, declared) if declared is not None else None,
        status="acknowledged" if review is not None else "pending",
        acknowledged_at=review.acknowledged_at if review else None,
        acknowledged_by=review.reviewer_id if review else None,
        note=_note(keys, session, row, review) if review else None,
        receipt=receipt_for(session, review.ledger_index) if review else None,
    )


def queue(
    session: Session,
    keys: KeyStore,
    caller: Caller,
    *,
    status: str = "pending",
    limit: int = 100,
    offset: int = 0,
    now: datetime,
) -> tuple[list[Review], int]:
    """Declarations with ``status``, oldest first, and how many there are."""
    require_compliance(caller)
    if status not in STATUSES:
        raise InvalidInput(f"status must be one of: {', '.join(STATUSES)}.")
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}, offset at least 0.")
    query = select(BreakGlass, BreakGlassReview).outerjoin(
        BreakGlassReview, BreakGlassReview.break_glass_id == BreakGlass.id
    )
    query = query.where(
        BreakGlassReview.break_glass_id.is_(None)
        if status == "pending"
        else BreakGlassReview.break_glass_id.is_not(None)
    )
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = session.execute(query.order_by(BreakGlass.declared_at, BreakGlass.id).limit(limit).offset(offset)).all()
    views = [_view(session, keys, row, review, now) for row, review in rows]
    _log(session, caller, [(row, review, view) for (row, review), view in zip(rows, views, strict=True)], now)
    return views, total


def _log(
    session: Session, caller: Caller, shown: list[tuple[BreakGlass, BreakGlassReview | None, Review]], now: datetime
) -> None:
    """One ``text.opened`` event per resident for the reasons and notes actually opened (erased ones are not)."""
    opened = []
    for row, review, view in shown:
        if view.reason is not None:
            opened.append(reason_opened(row))
        if review is not None and view.note is not None:
            opened.append(
                Opened(subject_id=row.subject_id, what=NOTE_KIND, object_id=row.id, author_id=review.reviewer_id)
            )
    log_opened(session, caller, opened, now=now)


def get(session: Session, keys: KeyStore, caller: Caller, break_glass_id: str, *, now: datetime) -> Review:
    require_compliance(caller)
    row = session.get(BreakGlass, break_glass_id) if is_well_formed_id(break_glass_id) else None
    if row is None:
        raise NotFound()
    review = session.get(BreakGlassReview, row.id)
    view = _view(session, keys, row, review, now)
    _log(session, caller, [(row, review, view)], now)
    return view


def acknowledge(
    session: Session, keys: KeyStore, caller: Caller, break_glass_id: str, *, note: str, now: datetime
) -> Review:
    """Take a declaration off the queue with a sealed note; one acknowledgement per declaration."""
    require_compliance(caller)
    row = session.get(BreakGlass, break_glass_id) if is_well_formed_id(break_glass_id) else None
    if row is None:
        raise NotFound()
    note = check_note(note)
    if session.get(BreakGlassReview, row.id) is not None:
        raise Conflict("This emergency access has already been acknowledged.")
    receipt = emit_sequenced(
        session,
        DomainEvent(
            kind="break-glass.acknowledged",
            occurred_at=now,
            actor_id=caller.id,
            subject_id=row.subject_id,
            data={"break_glass_id": row.id, "clinic_id": row.clinic_id},
        ),
    )
    review = BreakGlassReview(
        break_glass_id=row.id,
        reviewer_id=caller.id,
        note_sealed=seal_text(keys, session, kind=NOTE_KIND, object_id=row.id, subject_id=row.subject_id, text=note),
        acknowledged_at=now,
        ledger_index=receipt.leaf_index,
    )
    session.add(review)
    # A concurrent acknowledgement of the same declaration fails here on the
    # primary key (409), and its ledger event rolls back with it.
    session.flush()
    view = _view(session, keys, row, review, now)
    _log(session, caller, [(row, review, view)], now)  # the clinic's reason; the officer's own note is not logged
    return view
