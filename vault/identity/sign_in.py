"""Signing in to the pages: login and password, then a TOTP code for those who need one.

``sign_in`` checks a login and password and opens a web session:

- every refusal is the same ``Unauthenticated("The login or password is
  wrong.")`` and costs one argon2 verification: an unknown, malformed or
  erased login, or one without a password, is checked against a dummy hash
  (``passwords.verify_dummy``), so neither the answer nor its time tells
  whether a login exists;
- a hash made with older argon2 parameters is replaced while the password is
  at hand;
- the session's ``second_factor`` says what comes next: ``done``; ``code``
  (TOTP is on: ask for a code, ``give_code``); ``enrol`` (the role needs TOTP
  and has none: the page runs ``totp.enrol`` and then ``give_code`` with the
  first code, which confirms the enrolment).

Nothing here logs, and no ledger event is written for a sign-in: events are
the trail of what was done with residents' data, and the HTTP layer keeps
the access log. The login never leaves this module in any message.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from vault.core.config import WebSessionSettings
from vault.core.errors import InvalidInput, Unauthenticated
from vault.identity import logins, passwords, totp, web_sessions
from vault.keys.keys import KeyStore
from vault.storage.models import Principal

WRONG = "The login or password is wrong."
#: Wrong TOTP codes a half-signed-in session may give before it ends (the password is then needed again).
MAX_CODE_FAILURES = 5

DONE, CODE, ENROL = "done", "code", "enrol"


@dataclass(frozen=True)
class SignIn:
    """A session opened by a good password; ``token`` goes in the cookie, once."""

    principal_id: str
    role: str
    token: str
    second_factor: str  # DONE, CODE or ENROL


@dataclass(frozen=True)
class CodeResult:
    """What a TOTP code did: ``token`` is the session's new cookie token when it was accepted."""

    accepted: bool
    token: str | None = None
    session_ended: bool = False  # too many wrong codes: sign in again


def _second_factor(row: Principal) -> str:
    if totp.is_enabled(row):
        return CODE
    return ENROL if totp.required_for(row.role) else DONE


def sign_in(
    session: Session, keys: KeyStore, *, login: str, password: str, now: datetime, policy: WebSessionSettings
) -> SignIn:
    """Check a login and password and open a session, or ``Unauthenticated`` (one message, one cost)."""
    try:
        row = logins.find_principal(session, keys, login)
    except InvalidInput:
        row = None
    if row is None or row.password_hash is None:
        passwords.verify_dummy(password if isinstance(password, str) else "")
        raise Unauthenticated(WRONG)
    if not passwords.verify_password(row.password_hash, password):
        raise Unauthenticated(WRONG)
    if passwords.needs_rehash(row.password_hash):
        row.password_hash = passwords.hash_password(password)
    step = _second_factor(row)
    token = web_sessions.start(session, row.id, second_factor_done=step == DONE, now=now, policy=policy)
    return SignIn(principal_id=row.id, role=row.role, token=token, second_factor=step)


def give_code(
    session: Session, keys: KeyStore, token: str, code: str, *, now: datetime, policy: WebSessionSettings
) -> CodeResult:
    """Finish a sign-in with a TOTP code: the session gets its second factor and a new token.

    For a principal enrolling (``ENROL``: the page called ``totp.enrol``),
    the code confirms the enrolment. A wrong code is counted, and the
    session ends at ``MAX_CODE_FAILURES``; the result is returned, not
    raised, so that the count is committed with the caller's transaction.
    A session that already has its second factor is ``Unauthenticated``
    here: nothing to finish.
    """
    info = web_sessions.check(session, token, now=now, policy=policy, require_second_factor=False)
    if info.second_factor_done:
        raise Unauthenticated("This session is already signed in.")
    row = session.get(Principal, info.principal_id)
    if row is None:
        raise Unauthenticated(web_sessions.ENDED)
    if totp.is_pending(row):
        accepted = totp.confirm_enrolment(session, keys, row.id, code, now=now)
    else:
        accepted = totp.verify(session, keys, row.id, code, now=now)
    if not accepted:
        ended = web_sessions.record_second_factor_failure(session, info, now=now, limit=MAX_CODE_FAILURES)
        return CodeResult(accepted=False, session_ended=ended)
    return CodeResult(accepted=True, token=web_sessions.rotate_token(session, info, now=now, second_factor_done=True))
