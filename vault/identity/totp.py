"""The TOTP second factor (RFC 6238; pyotp): enrolment with a QR code, verification without replay.

Who must have it: ``REQUIRED_ROLES`` (clinic, landlord, agency, compliance and admin
accounts, who see other people's data or run the vault); residents may turn
it on. Witnesses are programs that use their API token: give them no login.

- ``enrol`` makes a random 160-bit secret, stores it sealed under the master
  keyring (crypto.totp_secret_aad) as *pending*, and returns it as text, as
  an ``otpauth://`` URI and as that URI's QR code in SVG (segno). A principal
  whose TOTP is already enabled cannot enrol again: otherwise a password
  alone would replace the second factor. ``reset`` (an operator's act) clears it.
- ``confirm_enrolment`` enables the pending secret once a first code from it
  checks, so nobody ends up with a secret their app does not have.
- ``verify`` checks a 6-digit code with a window of one 30-second step either
  side (clock drift) and accepts each step's code at most once: the newest
  step accepted is stored (``totp_last_step``) and only a later one passes,
  by a conditional UPDATE, so two requests racing with one code get one yes.
"""

import hmac
from dataclasses import dataclass, field
from datetime import datetime

import pyotp
from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from vault.core.errors import Conflict, InvalidInput, NotFound
from vault.core.ids import is_well_formed_id
from vault.identity import logins, web_sessions
from vault.keys.keys import KeyStore
from vault.storage.db import rowcount
from vault.storage.models import Principal

#: Roles that must give a TOTP code at every sign-in. A constant, to be made a setting if a deployment needs it.
REQUIRED_ROLES = frozenset({"clinic", "landlord", "agency", "compliance", "admin"})
ISSUER = "CivicVault"
STEP_SECONDS = 30
DIGITS = 6
WINDOW = 1  # steps accepted either side of now
SECRET_BYTES = 20  # 160 bits, RFC 4226's recommended length


@dataclass(frozen=True)
class Enrolment:
    """What the enrolment page shows once: the secret as text, its URI, and the URI as a QR code."""

    secret: str = field(repr=False)  # base32, for typing into an app by hand
    uri: str = field(repr=False)  # otpauth://totp/CivicVault:<login>?secret=...&issuer=CivicVault
    qr_svg: str = field(repr=False)  # an inline <svg> element


def required_for(role: str) -> bool:
    """Whether a role must use TOTP."""
    return role in REQUIRED_ROLES


def is_enabled(row: Principal) -> bool:
    return row.totp_enabled_at is not None and row.totp_secret_sealed is not None


def is_pending(row: Principal) -> bool:
    """An enrolment started and not yet confirmed."""
    return row.totp_enabled_at is None and row.totp_secret_sealed is not None


def _principal(session: Session, principal_id: str) -> Principal:
    row = session.get(Principal, principal_id) if is_well_formed_id(principal_id) else None
    if row is None or row.erased_at is not None:
        raise NotFound(f"No principal {principal_id!r}.")
    return row


def qr_svg(uri: str) -> str:
    """The URI as a QR code, an inline SVG element (error correction M, 4 px modules)."""
    import segno  # only the enrolment page needs it

    return str(segno.make(uri, error="m", micro=False).svg_inline(scale=4, title="TOTP enrolment"))


def enrol(session: Session, keys: KeyStore, principal_id: str, *, issuer: str = ISSUER) -> Enrolment:
    """Start (or restart) an enrolment: a new pending secret, returned once; ``Conflict`` if TOTP is enabled."""
    row = _principal(session, principal_id)
    if is_enabled(row):
        raise Conflict("Two-step sign-in is already on; an operator must reset it before a new enrolment.")
    secret = pyotp.random_base32(length=SECRET_BYTES * 8 // 5)
    row.totp_secret_sealed = keys.seal_totp_secret(row.id, secret.encode("ascii"))
    row.totp_enabled_at = None
    row.totp_last_step = None
    session.flush()
    account = logins.open_login(keys, row) or row.id
    uri = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(name=account, issuer_name=issuer)
    return Enrolment(secret=secret, uri=uri, qr_svg=qr_svg(uri))


def _clean_code(code: str) -> str | None:
    """Six ASCII digits, spaces allowed between them (as apps show them); None for anything else."""
    if not isinstance(code, str) or len(code) > 32:
        return None
    digits = code.replace(" ", "").strip()
    return digits if len(digits) == DIGITS and digits.isascii() and digits.isdigit() else None


def _matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step within the window whose code is ``code``, newest first; None if none."""
    generator = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    current = int(now.timestamp()) // STEP_SECONDS
    found = None
    for step in range(current + WINDOW, current - WINDOW - 1, -1):
        # Every step is compared, in constant time, whichever matches: the time taken says nothing.
        if hmac.compare_digest(generator.generate_otp(step), code) and found is None:
            found = step
    return found


def _accept(session: Session, keys: KeyStore, row: Principal, code: str, *, now: datetime) -> bool:
    """Check a code against the stored secret and take its step, once; the step must be newer than the last."""
    digits = _clean_code(code)
    if digits is None or row.totp_secret_sealed is None:
        return False
    secret = keys.open_totp_secret(row.id, row.totp_secret_sealed).decode("ascii")
    step = _matching_step(secret, digits, now)
    if step is None:
        return False
    taken = rowcount(
        session.execute(
            update(Principal)
            .where(
                Principal.id == row.id,
                Principal.totp_secret_sealed == row.totp_secret_sealed,
                or_(Principal.totp_last_step.is_(None), Principal.totp_last_step < step),
            )
            .values(totp_last_step=step)
            .execution_options(synchronize_session=False)
        )
    )
    if taken != 1:
        return False  # this step's code (or a later one) was used already: a replay
    session.expire(row, ["totp_last_step"])
    return True


def confirm_enrolment(session: Session, keys: KeyStore, principal_id: str, code: str, *, now: datetime) -> bool:
    """Enable a pending enrolment if ``code`` checks against its secret; False (nothing changed) if not."""
    row = _principal(session, principal_id)
    if not is_pending(row):
        raise InvalidInput("There is no two-step enrolment waiting for a code.")
    if not _accept(session, keys, row, code, now=now):
        return False
    row.totp_enabled_at = now
    session.flush()
    return True


def verify(session: Session, keys: KeyStore, principal_id: str, code: str, *, now: datetime) -> bool:
    """Whether ``code`` is a fresh, unused code of the principal's enabled TOTP secret."""
    row = _principal(session, principal_id)
    if not is_enabled(row):
        return False
    return _accept(session, keys, row, code, now=now)


def reset(session: Session, principal_id: str, *, now: datetime) -> None:
    """Forget a principal's TOTP secret (a lost phone) and sign them out everywhere; they enrol again."""
    row = _principal(session, principal_id)
    row.totp_secret_sealed = None
    row.totp_enabled_at = None
    row.totp_last_step = None
    session.flush()
    web_sessions.sign_out_everywhere(session, row.id, now=now)
