"""Issuer keys: the Ed25519 public keys with which clinics, landlords and agencies sign the records they issue.

A key is registered by its principal with a proof of possession
(``crypto.issuer.verify_possession``: the key's holder signed that the key is
this principal's), so nobody can register someone else's public key as their
own. A principal may hold several live keys (rotation: register the new one,
sign with it, then revoke the old); a revoked key signs nothing new, and what
it signed before keeps showing who signed it and when the key was revoked
(docs/attestations.md, "Issuer signatures").

Public information: a key's id, holder, public key and dates are what anyone
checking a signature needs, so any authenticated caller may look a key up.
Nothing here is about a resident.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crypto import issuer
from crypto.errors import KeyringError, SignatureError
from vault.core.caller import Caller
from vault.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from vault.core.ids import is_well_formed_id, new_id
from vault.core.vocabulary import ISSUER_ROLES
from vault.identity.principals import get_principal
from vault.keys.keys import SYSTEM_ACTOR, KeyStore
from vault.ledger.events import DomainEvent, emit
from vault.storage.models import IssuerKey, Principal

# Live keys one principal may hold at once: rotation needs two; more is a mistake to stop early.
MAX_LIVE_KEYS = 8
NOT_AN_ISSUER = "Only clinics, landlords and agencies hold issuer keys."


@dataclass(frozen=True)
class IssuerKeyView:
    id: str
    principal_id: str
    principal_role: str
    principal_name: str
    public_key: bytes
    created_at: datetime
    revoked_at: datetime | None

    @property
    def status(self) -> str:
        return "active" if self.revoked_at is None else "revoked"


def require_issuer(caller: Caller) -> None:
    if caller.role not in ISSUER_ROLES:
        raise Forbidden(NOT_AN_ISSUER)


def _view(session: Session, keys: KeyStore, row: IssuerKey) -> IssuerKeyView:
    holder = get_principal(session, keys, row.principal_id)
    return IssuerKeyView(
        id=row.id,
        principal_id=row.principal_id,
        principal_role=holder.role,
        principal_name=holder.name,
        public_key=bytes(row.public_key),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def _event(kind: str, actor_id: str, key: IssuerKey, now: datetime) -> DomainEvent:
    # Ids only: the key and its holder. Public keys and names stay out of the ledger, as every value does.
    return DomainEvent(
        kind=kind,
        occurred_at=now,
        actor_id=actor_id,
        subject_id=None,
        data={"key_id": key.id, "issuer_id": key.principal_id},
    )


def register_key(
    session: Session,
    keys: KeyStore,
    caller: Caller,
    *,
    public_key: bytes,
    proof: bytes,
    now: datetime,
    by_operator: bool = False,
) -> IssuerKeyView:
    """Register ``public_key`` as ``caller``'s, once ``proof`` shows that its holder means it to be.

    ``by_operator``: an operator registers it for ``caller`` through the CLI
    (``civicvault issuer key``); the event's actor is then the system.
    """
    require_issuer(caller)
    try:
        issuer.check_public_key(public_key)
    except KeyringError:
        raise InvalidInput("The public key is not an Ed25519 public key of full order.") from None
    try:
        issuer.verify_possession(caller.id, public_key, proof)
    except SignatureError:
        raise InvalidInput(
            "The proof of possession does not verify: sign 'civicvault/issuer-key/v1', a zero byte, your principal "
            "id and the public key with the private key (docs/attestations.md)."
        ) from None
    if session.scalar(select(IssuerKey.id).where(IssuerKey.public_key == public_key)) is not None:
        raise Conflict("This public key is registered already.")
    live = session.scalar(
        select(func.count())
        .select_from(IssuerKey)
        .where(IssuerKey.principal_id == caller.id, IssuerKey.revoked_at.is_(None))
    )
    if (live or 0) >= MAX_LIVE_KEYS:
        raise Conflict(f"You hold {MAX_LIVE_KEYS} live issuer keys already; revoke one before registering another.")
    row = IssuerKey(id=new_id("k"), principal_id=caller.id, public_key=public_key, created_at=now, revoked_at=None)
    session.add(row)
    session.flush()
    emit(session, _event("issuer-key.registered", SYSTEM_ACTOR if by_operator else caller.id, row, now))
    return _view(session, keys, row)


def _row(session: Session, key_id: str) -> IssuerKey | None:
    return session.get(IssuerKey, key_id) if is_well_formed_id(key_id) else None


def get_key(session: Session, keys: KeyStore, key_id: str) -> IssuerKeyView:
    """A key's public information, for anyone checking a signature; ``NotFound`` for an unknown id."""
    row = _row(session, key_id)
    if row is None:
        raise NotFound()
    return _view(session, keys, row)


def list_keys(session: Session, keys: KeyStore, caller: Caller) -> list[IssuerKeyView]:
    """The caller's own keys, newest first, revoked ones included."""
    require_issuer(caller)
    rows = session.scalars(
        select(IssuerKey).where(IssuerKey.principal_id == caller.id).order_by(IssuerKey.created_at.desc(), IssuerKey.id)
    )
    return [_view(session, keys, row) for row in rows]


def revoke_key(session: Session, keys: KeyStore, caller: Caller | None, key_id: str, *, now: datetime) -> IssuerKeyView:
    """End a key: it signs nothing new from ``now``. ``caller`` None is an operator acting through the CLI.

    Only its holder (or an operator) revokes a key; another caller gets the
    unknown id's ``NotFound``.
    """
    if caller is not None:
        require_issuer(caller)
    row = _row(session, key_id)
    if row is None or (caller is not None and row.principal_id != caller.id):
        raise NotFound()
    if row.revoked_at is not None:
        raise Conflict("This key is revoked already.")
    row.revoked_at = now
    session.flush()
    emit(session, _event("issuer-key.revoked", SYSTEM_ACTOR if caller is None else caller.id, row, now))
    return _view(session, keys, row)


@dataclass(frozen=True)
class SigningKey:
    """What the records service needs of a key to check a signature."""

    id: str
    principal_id: str
    public_key: bytes
    revoked_at: datetime | None


def signing_key(session: Session, key_id: str) -> SigningKey | None:
    row = _row(session, key_id)
    if row is None:
        return None
    return SigningKey(
        id=row.id, principal_id=row.principal_id, public_key=bytes(row.public_key), revoked_at=row.revoked_at
    )


def find_by_public_key(session: Session, keys: KeyStore, public_key: bytes) -> IssuerKeyView | None:
    """The registered key with this public key, if any (``civicvault issuer sign`` finds its key id so)."""
    row = session.scalar(select(IssuerKey).where(IssuerKey.public_key == public_key))
    return None if row is None else _view(session, keys, row)


def holder_names(session: Session, keys: KeyStore, principal_ids: set[str]) -> dict[str, str]:
    """Display names of issuers (organisations, not residents), for provenance."""
    found: dict[str, str] = {}
    for principal_id in principal_ids:
        if session.get(Principal, principal_id) is not None:
            found[principal_id] = get_principal(session, keys, principal_id).name
    return found
