"""Invitations: a one-time, expiring link with which a person sets their own password.

An operator runs ``civicvault principal invite ID``; the person opens
``BASE/invite/<token>`` and chooses a password. The token carries 256 random
bits and only its SHA-256 is stored. An invitation works once
(``used_at``), until ``expires_at`` (``DEFAULT_HOURS``, 72 h), and only
while its principal is not erased; a new invitation ends the principal's
earlier unused ones, so at most one link is live per person.

``accept`` checks the password against the policy *before* it takes the
invitation: a refused password leaves the link usable. Taking it is one
conditional UPDATE, so two submissions of one link set one password.
"""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from vault.core.errors import InvalidInput, NotFound
from vault.core.ids import is_well_formed_id, new_id
from vault.identity import logins, passwords
from vault.identity.web_sessions import MAX_TOKEN_LENGTH, token_digest
from vault.keys.keys import KeyStore
from vault.storage.db import rowcount
from vault.storage.models import Invitation, Principal

TOKEN_PREFIX = "cvi_"
DEFAULT_HOURS = 72
# One answer for an unknown, used, expired or foreign link: a link guesser learns nothing.
INVALID = "This invitation link is not valid: it may have been used or have expired. Ask for a new one."


@dataclass(frozen=True)
class InvitationLink:
    token: str  # shown once; the link is BASE/invite/<token>
    expires_at: datetime


def create(
    session: Session, keys: KeyStore, principal_id: str, *, now: datetime, hours: int = DEFAULT_HOURS
) -> InvitationLink:
    """A new invitation for a principal with a login; earlier unused ones end now."""
    row = session.get(Principal, principal_id) if is_well_formed_id(principal_id) else None
    if row is None or row.erased_at is not None:
        raise NotFound(f"No principal {principal_id!r}.")
    if row.login_sealed is None:
        raise InvalidInput("This principal has no login yet: give it one before inviting them.")
    if not 1 <= hours <= 30 * 24:
        raise InvalidInput("An invitation lasts from 1 hour to 30 days.")
    session.execute(
        update(Invitation)
        .where(Invitation.principal_id == row.id, Invitation.used_at.is_(None), Invitation.expires_at > now)
        .values(expires_at=now)
        .execution_options(synchronize_session=False)
    )
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = now + timedelta(hours=hours)
    session.add(
        Invitation(
            id=new_id("i"), principal_id=row.id, token_hash=token_digest(token), created_at=now, expires_at=expires_at
        )
    )
    session.flush()
    return InvitationLink(token=token, expires_at=expires_at)


def _live(session: Session, token: str, *, now: datetime) -> Invitation:
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise NotFound(INVALID)
    row = session.scalars(
        select(Invitation)
        .join(Principal, Principal.id == Invitation.principal_id)
        .where(
            Invitation.token_hash == token_digest(token),
            Invitation.used_at.is_(None),
            Invitation.expires_at > now,
            Principal.erased_at.is_(None),
        )
    ).first()
    if row is None:
        raise NotFound(INVALID)
    return row


def peek(session: Session, keys: KeyStore, token: str, *, now: datetime) -> tuple[str, str | None]:
    """(principal id, login) of a live invitation, without using it: for the page that shows the form."""
    row = _live(session, token, now=now)
    return row.principal_id, logins.get_login(session, keys, row.principal_id)


def accept(session: Session, keys: KeyStore, token: str, password: str, *, now: datetime) -> str:
    """Use a live invitation to set the principal's password; returns the principal id.

    ``InvalidInput`` (the link stays usable) for a password the policy
    refuses; ``NotFound`` for a link that is not live. Every web session of
    the principal ends, as with any new password.
    """
    invitation = _live(session, token, now=now)
    principal_id = invitation.principal_id
    login = logins.get_login(session, keys, principal_id)
    passwords.check_password(password, login=login)
    taken = rowcount(
        session.execute(
            update(Invitation)
            .where(Invitation.id == invitation.id, Invitation.used_at.is_(None), Invitation.expires_at > now)
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
    )
    if taken != 1:
        raise NotFound(INVALID)
    passwords.set_password(session, keys, principal_id, password, now=now)
    return principal_id


def purge_ended(session: Session, *, now: datetime) -> int:
    """Delete used and expired invitations (their links are worthless); returns how many."""
    from sqlalchemy import delete, or_

    result = session.execute(
        delete(Invitation)
        .where(or_(Invitation.used_at.is_not(None), Invitation.expires_at <= now))
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)
