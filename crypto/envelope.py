"""Envelope sealing: AES-256-GCM in a small, versioned byte format.

Format version 1 (docs/envelope-format.md has the exact bytes)::

    offset  size  field
    0       1     format version, 0x01
    1       4     key id, unsigned big-endian (which key version sealed it)
    5       12    nonce, random
    17      n     ciphertext
    17+n    16    GCM tag

The 5-byte header is authenticated: the GCM associated data is
``header || context`` where ``context`` is supplied by the caller (see
``crypto.aad``). Every failure to open raises ``InvalidEnvelope`` and nothing
else.
"""

import os
import struct

from crypto import _aesgcm
from crypto.errors import InvalidEnvelope

ENVELOPE_VERSION = 1
_HEADER = struct.Struct(">BI")
HEADER_SIZE = _HEADER.size
OVERHEAD = HEADER_SIZE + _aesgcm.NONCE_SIZE + _aesgcm.TAG_SIZE
MAX_KEY_ID = 2**32 - 1


def seal(key: bytes, plaintext: bytes, *, key_id: int, aad: bytes) -> bytes:
    """Encrypt ``plaintext`` under ``key`` with a fresh random nonce."""
    return _seal_with_nonce(key, plaintext, key_id=key_id, aad=aad, nonce=os.urandom(_aesgcm.NONCE_SIZE))


def _seal_with_nonce(key: bytes, plaintext: bytes, *, key_id: int, aad: bytes, nonce: bytes) -> bytes:
    """Deterministic sealing for test vectors only: never reuse a nonce."""
    if not 0 <= key_id <= MAX_KEY_ID:
        raise ValueError("key id must fit in 32 bits")
    header = _HEADER.pack(ENVELOPE_VERSION, key_id)
    ciphertext, tag = _aesgcm.encrypt(key, nonce, plaintext, header + aad)
    return header + nonce + ciphertext + tag


def envelope_key_id(envelope: bytes) -> int:
    """The key id in an envelope's header (unauthenticated until opened)."""
    if not isinstance(envelope, (bytes, bytearray, memoryview)) or len(envelope) < OVERHEAD:
        raise InvalidEnvelope()
    version, key_id = _HEADER.unpack_from(envelope)
    if version != ENVELOPE_VERSION:
        raise InvalidEnvelope()
    return int(key_id)


def unseal(key: bytes, envelope: bytes, *, aad: bytes) -> bytes:
    """Open an envelope or raise ``InvalidEnvelope`` whatever went wrong."""
    envelope_key_id(envelope)  # type, length and version checks
    envelope = bytes(envelope)
    header = envelope[:HEADER_SIZE]
    nonce = envelope[HEADER_SIZE : HEADER_SIZE + _aesgcm.NONCE_SIZE]
    ciphertext = envelope[HEADER_SIZE + _aesgcm.NONCE_SIZE : -_aesgcm.TAG_SIZE]
    tag = envelope[-_aesgcm.TAG_SIZE :]
    try:
        return _aesgcm.decrypt(key, nonce, ciphertext, tag, header + aad)
    except (ValueError, TypeError):
        raise InvalidEnvelope() from None
