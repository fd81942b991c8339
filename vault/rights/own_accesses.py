"""A clinic's, landlord's or agency's own accesses: what it read, listed, wrote, was refused, declared.

The other side of the resident's access log (``trail.access_log``), read from
the same ledger events (``access.permitted``, ``access.refused``,
``break-glass.declared``) where the caller is the actor, so every line
carries its ledger index like the resident's. Nobody but the caller sees
these lines here: a compliance officer searches everyone's
(vault/compliance/audit_search.py).

A line names the resident by id, and by name only when the caller holds or
held a grant from them or declared an emergency about them: a refused
attempt on a resident who never consented must not tell the caller whose id
it was. Events of erased residents are blanked and name nobody.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vault.core.bounds import MAX_PAGE
from vault.core.caller import Caller
from vault.core.errors import Forbidden, InvalidInput
from vault.identity.principals import get_principal
from vault.keys.keys import KeyStore
from vault.rights.trail import AccessEntry, Actor, _entry, _events
from vault.storage.models import BreakGlass, Event, Grant, Principal

OWN_KINDS = ("access.permitted", "access.refused", "break-glass.declared")
ROLES = ("clinic", "landlord", "agency")


@dataclass(frozen=True)
class OwnAccess:
    entry: AccessEntry
    subject_id: str | None  # None: an id that named nothing, or an erased resident's event
    subject_name: str | None  # only for residents the caller has (had) consent or an emergency from


@dataclass(frozen=True)
class OwnAccesses:
    items: list[OwnAccess]
    total: int
    next_before: int | None


def known_subjects(session: Session, caller: Caller) -> set[str]:
    """The residents who gave ``caller`` a grant (live or not) or about whom it declared an emergency."""
    granted = session.scalars(select(Grant.subject_id).where(Grant.grantee_id == caller.id))
    declared = session.scalars(select(BreakGlass.subject_id).where(BreakGlass.clinic_id == caller.id))
    return set(granted) | set(declared)


def own_accesses(
    session: Session,
    keys: KeyStore,
    caller: Caller,
    *,
    limit: int = 100,
    before: int | None = None,
    now: datetime,
) -> OwnAccesses:
    """The caller's own accesses and attempts, newest first; ``before`` pages back from a ledger index."""
    if caller.role not in ROLES:
        raise Forbidden("Only clinics, landlords and agencies have an access history of their own here.")
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be 1 to {MAX_PAGE}.")
    if before is not None and before < 0:
        raise InvalidInput("before must be a ledger index, 0 or more.")
    conditions = [Event.actor_id == caller.id, Event.kind.in_(OWN_KINDS)]
    total = session.execute(select(func.count()).select_from(Event).where(*conditions)).scalar_one()
    if before is not None:
        conditions.append(Event.ledger_index < before)
    query = _events(*conditions).add_columns(Event.subject_id).order_by(Event.ledger_index.desc()).limit(limit + 1)
    rows = session.execute(query).all()
    more = len(rows) > limit
    rows = rows[:limit]
    known = known_subjects(session, caller)
    names: dict[str, str | None] = {}
    me = get_principal(session, keys, caller.id)
    actors = {caller.id: Actor(id=caller.id, role=caller.role, name=me.name)}
    items = []
    for row in rows:
        subject_id = row[-1]
        if subject_id is not None and subject_id not in names:
            names[subject_id] = _name(session, keys, subject_id) if subject_id in known else None
        items.append(
            OwnAccess(
                entry=_entry(tuple(row[:-1]), actors),
                subject_id=subject_id,
                subject_name=names.get(subject_id) if subject_id is not None else None,
            )
        )
    return OwnAccesses(items=items, total=total, next_before=items[-1].entry.ledger_index if more else None)


def _name(session: Session, keys: KeyStore, subject_id: str) -> str | None:
    row = session.get(Principal, subject_id)
    if row is None or row.erased_at is not None:
        return None
    return get_principal(session, keys, subject_id).name
