"""Pure cryptographic recipes for CivicVault.

Callers use the verbs exported here; the raw primitives live in private
modules (``_aesgcm``), the only ones that import ``Cryptodome``. Nothing in
this package does I/O, reads the clock or keeps global state.
"""

from crypto.aad import principal_name_aad, record_aad, sealed_text_aad, subject_key_aad
from crypto.envelope import ENVELOPE_VERSION, envelope_key_id, seal, unseal
from crypto.errors import CryptoError, InvalidEnvelope, KeyringError
from crypto.keyring import KEY_SIZE, Keyring, new_key, unwrap_key, wrap_key

__all__ = [
    "ENVELOPE_VERSION",
    "KEY_SIZE",
    "CryptoError",
    "InvalidEnvelope",
    "KeyringError",
    "Keyring",
    "envelope_key_id",
    "new_key",
    "principal_name_aad",
    "record_aad",
    "seal",
    "sealed_text_aad",
    "subject_key_aad",
    "unseal",
    "unwrap_key",
    "wrap_key",
]
