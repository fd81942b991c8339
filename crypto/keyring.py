"""Versioned master keys and key wrapping.

The key hierarchy is master key -> subject key -> record data. A ``Keyring``
holds every known master key version: it seals with the newest and opens with
whichever version an envelope names, so rotating the master key only re-wraps
subject keys. Subject keys are wrapped as envelopes whose associated data binds
them to their subject and version.
"""

import hashlib
import hmac
import os
from collections.abc import Mapping

from crypto import envelope
from crypto._aesgcm import KEY_SIZE
from crypto.aad import subject_key_aad
from crypto.errors import InvalidEnvelope, KeyringError

SECRET_SIZE = 32
BIND_INFO = b"civicvault/subject-binding/v1\x00"


def hkdf_sha256(ikm: bytes, *, salt: bytes, info: bytes, length: int = KEY_SIZE) -> bytes:
    """HKDF with SHA-256 (RFC 5869, sections 2.2 and 2.3)."""
    if not 0 < length <= 255 * 32:
        raise KeyringError("HKDF output length out of range")
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()  # 2.2 extract
    out, block, counter = b"", b"", 1
    while len(out) < length:  # 2.3 expand: T(i) = HMAC(PRK, T(i-1) || info || i)
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def new_key() -> bytes:
    """A fresh random 256-bit key."""
    return os.urandom(KEY_SIZE)


class Keyring:
    """Immutable map of key version (1, 2, ...) to 32-byte key."""

    __slots__ = ("_keys",)

    def __init__(self, keys: Mapping[int, bytes]) -> None:
        if not keys:
            raise KeyringError("a keyring needs at least one key")
        checked: dict[int, bytes] = {}
        for version, key in keys.items():
            if type(version) is not int or not 1 <= version <= envelope.MAX_KEY_ID:
                raise KeyringError(f"key version must be an integer from 1 to 2^32-1, not {version!r}")
            if not isinstance(key, bytes) or len(key) != KEY_SIZE:
                raise KeyringError(f"key version {version} is not 32 bytes")
            checked[version] = key
        self._keys = dict(sorted(checked.items()))

    @property
    def current_version(self) -> int:
        return max(self._keys)

    @property
    def versions(self) -> tuple[int, ...]:
        return tuple(self._keys)

    def key(self, version: int) -> bytes:
        try:
            return self._keys[version]
        except KeyError:
            raise KeyringError(f"no key with version {version}") from None

    def rotated(self, key: bytes | None = None) -> "Keyring":
        """A new keyring with one more version, the new current key."""
        keys = dict(self._keys)
        keys[self.current_version + 1] = new_key() if key is None else key
        return Keyring(keys)

    def seal(self, plaintext: bytes, *, aad: bytes) -> bytes:
        version = self.current_version
        return envelope.seal(self._keys[version], plaintext, key_id=version, aad=aad)

    def unseal(self, sealed: bytes, *, aad: bytes) -> bytes:
        key = self._keys.get(envelope.envelope_key_id(sealed))
        if key is None:
            raise InvalidEnvelope()
        return envelope.unseal(key, sealed, aad=aad)

    def bound_to(self, secret: bytes, *, subject_id: str) -> "Keyring":
        """The keyring whose version ``v`` key is HKDF(master v, secret, subject).

        Sealing under a bound keyring needs the master key *and* the subject's
        secret: destroying the secret (crypto-shredding) leaves every copy of
        what was sealed under it unopenable, database backups included, while
        the master key stays in service for everyone else.
        """
        if not isinstance(secret, bytes) or len(secret) != SECRET_SIZE:
            raise KeyringError("a subject secret is 32 bytes")
        info = BIND_INFO + subject_id.encode("utf-8")
        return Keyring({v: hkdf_sha256(k, salt=secret, info=info) for v, k in self._keys.items()})

    def __repr__(self) -> str:  # never print key material
        return f"Keyring(versions={list(self._keys)})"


def wrap_key(keyring: Keyring, key: bytes, *, subject_id: str, version: int) -> bytes:
    """Seal a subject key under the keyring's current master key."""
    if len(key) != KEY_SIZE:
        raise KeyringError("only 32-byte keys are wrapped")
    return keyring.seal(key, aad=subject_key_aad(subject_id=subject_id, version=version))


def unwrap_key(keyring: Keyring, wrapped: bytes, *, subject_id: str, version: int) -> bytes:
    """Open a wrapped subject key; ``InvalidEnvelope`` on any failure."""
    key = keyring.unseal(wrapped, aad=subject_key_aad(subject_id=subject_id, version=version))
    if len(key) != KEY_SIZE:
        raise InvalidEnvelope()
    return key
