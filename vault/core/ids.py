"""Opaque random identifiers and API tokens.

Ids carry a short prefix naming the kind of object (for people reading logs)
and 128 random bits in lowercase base32; they reveal nothing else. The
alphabet (``a-z``, ``2-7``, ``-``) keeps them valid FHIR ids and URL path
segments. Tokens carry 256 random bits.
"""

import base64
import hashlib
import secrets


def new_id(prefix: str) -> str:
    random = base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=").lower()
    return f"{prefix}-{random}"


def new_token() -> str:
    return "cvt_" + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


_ID_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
MAX_ID_LENGTH = 40


def is_well_formed_id(value: str) -> bool:
    """True for strings that could be one of our ids; checked before any query."""
    return 0 < len(value) <= MAX_ID_LENGTH and _ID_ALPHABET.issuperset(value)
