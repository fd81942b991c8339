"""Looking a resident up by exact login or exact name, for a compliance officer; every look-up is logged.

An officer who is asked about a person (a complaint, a request for the
accounting of disclosures) needs that person's id. Two ways in:

- by **login**: the login's blind index (``vault.identity.logins.find_principal``),
  one indexed lookup;
- by **name**: names are sealed (under the master keyring, bound to the
  resident's secret) and there is no blind index of names, so the only way is
  to open residents' names one by one and compare. ``find_by_name`` does that
  scan, in pages, and refuses (``InvalidInput``) to look through more than
  ``MAX_NAME_SCAN`` residents: past that size a vault needs a name index, and
  the officer is asked to look up by login instead. Names compare after
  Unicode NFKC, case folding and collapsing white space ("Amina  yusuf" finds
  "Amina Yusuf"), never by part of a name.

Only live residents are found (another role's login, an erased resident: not
found, as an unknown one).

A look-up reveals who is a resident of the vault, so it is itself an access:
``look_up`` appends one ``resident.looked-up`` event in its own transaction,
naming the officer, how they looked (``by``: ``login`` or ``name``) and
whether anyone was found, never the login or name typed. A hit names the
resident as the event's subject (one event per resident found), so it shows
in their access log; a miss names no subject. If the event cannot be
appended, nothing is answered.
"""

import unicodedata
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.consent.authz import require_compliance
from vault.core.caller import Caller
from vault.core.errors import InvalidInput, RecordUnreadable
from vault.identity import logins
from vault.identity.principals import MAX_NAME_LENGTH
from vault.keys.keys import KeyStore
from vault.ledger.events import DomainEvent, emit
from vault.storage.models import Principal

LOOKED_UP = "resident.looked-up"
MAX_NAME_SCAN = 20_000  # residents whose names a look-up by name may open; beyond, look up by login
_BATCH = 500
BY = ("login", "name")


@dataclass(frozen=True)
class Found:
    id: str
    name: str
    login: str | None
    created_at: datetime


def normalise_name(name: str) -> str:
    """How names are compared: NFKC, case folded, white space runs made one space, stripped."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
    return " ".join(folded.split())


def _found(keys: KeyStore, row: Principal, name: str | None = None) -> Found | None:
    try:
        opened = name if name is not None else keys.open_name(row.id, row.name_sealed, scheme=row.name_scheme)
        login = logins.open_login(keys, row)
    except RecordUnreadable:
        return None  # the resident's secret is gone (an erasure in progress): nobody to show
    return Found(id=row.id, name=opened, login=login, created_at=row.created_at)


def find_by_login(session: Session, keys: KeyStore, login: str) -> list[Found]:
    row = logins.find_principal(session, keys, login)
    if row is None or row.role != "resident":
        return []
    found = _found(keys, row)
    return [found] if found is not None else []


def find_by_name(session: Session, keys: KeyStore, name: str, *, cap: int = MAX_NAME_SCAN) -> list[Found]:
    """Every live resident whose name equals ``name`` (see ``normalise_name``), by opening names in batches.

    A scan: it opens at most ``cap`` residents' names and refuses a vault with more.
    """
    wanted = normalise_name(name)
    beyond_cap = session.scalar(
        select(Principal.id).where(Principal.role == "resident", Principal.erased_at.is_(None)).limit(1).offset(cap)
    )
    if beyond_cap is not None:
        raise InvalidInput(f"There are more than {cap} residents: look them up by login instead of by name.")
    hits: list[Found] = []
    after = ""
    while True:
        rows = list(
            session.scalars(
                select(Principal)
                .where(Principal.role == "resident", Principal.erased_at.is_(None), Principal.id > after)
                .order_by(Principal.id)
                .limit(_BATCH)
            )
        )
        if not rows:
            return hits
        secrets = keys.secrets.get_many([row.id for row in rows]) if keys.secrets is not None else {}
        for row in rows:
            try:
                opened = keys.open_name(row.id, row.name_sealed, scheme=row.name_scheme, secret=secrets.get(row.id))
            except RecordUnreadable:
                continue
            if normalise_name(opened) == wanted:
                found = _found(keys, row, opened)
                if found is not None:
                    hits.append(found)
        after = rows[-1].id


def look_up(session: Session, keys: KeyStore, caller: Caller, *, by: str, value: str, now: datetime) -> list[Found]:
    """The live residents with this exact login or name; logged as ``resident.looked-up`` (hit or miss)."""
    require_compliance(caller)
    if by not in BY:
        raise InvalidInput(f"Look up by one of: {', '.join(BY)}.")
    value = value.strip()
    if not value:
        raise InvalidInput(f"Enter the {by} to look up.")
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidInput(f"A {by} has at most {MAX_NAME_LENGTH} characters.")
    hits = find_by_login(session, keys, value) if by == "login" else find_by_name(session, keys, value)
    for hit in hits:
        emit(
            session,
            DomainEvent(
                kind=LOOKED_UP, occurred_at=now, actor_id=caller.id, subject_id=hit.id, data={"by": by, "found": True}
            ),
        )
    if not hits:
        emit(
            session,
            DomainEvent(
                kind=LOOKED_UP, occurred_at=now, actor_id=caller.id, subject_id=None, data={"by": by, "found": False}
            ),
        )
    return hits
