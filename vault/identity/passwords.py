"""Passwords: the policy, and argon2id hashes (argon2-cffi).

Policy (NIST SP 800-63B, 5.1.1.2, "memorized secrets"):

- at least ``MIN_LENGTH`` (12) and at most ``MAX_LENGTH`` (128) characters,
  counted after Unicode NFKC normalisation, which is also what is hashed, so
  a password typed with a different keyboard's composed characters still
  matches;
- every printable character is allowed, spaces included; no composition rules
  (no "a digit and a capital"), no periodic expiry;
- refused: control characters, a password equal to the login (case
  ignored), one character repeated, and a short list of the commonest long
  passwords. A deployment that wants a check against a breach corpus adds it
  in front of ``set_password``.

Hashes use argon2-cffi's ``PasswordHasher`` defaults: argon2id, RFC 9106's
second recommended profile (t=3, 64 MiB, p=4), a 16-byte random salt, stored
as the PHC string (``$argon2id$v=19$m=65536,t=3,p=4$...``). ``needs_rehash``
tells the sign-in to rehash a password whose hash has older parameters.

``verify_dummy`` spends what a real check spends, for a login that has no
password: a sign-in costs the same whether the login exists or not.
"""

import contextlib
import functools
import secrets
import unicodedata
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from vault.core.errors import InvalidInput, NotFound
from vault.core.ids import is_well_formed_id
from vault.identity import logins, web_sessions
from vault.keys.keys import KeyStore
from vault.storage.models import Principal

MIN_LENGTH = 12
MAX_LENGTH = 128
# The commonest passwords of 12 characters or more in public breach lists: refused outright.
COMMON = frozenset(
    {
        "123456789012",
        "1234567890123",
        "12345678901234",
        "123123123123",
        "password1234",
        "password12345",
        "password123456",
        "passwordpassword",
        "qwertyuiop12",
        "qwertyuiop123",
        "qwertyuiopasdfghjkl",
        "1q2w3e4r5t6y",
        "1qaz2wsx3edc",
        "iloveyou1234",
        "abcdefghijkl",
        "abc123abc123",
        "welcome12345",
        "letmein12345",
        "administrator",
        "changeme1234",
    }
)

_hasher = PasswordHasher()


def hasher() -> PasswordHasher:
    """The hasher in use (tests swap in cheaper parameters with ``use_hasher``)."""
    return _hasher


def use_hasher(new: PasswordHasher) -> PasswordHasher:
    """Replace the hasher; returns the previous one. For tests: production keeps the defaults."""
    global _hasher
    previous, _hasher = _hasher, new
    return previous


def _prepared(password: str) -> str:
    """The NFKC form, so equivalent spellings of one password match."""
    return unicodedata.normalize("NFKC", password)


def _secret(password: str) -> bytes:
    """What is hashed: UTF-8 of the NFKC form. What cannot be encoded (a lone surrogate, which the
    policy never lets into a stored password) is replaced, so that it is checked, at the same cost,
    and fails, rather than raising."""
    return _prepared(password).encode("utf-8", "replace")


def check_password(password: str, *, login: str | None = None) -> str:
    """The password if the policy accepts it, else ``InvalidInput`` naming the rule (never the password)."""
    if not isinstance(password, str) or len(password) > 4 * MAX_LENGTH:
        raise InvalidInput(f"A password may have at most {MAX_LENGTH} characters.")
    prepared = _prepared(password)
    if len(prepared) < MIN_LENGTH:
        raise InvalidInput(f"A password needs at least {MIN_LENGTH} characters.")
    if len(prepared) > MAX_LENGTH:
        raise InvalidInput(f"A password may have at most {MAX_LENGTH} characters.")
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in prepared):
        raise InvalidInput("A password must not contain control characters.")
    folded = prepared.casefold()
    if login is not None and folded.strip() == _prepared(login).casefold().strip():
        raise InvalidInput("A password must not be the login.")
    if len(set(folded)) == 1 or folded in COMMON:
        raise InvalidInput("This password is too easy to guess; choose another.")
    return password


def hash_password(password: str) -> str:
    """The argon2id PHC string of a password that passed ``check_password``."""
    return hasher().hash(_secret(password))


def verify_password(stored: str, password: str) -> bool:
    """Whether ``password`` matches the stored hash; False for any malformed hash or oversized input."""
    if not isinstance(password, str) or len(password) > 4 * MAX_LENGTH:
        verify_dummy()  # the same cost as a real check
        return False
    try:
        return hasher().verify(stored, _secret(password))
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def _dummy_hash(time_cost: int, memory_cost: int, parallelism: int) -> str:
    """A hash of a random password with the hasher's parameters, made once per process."""
    return hasher().hash(secrets.token_urlsafe(24))


def verify_dummy(password: str = "") -> None:
    """Spend what checking a password costs, against a hash nobody's password matches."""
    current = hasher()
    dummy = _dummy_hash(current.time_cost, current.memory_cost, current.parallelism)
    with contextlib.suppress(VerificationError, InvalidHashError):
        current.verify(dummy, _secret(password[:MAX_LENGTH]) if isinstance(password, str) else b"")


def warm_up() -> None:
    """Make the dummy hash now (a server calls this at start), so the first unknown login costs no more."""
    verify_dummy()


def needs_rehash(stored: str) -> bool:
    """Whether a stored hash was made with other parameters than the hasher's (rehash at the next sign-in)."""
    try:
        return hasher().check_needs_rehash(stored)
    except (InvalidHashError, ValueError):
        return True


def set_password(session: Session, keys: KeyStore, principal_id: str, password: str, *, now: datetime) -> None:
    """Check and store a new password for a principal with a login, and end its web sessions.

    A new password is what a person or an operator sets after a suspected
    compromise: every browser signed in with the old one is signed out.
    """
    row = session.get(Principal, principal_id) if is_well_formed_id(principal_id) else None
    if row is None or row.erased_at is not None:
        raise NotFound(f"No principal {principal_id!r}.")
    login = logins.open_login(keys, row)
    if login is None:
        raise InvalidInput("This principal has no login yet: give it one before a password.")
    check_password(password, login=login)
    row.password_hash = hash_password(password)
    session.flush()
    web_sessions.sign_out_everywhere(session, row.id, now=now)
