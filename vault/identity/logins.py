"""Logins: what a person types to sign in, stored only sealed and as a blind index.

A login is personal data (often an e-mail address), so the database never
holds it in clear. Each principal with a login has:

- ``login_index``: HMAC-SHA256 of the *normalised* login under a key derived
  from a master key version (``KeyStore.login_index``, crypto.blind_index),
  unique, for exact lookup; ``login_index_version`` names that version;
- ``login_sealed``: the login as it was given (surrounding white space
  stripped), sealed like the principal's name, for display.

Normalisation makes the variants a person would take for the same login one
login: NFKC, then case folding, then NFKC again (folding can undo NFKC), then
stripping; ``Amina@Example.org``, ``amina@example.org `` and the full-width
``ａｍｉｎａ@example.org`` collide (``vault.core.content.normalise_login``,
shared with key rotation, which re-indexes). A login is 1 to ``MAX_LOGIN_LENGTH``
characters once normalised, with no white space inside and no control,
format (zero-width), private-use, surrogate or unassigned characters, which
would make two logins that look the same differ.

Messages never repeat the login: they end up in logs and on screens.
"""

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vault.core.content import normalise_login
from vault.core.errors import Conflict, InvalidInput, NotFound
from vault.core.ids import is_well_formed_id
from vault.keys.keys import KeyStore
from vault.storage.models import Principal


def check_login(login: str) -> tuple[str, str]:
    """(display form, normalised form) of an acceptable login, or ``InvalidInput``."""
    normalised = normalise_login(login)
    return login.strip(), normalised


def _owner(session: Session, keys: KeyStore, normalised: str) -> Principal | None:
    """The principal whose login index matches under any master key version in the keyring."""
    candidates = keys.login_index_candidates(normalised)
    rows = session.scalars(select(Principal).where(Principal.login_index.in_(list(candidates)))).all()
    # An index computed under version v must have been stored as version v: a digest under one
    # version never stands for the same login under another.
    return next((row for row in rows if candidates.get(row.login_index or "") == row.login_index_version), None)


def find_principal(session: Session, keys: KeyStore, login: str) -> Principal | None:
    """The live (not erased) principal with this login, or None; ``InvalidInput`` for a malformed login."""
    row = _owner(session, keys, normalise_login(login))
    return row if row is not None and row.erased_at is None else None


def _principal(session: Session, principal_id: str) -> Principal:
    row = session.get(Principal, principal_id) if is_well_formed_id(principal_id) else None
    if row is None or row.erased_at is not None:
        raise NotFound(f"No principal {principal_id!r}.")
    return row


def set_login(session: Session, keys: KeyStore, principal_id: str, login: str) -> str:
    """Give a principal a login (or a new one); returns it as it will be shown.

    Two principals never share a login in any of its variants: the lookup
    across every master key version refuses a login already taken, and the
    unique index refuses the one taken by a concurrent transaction.
    """
    display, normalised = check_login(login)
    row = _principal(session, principal_id)
    owner = _owner(session, keys, normalised)
    if owner is not None and owner.id != row.id:
        raise Conflict("This login is already taken.")
    version, index = keys.login_index(normalised)
    sealed = keys.seal_login(row.id, display, scheme=row.name_scheme)
    try:
        with session.begin_nested():
            row.login_index, row.login_index_version, row.login_sealed = index, version, sealed
            session.flush()
    except IntegrityError:
        raise Conflict("This login is already taken.") from None
    return display


def get_login(session: Session, keys: KeyStore, principal_id: str) -> str | None:
    """A principal's login as given, or None when it has none (an erased principal has none)."""
    row = session.get(Principal, principal_id) if is_well_formed_id(principal_id) else None
    if row is None:
        raise NotFound(f"No principal {principal_id!r}.")
    return open_login(keys, row)


def open_login(keys: KeyStore, row: Principal) -> str | None:
    """The login of a loaded principal row, or None."""
    if row.login_sealed is None or row.erased_at is not None:
        return None
    return keys.open_login(row.id, row.login_sealed, scheme=row.name_scheme)


def rate_key(keys: KeyStore, login: str) -> str:
    """A key to count failed sign-ins per login without naming it (for the HTTP layer's rate limits).

    The first 128 bits of the login's blind index under the current master
    key: the same for every variant of a login, meaningless without the key.
    Every malformed login shares one key.
    """
    try:
        normalised = normalise_login(login)
    except InvalidInput:
        return "login:malformed"
    return "login:" + keys.login_index(normalised)[1][:32]
