"""Sealed free text shown to someone: an access, recorded like any other.

Showing a sealed free text about a resident (a break-glass reason, an access
request's reason, a break-glass review note) to anyone but the resident and
the text's author is itself an access: ``log_opened`` appends one
``text.opened`` event per resident whose text was shown, in the transaction
that opened it, naming what was opened (kind of text and object id, never the
text). If the event cannot be appended, the transaction fails and no text is
released. The resident sees these as "reviewed" lines in their access log.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from vault.core.caller import Caller
from vault.ledger.events import DomainEvent, emit

MAX_OPENED_PER_EVENT = 40  # each about 80 characters of the event's data


@dataclass(frozen=True)
class Opened:
    """One sealed free text shown to a caller: about whom, which kind of text, on which object, written by whom."""

    subject_id: str
    what: str  # the text's kind: access-request-reason, break-glass-reason, break-glass-review-note
    object_id: str
    author_id: str


def log_opened(session: Session, caller: Caller, opened: Iterable[Opened], *, now: datetime) -> None:
    """Append one ``text.opened`` event per resident whose sealed text ``caller`` is shown.

    Nothing is logged for the resident's own texts, nor for a text shown back
    to its author (a clinic's own reason, an officer's own note): they learn
    nothing they did not know. Delegates and compliance officers are logged.
    Call it in the transaction that opened the texts, before they leave it.
    A resident with more than ``MAX_OPENED_PER_EVENT`` texts shown at once
    gets one event per that many (``events.data`` holds 4000 characters).
    """
    by_subject: dict[str, list[dict[str, str]]] = {}
    for item in opened:
        if caller.id in (item.subject_id, item.author_id):
            continue
        entry = {"what": item.what, "object_id": item.object_id}
        texts = by_subject.setdefault(item.subject_id, [])
        if entry not in texts:
            texts.append(entry)
    for subject_id in sorted(by_subject):
        texts = by_subject[subject_id]
        for start in range(0, len(texts), MAX_OPENED_PER_EVENT):
            emit(
                session,
                DomainEvent(
                    kind="text.opened",
                    occurred_at=now,
                    actor_id=caller.id,
                    subject_id=subject_id,
                    data={"opened": texts[start : start + MAX_OPENED_PER_EVENT]},
                ),
            )
