"""Blind indices: keyed hashes that let a sealed value be found by exact match.

A login is personal data (often an e-mail address), so it is sealed like a
name; to find a principal by the login someone types, the vault also stores
``HMAC-SHA256(index key, normalised login)``. Without the index key the
column is a list of random-looking digests: no dictionary of e-mail
addresses can be run against a stolen database.

The index key of master key version ``v`` is
``HKDF-SHA256(ikm = master key v, salt = 32 zero bytes, info = "civicvault/blind-index/v1" 0x00 purpose)``
(RFC 5869), so it changes with the master key and a rotation re-indexes.
The purpose (``login``) keeps indices of different kinds of value apart.
"""

import hashlib
import hmac

from crypto.keyring import Keyring, hkdf_sha256

INDEX_INFO = b"civicvault/blind-index/v1\x00"
_ZERO_SALT = bytes(32)


def blind_index_key(keyring: Keyring, version: int, *, purpose: str) -> bytes:
    """The index key derived from master key ``version`` for ``purpose``; ``KeyringError`` if unknown."""
    if not purpose or not purpose.isascii():
        raise ValueError("a blind index purpose is a non-empty ASCII word")
    return hkdf_sha256(keyring.key(version), salt=_ZERO_SALT, info=INDEX_INFO + purpose.encode("ascii"))


def blind_index(key: bytes, value: bytes) -> bytes:
    """HMAC-SHA256 of ``value`` under an index key (32 bytes)."""
    return hmac.new(key, value, hashlib.sha256).digest()
