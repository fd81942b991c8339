"""Web sessions: a signed-in browser, known by a random cookie token stored only as its hash.

``start`` (after a good password, ``vault.identity.sign_in``) returns the
token for the cookie; the row keeps SHA-256 of it, as ``api_tokens`` does.
``check`` finds the session of a cookie and refuses one that has ended:

- revoked (``sign_out``, ``sign_out_everywhere``, a new password, erasure);
- idle: unused for ``idle_minutes`` (``CIVICVAULT_SESSION_IDLE_MINUTES``,
  default 15: HIPAA's automatic logoff);
- too old: ``max_hours`` after sign-in (``CIVICVAULT_SESSION_MAX_HOURS``,
  default 12), however busy;
- its principal erased;
- (by default) still waiting for its second factor.

A check that succeeds moves ``last_seen_at`` forward, at most once every
``TOUCH_EVERY`` (30 s), so a busy page does not write on every request; the
idle timeout is thus counted from a moment at most 30 s before the last
request, never after it.

Each session has a random ``csrf_secret``; its CSRF token is an HMAC of the
session id under it (``csrf_token``), the same for every form of the session
and worthless in any other session. ``check_csrf`` compares in constant time.
"""

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from vault.core.config import WebSessionSettings
from vault.core.errors import Forbidden, Unauthenticated
from vault.core.ids import new_id
from vault.storage.db import rowcount
from vault.storage.models import Principal, WebSession

TOKEN_PREFIX = "cvs_"
MAX_TOKEN_LENGTH = 200
CSRF_SECRET_SIZE = 32
TOUCH_EVERY = timedelta(seconds=30)
_CSRF_LABEL = b"civicvault/csrf/v1\x00"

ENDED = "Your session has ended; sign in again."


@dataclass(frozen=True)
class WebSessionInfo:
    """A live session, as the pages need it: who, and whether the second factor was given."""

    id: str
    principal_id: str
    role: str
    second_factor_done: bool
    created_at: datetime
    expires_at: datetime
    csrf_secret: bytes = field(repr=False)


def new_session_token() -> str:
    """256 random bits for the cookie, base64url, with a prefix that says what it is."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """SHA-256 hex of a token: what is stored and looked up."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start(
    session: Session, principal_id: str, *, second_factor_done: bool, now: datetime, policy: WebSessionSettings
) -> str:
    """Open a session for a principal whose password was just checked; returns the cookie token (shown once)."""
    token = new_session_token()
    session.add(
        WebSession(
            id=new_id("s"),
            principal_id=principal_id,
            token_hash=token_digest(token),
            csrf_secret=os.urandom(CSRF_SECRET_SIZE),
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(hours=policy.max_hours),
            second_factor_done=second_factor_done,
            second_factor_failures=0,
        )
    )
    session.flush()
    return token


_sessions, _principals = WebSession.__table__.c, Principal.__table__.c
_LOOKUP = (
    select(
        _sessions.id,
        _sessions.token_hash,
        _sessions.principal_id,
        _sessions.csrf_secret,
        _sessions.created_at,
        _sessions.last_seen_at,
        _sessions.expires_at,
        _sessions.second_factor_done,
        _sessions.revoked_at,
        _principals.role,
        _principals.erased_at,
    )
    .select_from(WebSession.__table__.join(Principal.__table__, _principals.id == _sessions.principal_id))
    .where(_sessions.token_hash == bindparam("digest"))
)


def check(
    session: Session,
    token: str,
    *,
    now: datetime,
    policy: WebSessionSettings,
    require_second_factor: bool = True,
) -> WebSessionInfo:
    """The live session of a cookie token, or ``Unauthenticated``; moves its idle clock forward.

    ``require_second_factor=False`` is for the one page that asks for the
    TOTP code (and the enrolment that may precede it): everywhere else a
    session without its second factor is not signed in.
    """
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise Unauthenticated(ENDED)
    digest = token_digest(token)
    row = session.connection().execute(_LOOKUP, {"digest": digest}).first()
    if (
        row is None
        or not hmac.compare_digest(row.token_hash, digest)
        or row.revoked_at is not None
        or row.erased_at is not None
        or now >= row.expires_at
        or now - row.last_seen_at >= timedelta(minutes=policy.idle_minutes)
    ):
        raise Unauthenticated(ENDED)
    if require_second_factor and not row.second_factor_done:
        raise Unauthenticated("Give the code from your authenticator app to finish signing in.")
    if now - row.last_seen_at >= TOUCH_EVERY:
        session.execute(
            update(WebSession)
            .where(WebSession.id == row.id, WebSession.last_seen_at < now)
            .values(last_seen_at=now)
            .execution_options(synchronize_session=False)
        )
    return WebSessionInfo(
        id=row.id,
        principal_id=row.principal_id,
        role=row.role,
        second_factor_done=bool(row.second_factor_done),
        created_at=row.created_at,
        expires_at=row.expires_at,
        csrf_secret=bytes(row.csrf_secret),
    )


def csrf_token(info: WebSessionInfo) -> str:
    """The session's CSRF token for its forms: HMAC-SHA256(csrf secret, label || session id), base64url."""
    mac = hmac.new(info.csrf_secret, _CSRF_LABEL + info.id.encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def check_csrf(info: WebSessionInfo, token: str | None) -> None:
    """Refuse (``Forbidden``) a state-changing form whose CSRF token is not this session's."""
    expected = csrf_token(info).encode("ascii")
    given = token.encode("utf-8", "replace") if isinstance(token, str) else b""
    if not hmac.compare_digest(expected, given):
        raise Forbidden("The form has expired or did not come from this site; reload the page and try again.")


def rotate_token(session: Session, info: WebSessionInfo, *, now: datetime, second_factor_done: bool) -> str:
    """Give a session a new cookie token (when it gains the second factor), so an old cookie is worth nothing."""
    token = new_session_token()
    session.execute(
        update(WebSession)
        .where(WebSession.id == info.id)
        .values(token_hash=token_digest(token), second_factor_done=second_factor_done, last_seen_at=now)
        .execution_options(synchronize_session=False)
    )
    return token


def record_second_factor_failure(session: Session, info: WebSessionInfo, *, now: datetime, limit: int) -> bool:
    """Count a wrong code against the session; ends it at ``limit`` wrong codes. Returns whether it ended."""
    failures = session.execute(
        update(WebSession)
        .where(WebSession.id == info.id)
        .values(second_factor_failures=WebSession.second_factor_failures + 1)
        .returning(WebSession.second_factor_failures)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    if failures >= limit:
        _revoke(session, WebSession.id == info.id, now=now)
        return True
    return False


def _revoke(session: Session, condition, *, now: datetime) -> int:
    return rowcount(
        session.execute(
            update(WebSession)
            .where(condition, WebSession.revoked_at.is_(None))
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
    )


def sign_out(session: Session, token: str, *, now: datetime) -> bool:
    """End the session of a cookie token; False when there was no live one (signing out twice is harmless)."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        return False
    return _revoke(session, WebSession.token_hash == token_digest(token), now=now) == 1


def sign_out_everywhere(session: Session, principal_id: str, *, now: datetime) -> int:
    """End every live session of a principal; returns how many."""
    return _revoke(session, WebSession.principal_id == principal_id, now=now)


def purge_ended(session: Session, *, now: datetime, policy: WebSessionSettings) -> int:
    """Delete every session that can no longer be used (signed out, too old or idle too long); returns how many.

    An ended session is worth nothing (``check`` refuses it), but its row
    would stay forever: ``civicvault maintenance purge-sessions`` and each
    server start remove them.
    """
    from sqlalchemy import delete, or_

    idle_since = now - timedelta(minutes=policy.idle_minutes)
    result = session.execute(
        delete(WebSession)
        .where(
            or_(
                WebSession.revoked_at.is_not(None),
                WebSession.expires_at <= now,
                WebSession.last_seen_at <= idle_since,
            )
        )
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)
