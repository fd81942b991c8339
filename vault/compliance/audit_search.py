"""Compliance search over the whole event trail, with exact totals and stable pages.

A search names any of: resident (``subject_id``), actor, event kinds (exact,
or a family such as ``access.*``), outcome, purpose, category and a time range
``[since, until)``. Every condition is a plain column comparison on indexed
columns (``vault.audit_index`` fills them), so the same SQL runs on SQLite and
PostgreSQL.

Pages are keyset pages in ledger order, pinned to a ledger size (``as_of``):
the first page takes the current size, and every later page carries it, so
the total stays exact and no event is skipped or repeated however many events
are appended between pages. Indices below a committed ledger size are all
committed (the ledger head's row lock orders appenders), so the snapshot is
complete.

Each line carries its ``ledger_index`` and ``leaf_hash``, so it can be proved
with ``GET /api/v1/ledger/proofs/inclusion``. Events never hold record
content; an erased resident's events (data cleared) match no data filter and
show ``erased: true``.

A search is itself an access to the trail, so it is logged: one
``trail.searched`` event per search (not per page), appended in the search's
own transaction, naming the officer, the resident when the search is
filtered to one (``subject_id`` naming a resident; otherwise no subject), and
``as_of`` and the format. A search is its ``as_of``: the first page (or CSV
export) appends the event; later pages carrying the same ``as_of`` find it and
append nothing, and an ``as_of`` with no logged search behind it (a cursor
made by hand) is logged as a search of its own. If the event cannot be
appended, no line is served.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session

from vault.consent.authz import require_compliance
from vault.core.bounds import MAX_AUDIT_PAGE as MAX_PAGE
from vault.core.caller import Caller
from vault.core.errors import InvalidInput, LedgerIntegrityError
from vault.core.ids import is_well_formed_id
from vault.core.vocabulary import check_category_pattern, check_purpose
from vault.ledger import ledger
from vault.ledger.events import KINDS, DomainEvent, emit
from vault.storage import audit_index
from vault.storage.models import Event, EventCategory, LedgerNode, Principal

SEARCHED = "trail.searched"

DEFAULT_PAGE = 100
KIND_FAMILIES = tuple(sorted({kind.split(".", 1)[0] for kind in KINDS}))
KIND_PATTERNS = KINDS + tuple(f"{family}.*" for family in KIND_FAMILIES)


def expand_kinds(patterns: tuple[str, ...]) -> tuple[str, ...]:
    """Exact kinds for kind patterns (``access.*`` -> ``access.permitted``, ``access.refused``)."""
    kinds = set()
    for pattern in patterns:
        if pattern in KINDS:
            kinds.add(pattern)
        elif pattern.endswith(".*") and pattern[:-2] in KIND_FAMILIES:
            kinds.update(k for k in KINDS if k.split(".", 1)[0] == pattern[:-2])
        else:
            raise InvalidInput(f"Unknown event kind {pattern!r}; expected one of: {', '.join(KIND_PATTERNS)}.")
    return tuple(sorted(kinds))


@dataclass(frozen=True)
class EventFilter:
    """What to look for; every field left ``None`` (or empty) matches everything."""

    subject_id: str | None = None
    actor_id: str | None = None
    kinds: tuple[str, ...] = ()  # exact kinds or families such as ``access.*``
    outcome: str | None = None  # ``permitted`` / ``refused``
    purpose: str | None = None
    category: str | None = None  # exact, or a family such as ``health.*``
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive

    def checked(self) -> "EventFilter":
        """Refuse malformed values before any query (400, never a 500)."""
        for name in ("subject_id", "actor_id"):
            value = getattr(self, name)
            if value is not None and not is_well_formed_id(value):
                raise InvalidInput(f"{name} is not a well-formed id.")
        expand_kinds(self.kinds)
        if self.outcome is not None and self.outcome not in audit_index.OUTCOMES:
            raise InvalidInput(f"outcome must be one of: {', '.join(audit_index.OUTCOMES)}.")
        if self.purpose is not None:
            check_purpose(self.purpose)
        if self.category is not None:
            check_category_pattern(self.category)
        for moment in (self.since, self.until):
            if moment is not None and moment.tzinfo is None:
                raise InvalidInput("Times need a time zone (RFC 3339).")
        if self.since is not None and self.until is not None and self.since > self.until:
            raise InvalidInput("'from' must not be after 'to'.")
        return self


def _conditions(flt: EventFilter) -> list:
    conditions = []
    if flt.subject_id is not None:
        conditions.append(Event.subject_id == flt.subject_id)
    if flt.actor_id is not None:
        conditions.append(Event.actor_id == flt.actor_id)
    if flt.kinds:
        conditions.append(Event.kind.in_(expand_kinds(flt.kinds)))
    if flt.since is not None:
        conditions.append(Event.occurred_at >= flt.since)
    if flt.until is not None:
        conditions.append(Event.occurred_at < flt.until)
    # Facts derived from the data: an event whose data was cleared (erasure) matches none.
    if flt.outcome is not None or flt.purpose is not None or flt.category is not None:
        conditions.append(Event.data.is_not(None))
    if flt.outcome is not None:
        conditions.append(Event.outcome == flt.outcome)
    if flt.purpose is not None:
        conditions.append(Event.purpose == flt.purpose)
    if flt.category is not None:
        conditions.append(
            exists().where(
                EventCategory.ledger_index == Event.ledger_index,
                EventCategory.category.in_(audit_index.category_filter_values(flt.category)),
            )
        )
    return conditions


@dataclass(frozen=True)
class EventLine:
    ledger_index: int
    leaf_hash: str
    occurred_at: datetime
    kind: str
    outcome: str | None
    actor_id: str | None
    subject_id: str | None
    purpose: str | None
    categories: tuple[str, ...]
    data: dict | None
    erased: bool


@dataclass(frozen=True)
class EventPage:
    items: list[EventLine]
    total: int
    as_of: int  # the ledger size the search is pinned to
    after: int | None  # the cursor this page started after
    next_after: int | None  # pass as ``after`` (with ``as_of``) for the next page; None on the last
    limit: int


def _pin(session: Session, as_of: int | None) -> int:
    size = ledger.size(session)
    if as_of is None:
        return size
    if not 0 <= as_of <= size:
        raise InvalidInput(f"as_of must be between 0 and the ledger's size, {size}.")
    return as_of


def _searched_subject(session: Session, subject_id: str | None) -> str | None:
    """The resident a search is about: a live resident, never an unknown or erased id (no event may name one)."""
    if subject_id is None:
        return None
    row = session.get(Principal, subject_id)
    return subject_id if row is not None and row.role == "resident" and row.erased_at is None else None


def _log_search(
    session: Session, caller: Caller, flt: EventFilter, *, as_of: int, resumed: bool, fmt: str, now: datetime
) -> None:
    """Append the search's ``trail.searched`` event, unless this is a later page of a search already logged."""
    subject_id = _searched_subject(session, flt.subject_id)
    if resumed:
        earlier = session.scalars(
            select(Event.data).where(
                Event.kind == SEARCHED,
                Event.actor_id == caller.id,
                Event.subject_id == subject_id if subject_id is not None else Event.subject_id.is_(None),
                Event.ledger_index >= as_of,  # the first page pinned as_of before appending its event
            )
        )
        if any(data and json.loads(data).get("as_of") == as_of for data in earlier):
            return
    emit(
        session,
        DomainEvent(
            kind=SEARCHED,
            occurred_at=now,
            actor_id=caller.id,
            subject_id=subject_id,
            data={"as_of": as_of, "format": fmt},
        ),
    )


def _lines(session: Session, conditions: list, *, after: int | None, as_of: int, limit: int) -> list[EventLine]:
    where = [*conditions, Event.ledger_index < as_of]
    if after is not None:
        where.append(Event.ledger_index > after)
    rows = session.execute(
        select(
            Event.ledger_index,
            Event.occurred_at,
            Event.kind,
            Event.outcome,
            Event.actor_id,
            Event.subject_id,
            Event.purpose,
            Event.data,
            Event.erased_by,
            LedgerNode.hash,
        )
        .outerjoin(LedgerNode, and_(LedgerNode.level == 0, LedgerNode.index == Event.ledger_index))
        .where(*where)
        .order_by(Event.ledger_index)
        .limit(limit)
    ).all()
    categories: dict[int, list[str]] = {}
    if rows:
        indices = [row.ledger_index for row in rows]
        for index, category in session.execute(
            select(EventCategory.ledger_index, EventCategory.category)
            .where(EventCategory.ledger_index.in_(indices))
            .order_by(EventCategory.ledger_index, EventCategory.category)
        ):
            categories.setdefault(index, []).append(category)
    lines = []
    for row in rows:
        if row.hash is None:  # fail closed: a line that cannot be proved is not served
            raise LedgerIntegrityError(f"Ledger entry {row.ledger_index} has no stored leaf hash.")
        data = json.loads(row.data) if row.data and row.erased_by is None else None  # erasure leaves "{}"
        lines.append(
            EventLine(
                ledger_index=row.ledger_index,
                leaf_hash=bytes(row.hash).hex(),
                occurred_at=row.occurred_at,
                kind=row.kind,
                outcome=row.outcome,
                actor_id=row.actor_id,
                subject_id=row.subject_id,
                purpose=row.purpose,
                categories=tuple(categories.get(row.ledger_index, ())),
                data=data if isinstance(data, dict) else None,
                erased=row.erased_by is not None or not isinstance(data, dict),
            )
        )
    return lines


def search(
    session: Session,
    caller: Caller,
    flt: EventFilter,
    *,
    limit: int = DEFAULT_PAGE,
    after: int | None = None,
    as_of: int | None = None,
) -> EventPage:
    """One page of the events matching ``flt``, in ledger order, with the exact total.

    The query alone: an officer's search is served through ``logged_search``,
    which also logs it.
    """
    require_compliance(caller)
    flt = flt.checked()
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}.")
    as_of = _pin(session, as_of)
    conditions = _conditions(flt)
    total = session.execute(
        select(func.count()).select_from(Event).where(*conditions, Event.ledger_index < as_of)
    ).scalar_one()
    lines = _lines(session, conditions, after=after, as_of=as_of, limit=limit + 1)
    more = len(lines) > limit
    lines = lines[:limit]
    return EventPage(
        items=lines,
        total=total,
        as_of=as_of,
        after=after,
        next_after=lines[-1].ledger_index if more else None,
        limit=limit,
    )


def logged_search(
    session: Session,
    caller: Caller,
    flt: EventFilter,
    *,
    limit: int = DEFAULT_PAGE,
    after: int | None = None,
    as_of: int | None = None,
    now: datetime,
) -> EventPage:
    """``search``, and its ``trail.searched`` event in the same transaction (none for a later page of it)."""
    page = search(session, caller, flt, limit=limit, after=after, as_of=as_of)
    _log_search(session, caller, flt.checked(), as_of=page.as_of, resumed=as_of is not None, fmt="json", now=now)
    return page


def begin_export(
    session: Session, caller: Caller, flt: EventFilter, *, as_of: int | None = None, now: datetime
) -> tuple[EventFilter, int]:
    """Check the caller and the filter, pin the ledger size and log the search, before a streamed export starts.

    The export is served only after this transaction committed its ``trail.searched`` event.
    """
    require_compliance(caller)
    flt = flt.checked()
    pinned = _pin(session, as_of)
    _log_search(session, caller, flt, as_of=pinned, resumed=as_of is not None, fmt="csv", now=now)
    return flt, pinned


def export_batches(
    open_session, flt: EventFilter, *, as_of: int, after: int | None = None, batch: int = MAX_PAGE
) -> Iterator[list[EventLine]]:
    """Every matching event up to ``as_of``, in batches, each read in its own short transaction.

    ``open_session`` is a context manager factory such as
    ``Vault.read_transaction``: a long export never holds one transaction open.
    """
    conditions = _conditions(flt)
    while True:
        with open_session() as session:
            lines = _lines(session, conditions, after=after, as_of=as_of, limit=batch)
        if not lines:
            return
        yield lines
        if len(lines) < batch:
            return
        after = lines[-1].ledger_index


# --- Counts for charts ------------------------------------------------------------------------
# Aggregates over the events matching a filter: how many, when, of which outcome, by whom. They
# hold counts and ids only. A page that charts a search's results draws them beside the search's
# first page, which ``logged_search`` has logged; counts over every resident (a dashboard) name no
# resident and, like the flags (audit_flags.compute), are not logged.

NO_OUTCOME = "other"  # events that are not access decisions (grants, requests, reviews, ...)


def volume(
    session: Session,
    caller: Caller,
    flt: EventFilter,
    *,
    buckets: list[tuple[datetime, datetime]],
    as_of: int | None = None,
) -> list[dict[str, int]]:
    """For each ``[start, end)`` bucket, the matching events by outcome (``permitted``, ``refused``, ``other``)."""
    require_compliance(caller)
    flt = flt.checked()
    if len(buckets) > 400:
        raise InvalidInput("At most 400 buckets.")
    conditions = _conditions(flt)
    if as_of is not None:
        conditions.append(Event.ledger_index < as_of)
    counts = []
    for start, end in buckets:
        found: dict[str, int] = {}
        for outcome, count in session.execute(
            select(Event.outcome, func.count())
            .where(*conditions, Event.occurred_at >= start, Event.occurred_at < end)
            .group_by(Event.outcome)
        ):
            key = outcome or NO_OUTCOME
            found[key] = found.get(key, 0) + count
        counts.append(found)
    return counts


def top_actors(
    session: Session, caller: Caller, flt: EventFilter, *, limit: int = 5, as_of: int | None = None
) -> list[tuple[str, dict[str, int]]]:
    """The ``limit`` actors with the most matching events, most first: ``(actor_id, {outcome: count})``."""
    require_compliance(caller)
    flt = flt.checked()
    conditions = [*_conditions(flt), Event.actor_id.is_not(None)]
    if as_of is not None:
        conditions.append(Event.ledger_index < as_of)
    total = func.count().label("total")
    top = [
        actor
        for actor, _ in session.execute(
            select(Event.actor_id, total)
            .where(*conditions)
            .group_by(Event.actor_id)
            .order_by(total.desc(), Event.actor_id)
            .limit(limit)
        )
    ]
    result: list[tuple[str, dict[str, int]]] = []
    for actor in top:
        found: dict[str, int] = {}
        for outcome, count in session.execute(
            select(Event.outcome, func.count()).where(*conditions, Event.actor_id == actor).group_by(Event.outcome)
        ):
            key = outcome or NO_OUTCOME
            found[key] = found.get(key, 0) + count
        result.append((actor, found))
    return result


def time_span(
    session: Session, caller: Caller, flt: EventFilter, *, as_of: int | None = None
) -> tuple[datetime, datetime] | None:
    """When the first and the last matching events occurred; None when nothing matches."""
    require_compliance(caller)
    conditions = _conditions(flt.checked())
    if as_of is not None:
        conditions.append(Event.ledger_index < as_of)
    first, last = session.execute(
        select(func.min(Event.occurred_at), func.max(Event.occurred_at)).where(*conditions)
    ).one()
    return None if first is None else (first, last)
