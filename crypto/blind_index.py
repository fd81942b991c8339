"""Blind indices: keyed hashes that let a sealed value be found by exact match.

A login is personal data (often an e-mail address), so it is sealed like a
name; to find a principal by the login someone types, the vault also stores
``HMAC-SHA256(index key, normalised login)``. Without the index key the
column is a list of random-looking digests: no dictionary of e-mail
addresses can be run against a stolen database.

The index key of master key version ``v`` is
``HKDF-SHA256(ikm = master key v, salt = 32 zero bytes, info = "civicvault/blind-index/v1" 0x00 purpose)``
(RFC 5869), so it changes with the master key and a rotation re-indexes.
The purpose (``login``, ``pseudonym``) keeps indices of different kinds of
value apart.

A **pairwise pseudonym** names a resident to one requester in an
attestation (docs/attestations.md, "The credential"):
``urn:civicvault:pseudonym:`` + base32 (RFC 4648, lowercase, no padding) of
the first 20 bytes of ``HMAC-SHA256(key, "civicvault/pseudonym/v1" 0x00
subject id 0x00 requester id)``, the key being the index key of purpose
``pseudonym``. The same resident and requester always get the same
pseudonym (under one master key version); without the key, two requesters'
pseudonyms of one resident cannot be linked.
"""

import base64
import hashlib
import hmac

from crypto.keyring import Keyring, hkdf_sha256

INDEX_INFO = b"civicvault/blind-index/v1\x00"
PSEUDONYM_PURPOSE = "pseudonym"
PSEUDONYM_LABEL = b"civicvault/pseudonym/v1"
PSEUDONYM_PREFIX = "urn:civicvault:pseudonym:"
PSEUDONYM_BYTES = 20
_ZERO_SALT = bytes(32)


def blind_index_key(keyring: Keyring, version: int, *, purpose: str) -> bytes:
    """The index key derived from master key ``version`` for ``purpose``; ``KeyringError`` if unknown."""
    if not purpose or not purpose.isascii():
        raise ValueError("a blind index purpose is a non-empty ASCII word")
    return hkdf_sha256(keyring.key(version), salt=_ZERO_SALT, info=INDEX_INFO + purpose.encode("ascii"))


def blind_index(key: bytes, value: bytes) -> bytes:
    """HMAC-SHA256 of ``value`` under an index key (32 bytes)."""
    return hmac.new(key, value, hashlib.sha256).digest()


def pairwise_pseudonym(key: bytes, *, subject_id: str, requester_id: str) -> str:
    """The resident ``subject_id``'s pseudonym for ``requester_id`` under a ``pseudonym`` index key."""
    for name, value in (("subject_id", subject_id), ("requester_id", requester_id)):
        if not value or "\x00" in value:
            raise ValueError(f"{name} must be a non-empty string without NUL")
    message = PSEUDONYM_LABEL + b"\x00" + subject_id.encode("utf-8") + b"\x00" + requester_id.encode("utf-8")
    digest = hmac.new(key, message, hashlib.sha256).digest()[:PSEUDONYM_BYTES]
    return PSEUDONYM_PREFIX + base64.b32encode(digest).decode("ascii").rstrip("=").lower()
