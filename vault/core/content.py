"""Record content: a JSON object, checked and encoded canonically before sealing.

Checks run before anything is sealed: the content must be a JSON object of
bounded nesting depth and size, with finite numbers only. The canonical
encoding (sorted keys, no insignificant white space, UTF-8) makes the sealed
bytes independent of how a client happened to format its request.
"""

import json
import unicodedata
from typing import Any

from vault.core.errors import InvalidInput

MAX_DEPTH = 32
MAX_CONTENT_BYTES = 768 * 1024
MAX_TITLE_LENGTH = 200


def _depth_ok(value: Any) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return False
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return True


def encode_content(content: Any) -> bytes:
    if not isinstance(content, dict):
        raise InvalidInput("A record's content must be a JSON object.")
    if not _depth_ok(content):
        raise InvalidInput(f"A record's content may be nested at most {MAX_DEPTH} levels deep.")
    try:
        data = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        encoded = data.encode("utf-8")  # a lone surrogate ("\ud800") cannot be encoded
    except (TypeError, ValueError):
        raise InvalidInput("A record's content must be plain JSON with finite numbers and valid Unicode.") from None
    if len(encoded) > MAX_CONTENT_BYTES:
        raise InvalidInput(f"A record's content may be at most {MAX_CONTENT_BYTES} bytes once encoded.")
    return encoded


def decode_content(data: bytes) -> dict:
    return json.loads(data.decode("utf-8"))


def check_text(value: str, *, what: str, max_length: int) -> str:
    """Strip a one-line text and refuse what cannot be stored or shown safely."""
    value = value.strip()
    if len(value) > max_length:
        raise InvalidInput(f"{what} may have at most {max_length} characters.")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise InvalidInput(f"{what} must not contain control characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{what} must be valid Unicode.") from None
    return value


def check_title(title: str | None) -> str | None:
    """A title, or ``None`` for none (an empty title counts as none)."""
    if title is None:
        return None
    return check_text(title, what="A title", max_length=MAX_TITLE_LENGTH) or None


# An e-mail address's limit (RFC 5321, 4.5.3.1.3: a path of 256 octets with its brackets).
MAX_LOGIN_LENGTH = 254
# Before normalising: NFKC expands a character to at most 18, so longer input can never fit.
_MAX_RAW_LENGTH = 4 * MAX_LOGIN_LENGTH
# Unicode general categories refused in a login: controls, format characters (zero-width
# joiners, direction marks), surrogates, private use, unassigned; and every kind of space.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})


def normalise_login(login: str) -> str:
    """The normalised form of a login (what its blind index is computed over), or ``InvalidInput``.

    NFKC, case folding, NFKC again (folding can undo NFKC), stripped: the
    variants a person takes for one login are one (vault/identity/logins.py).
    Messages never repeat the login.
    """
    if not isinstance(login, str) or len(login) > _MAX_RAW_LENGTH:
        raise InvalidInput(f"A login may have at most {MAX_LOGIN_LENGTH} characters.")
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", login).casefold()).strip()
    if not folded:
        raise InvalidInput("A login must not be empty.")
    if len(folded) > MAX_LOGIN_LENGTH:
        raise InvalidInput(f"A login may have at most {MAX_LOGIN_LENGTH} characters.")
    if any(ch.isspace() or unicodedata.category(ch) in _REFUSED_CATEGORIES for ch in folded):
        raise InvalidInput("A login must not contain spaces, control or invisible characters.")
    return folded
