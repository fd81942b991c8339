"""``civicvault verify``'s check of the compliance search columns.

The search columns (``events.outcome``, ``events.purpose``,
``event_categories``) are not part of the ledger entry: they repeat what an
event's data says, for queries. Someone who edited them could hide events
from a compliance search (say, turn a refusal's outcome into nothing) while
the ledger itself still verified. This check recomputes them from each
event's data (``vault.audit_index``) and names the first event whose columns
disagree. Events whose data was cleared by an erasure are skipped: nothing
is left to recompute from, and the search ignores their columns.
"""

import json
from collections.abc import Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault import audit_index
from vault.errors import LedgerIntegrityError
from vault.models import Event, EventCategory

BATCH = 2000


def _categories(session: Session) -> Iterator[tuple[int, str]]:
    yield from session.execute(
        select(EventCategory.ledger_index, EventCategory.category).order_by(EventCategory.ledger_index, EventCategory.category)
        .execution_options(yield_per=BATCH)
    )


def check_search_columns(session: Session) -> None:
    """Raise ``LedgerIntegrityError`` at the first event whose search columns disagree with its data."""
    stored = _categories(session)
    pending = next(stored, None)
    rows = session.execute(
        select(Event.ledger_index, Event.kind, Event.data, Event.outcome, Event.purpose).order_by(Event.ledger_index)
        .execution_options(yield_per=BATCH)
    )
    for index, kind, data_json, outcome, purpose in rows:
        found = []
        while pending is not None and pending[0] <= index:
            if pending[0] < index:
                raise LedgerIntegrityError(f"Ledger entry {pending[0]}: a search category is stored for an event that does not exist.")
            found.append(pending[1])
            pending = next(stored, None)
        data = json.loads(data_json) if data_json else None
        if not isinstance(data, dict):
            continue  # erased: nothing to recompute from
        expected = audit_index.columns_of(kind, data)
        if (outcome, purpose) != (expected["outcome"], expected["purpose"]):
            raise LedgerIntegrityError(f"Ledger entry {index}: its search columns (outcome, purpose) do not match its data.")
        if tuple(found) != audit_index.categories_of(data):
            raise LedgerIntegrityError(f"Ledger entry {index}: its search categories do not match its data.")
    if pending is not None:
        raise LedgerIntegrityError(f"Ledger entry {pending[0]}: a search category is stored for an event that does not exist.")
