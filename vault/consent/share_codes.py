"""Share codes: a resident shows a short code at a clinic or landlord's desk, who enters it to ask for access.

Like a patient portal's "share everywhere": the resident (or their active
delegate, naming the resident) makes a code; the clinic or landlord types it
in and starts an access request for that resident without ever being told
the resident's id first. What the request asks for is then decided by the
resident as for any other request (``access_requests``).

The code
    Ten characters of Crockford's base32 (``0-9`` and ``A-Z`` without
    ``I L O U``), shown grouped as ``ABCD-EFGH-JK``: 50 random bits. Typing is
    forgiving: case, spaces and hyphens do not matter, and ``I``/``L`` read as
    ``1``, ``O`` as ``0``. It is shown once, to the resident who made it.

What is stored
    Only ``HMAC-SHA256(k, code)`` (hex), with ``k`` derived from the master key
    like the login blind index (``crypto.blind_index_key``, purpose
    ``share-code``). 50 bits alone would not resist a dictionary run over a
    stolen table; without the master key the column is random digests.
    Redemption tries the index of every master key version in the keyring, so
    a code made just before a rotation still works for its few minutes.

Life of a code
    - ``create_code``: valid ``minutes`` (1 to ``MAX_MINUTES``, default 10);
      making a new code ends the resident's earlier live codes (one live code
      at a time), so a code left on a screen is worth nothing once the next is
      made.
    - ``redeem_code`` (clinics and landlords): one conditional ``UPDATE ...
      SET used_at WHERE used_at IS NULL AND expires_at > now``; of two
      concurrent redemptions exactly one matches a row. An unknown, used,
      expired or malformed code gets one ``NotFound`` with one message, so a
      guesser learns nothing about which. The API and the pages count
      redemptions per caller (``CIVICVAULT_RATE_LIMIT_SHARE_CODES``,
      api/limits.py): with 2^50 codes, single use and a few minutes of life,
      guessing one is hopeless.
    - ``request_with_code``: redeem and create the access request in the same
      transaction (so a request that fails its checks leaves the code
      unused); the ``access-request.created`` event names the share code
      (``share_code_id``), which records the redemption in the ledger.
      Making a code discloses nothing and is not an event.

Erasure deletes a resident's codes (vault/rights/erasure.py).
"""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

import crypto
from vault.consent import access_requests, consent
from vault.consent.access_requests import RequestView
from vault.consent.authz import require_resident
from vault.core.caller import Caller
from vault.core.config import ConsentLimits
from vault.core.errors import Forbidden, InvalidInput, NotFound
from vault.core.ids import new_id
from vault.keys.keys import KeyStore
from vault.storage.models import ShareCode

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32
LENGTH = 10  # 50 bits
GROUPS = (4, 4, 2)
DEFAULT_MINUTES = 10
MAX_MINUTES = 30
MAX_TYPED = 40  # what anyone may type, spaces and hyphens included
INDEX_PURPOSE = "share-code"
REDEEMER_ROLES = access_requests.REQUESTER_ROLES
INVALID = "That code is not valid: it may have been used or have expired. Ask the resident for a new one."

_READS_AS = str.maketrans({"I": "1", "L": "1", "O": "0"})


@dataclass(frozen=True)
class NewCode:
    """A code just made: ``code`` (grouped) is shown once and never stored."""

    id: str
    code: str
    subject_id: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class Redeemed:
    id: str  # the share code's id
    subject_id: str


def format_code(raw: str) -> str:
    """``ABCDEFGHJK`` as ``ABCD-EFGH-JK``."""
    parts, start = [], 0
    for size in GROUPS:
        parts.append(raw[start : start + size])
        start += size
    return "-".join(parts)


def normalise(typed: str) -> str | None:
    """The ten characters of a typed code, or None when it cannot be one."""
    if not isinstance(typed, str) or len(typed) > MAX_TYPED:
        return None
    raw = "".join(typed.split()).replace("-", "").upper().translate(_READS_AS)
    if len(raw) != LENGTH or any(c not in ALPHABET for c in raw):
        return None
    return raw


def _digest(keys: KeyStore, raw: str, version: int) -> str:
    key = crypto.blind_index_key(keys.keyring, version, purpose=INDEX_PURPOSE)
    return crypto.blind_index(key, raw.encode("ascii")).hex()


def _candidates(keys: KeyStore, raw: str) -> list[str]:
    return [_digest(keys, raw, version) for version in keys.keyring.versions]


def create_code(
    session: Session,
    keys: KeyStore,
    caller: Caller,
    *,
    subject_id: str | None = None,
    minutes: int = DEFAULT_MINUTES,
    now: datetime,
) -> NewCode:
    """A new code for the resident ``subject_id`` (default: the caller), ending their earlier live codes."""
    if caller.role != "resident":
        raise Forbidden("Only residents and their delegates make share codes.")
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= MAX_MINUTES:
        raise InvalidInput(f"A share code lasts 1 to {MAX_MINUTES} minutes.")
    subject = caller.id if subject_id is None else subject_id
    consent.require_manager(session, caller, subject, now)  # the resident or an active delegate, else NotFound
    session.execute(delete(ShareCode).where(ShareCode.subject_id == subject, ShareCode.used_at.is_(None)))
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    row = ShareCode(
        id=new_id("s"),
        subject_id=subject,
        code_hash=_digest(keys, raw, keys.keyring.current_version),
        created_at=now,
        expires_at=now + timedelta(minutes=minutes),
    )
    session.add(row)
    session.flush()
    return NewCode(
        id=row.id, code=format_code(raw), subject_id=subject, created_at=row.created_at, expires_at=row.expires_at
    )


_REDEEM = (
    update(ShareCode)
    .where(ShareCode.used_at.is_(None))
    .returning(ShareCode.id, ShareCode.subject_id)
    .execution_options(synchronize_session=False)
)


def redeem_code(session: Session, keys: KeyStore, caller: Caller, code: str, *, now: datetime) -> Redeemed:
    """Use a code once (clinics and landlords): the resident it names, or ``NotFound`` (one message for all)."""
    if caller.role not in REDEEMER_ROLES:
        raise Forbidden("Only clinics and landlords use share codes.")
    raw = normalise(code)
    if raw is None:
        raise NotFound(INVALID)
    found = session.execute(
        _REDEEM.where(ShareCode.code_hash.in_(_candidates(keys, raw)), ShareCode.expires_at > now).values(
            used_at=now, used_by=caller.id
        )
    ).first()
    if found is None:
        raise NotFound(INVALID)
    try:
        require_resident(session, found.subject_id)
    except NotFound:
        raise NotFound(INVALID) from None
    return Redeemed(id=found.id, subject_id=found.subject_id)


def request_with_code(
    session: Session,
    keys: KeyStore,
    caller: Caller,
    code: str,
    *,
    categories: list[str],
    purpose: str,
    reason: str,
    actions: list[str] | None = None,
    expires_at: datetime | None = None,
    limits: ConsentLimits,
    now: datetime,
) -> RequestView:
    """Redeem ``code`` and ask its resident for access, in the caller's transaction (one unit of work)."""
    redeemed = redeem_code(session, keys, caller, code, now=now)
    return access_requests.create_request(
        session,
        keys,
        caller,
        subject_id=redeemed.subject_id,
        categories=categories,
        purpose=purpose,
        reason=reason,
        actions=actions,
        expires_at=expires_at,
        limits=limits,
        now=now,
        share_code_id=redeemed.id,
    )


def erase(session: Session, subject_id: str) -> None:
    """Delete every code of a resident (erasure)."""
    session.execute(delete(ShareCode).where(ShareCode.subject_id == subject_id))
