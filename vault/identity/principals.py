"""Principals (residents, clinics, landlords, ...) and their API tokens.

Tokens are random, shown once, stored only as SHA-256 hashes and revocable.
A resident's subject key is created with the principal, so records can be
sealed for them from the first request on.
"""

import hmac
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from vault.core.caller import Caller
from vault.core.content import check_text
from vault.core.errors import InvalidInput, NotFound, Unauthenticated
from vault.core.ids import is_well_formed_id, new_id, new_token, token_hash
from vault.core.vocabulary import check_role
from vault.keys.keys import KeyStore
from vault.storage.db import rowcount
from vault.storage.models import ApiToken, Principal

MAX_NAME_LENGTH = 200
ERASED_NAME = "(erased)"


@dataclass(frozen=True)
class PrincipalInfo:
    id: str
    role: str
    name: str
    created_at: datetime


def _check_name(name: str) -> str:
    name = check_text(name, what="A name", max_length=MAX_NAME_LENGTH)
    if not name:
        raise InvalidInput("A name must not be empty.")
    return name


def create_principal(
    session: Session, keys: KeyStore, *, role: str, name: str, now: datetime
) -> tuple[PrincipalInfo, str]:
    """Create a principal and its first token; returns the token once."""
    role = check_role(role)
    name = _check_name(name)
    principal_id = new_id("p")
    # A resident's name is bound to their secret, so erasure destroys it in every copy.
    scheme = keys.new_scheme() if role == "resident" else 1
    session.add(
        Principal(
            id=principal_id,
            role=role,
            name_sealed=keys.seal_name(principal_id, name, scheme=scheme),
            name_scheme=scheme,
            created_at=now,
        )
    )
    session.flush()
    if role == "resident":
        keys.create_subject_key(session, principal_id, now=now)
    token = issue_token(session, principal_id, now=now)
    return PrincipalInfo(id=principal_id, role=role, name=name, created_at=now), token


def issue_token(session: Session, principal_id: str, *, now: datetime) -> str:
    _get(session, principal_id)
    token = new_token()
    session.add(ApiToken(id=new_id("t"), principal_id=principal_id, token_hash=token_hash(token), created_at=now))
    return token


def revoke_tokens(session: Session, principal_id: str, *, now: datetime) -> int:
    """Revoke every live token of a principal; returns how many."""
    _get(session, principal_id)
    result = session.execute(
        update(ApiToken)
        .where(ApiToken.principal_id == principal_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return rowcount(result)


MAX_TOKEN_LENGTH = 200

# The token lookup as one Core statement on the tables, built once: it runs on every request,
# and the ORM's per-statement work would cost more than the lookup itself.
_tokens, _principals = ApiToken.__table__.c, Principal.__table__.c
_TOKEN_LOOKUP = (
    select(_tokens.token_hash, _tokens.revoked_at, _principals.id, _principals.role, _principals.erased_at)
    .select_from(ApiToken.__table__.join(Principal.__table__, _principals.id == _tokens.principal_id))
    .where(_tokens.token_hash == bindparam("digest"))
)


def check_token_form(token: str) -> str:
    """A token that could be one (present, not oversized), or ``Unauthenticated``; no lookup."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise Unauthenticated("The bearer token is missing or malformed.")
    return token


def authenticate(session: Session, token: str) -> Caller:
    """The principal a live token belongs to, or ``Unauthenticated``.

    One statement in the caller's transaction: a token revoked by a
    transaction that committed before this one reads it is refused.
    """
    digest = token_hash(check_token_form(token))
    row = session.connection().execute(_TOKEN_LOOKUP, {"digest": digest}).first()
    # The lookup is by hash, so timing reveals nothing about the token; the
    # constant-time comparison guards against a database that matches loosely.
    # An erased principal never authenticates, whatever its token rows say (a
    # token row restored from elsewhere or edited by hand): erasure is the
    # principal's state, not only its tokens'.
    if (
        row is None
        or row.revoked_at is not None
        or row.erased_at is not None
        or not hmac.compare_digest(row.token_hash, digest)
    ):
        raise Unauthenticated("The bearer token is unknown or has been revoked.")
    return Caller(id=row.id, role=row.role)


def _get(session: Session, principal_id: str) -> Principal:
    row = session.get(Principal, principal_id) if is_well_formed_id(principal_id) else None
    if row is None:
        raise NotFound(f"No principal {principal_id!r}.")
    return row


def _info(keys: KeyStore, row: Principal) -> PrincipalInfo:
    if row.erased_at is not None:
        return PrincipalInfo(id=row.id, role=row.role, name=ERASED_NAME, created_at=row.created_at)
    name = keys.open_name(row.id, row.name_sealed, scheme=row.name_scheme)
    return PrincipalInfo(id=row.id, role=row.role, name=name, created_at=row.created_at)


def get_principal(session: Session, keys: KeyStore, principal_id: str) -> PrincipalInfo:
    return _info(keys, _get(session, principal_id))


def list_principals(
    session: Session, keys: KeyStore, *, role: str | None = None, limit: int | None = None
) -> list[PrincipalInfo]:
    """Principals, oldest first; ``limit``: only that many (their names are opened one by one)."""
    query = select(Principal).order_by(Principal.created_at, Principal.id)
    if role is not None:
        query = query.where(Principal.role == check_role(role))
    if limit is not None:
        query = query.limit(limit)
    return [_info(keys, row) for row in session.scalars(query)]


def count_principals(session: Session, *, role: str | None = None) -> int:
    query = select(func.count()).select_from(Principal)
    if role is not None:
        query = query.where(Principal.role == check_role(role))
    return int(session.execute(query).scalar_one())


def live_token_count(session: Session, principal_id: str) -> int:
    return len(
        session.scalars(
            select(ApiToken.id).where(ApiToken.principal_id == principal_id, ApiToken.revoked_at.is_(None))
        ).all()
    )
