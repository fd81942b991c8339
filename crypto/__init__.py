"""Pure cryptographic recipes for CivicVault.

Callers use the verbs exported here; the raw primitives live in private
modules (``_aesgcm``, ``_bls``, ``_ed25519``), the only ones that import
``Cryptodome`` and ``py_ecc``. Issuers' Ed25519 signatures are in
``crypto.issuer``. BLS signatures (``crypto.bls``, ``crypto.checkpoint``) load py-ecc
on first use, not on import. Nothing in this package does I/O, reads the
clock or keeps state beyond that loaded library.
"""

from crypto._aesgcm import KEY_SIZE
from crypto.aad import (
    principal_login_aad,
    principal_name_aad,
    record_aad,
    sealed_text_aad,
    subject_key_aad,
    totp_secret_aad,
)
from crypto.blind_index import PSEUDONYM_PURPOSE, blind_index, blind_index_key, pairwise_pseudonym
from crypto.envelope import ENVELOPE_VERSION, envelope_key_id, seal, unseal
from crypto.errors import CryptoError, InvalidEnvelope, KeyringError, ProofError
from crypto.keyring import SECRET_SIZE, Keyring, hkdf_sha256, new_key, unwrap_key, wrap_key
from crypto.merkle import (
    EMPTY_ROOT,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    range_hash,
    root_from_inclusion_proof,
    root_from_leaves,
    root_of_stream,
    roots_from_consistency_proof,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "EMPTY_ROOT",
    "ProofError",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "range_hash",
    "root_from_inclusion_proof",
    "root_from_leaves",
    "root_of_stream",
    "roots_from_consistency_proof",
    "verify_consistency",
    "verify_inclusion",
    "ENVELOPE_VERSION",
    "KEY_SIZE",
    "CryptoError",
    "InvalidEnvelope",
    "KeyringError",
    "Keyring",
    "SECRET_SIZE",
    "hkdf_sha256",
    "envelope_key_id",
    "new_key",
    "blind_index",
    "blind_index_key",
    "pairwise_pseudonym",
    "PSEUDONYM_PURPOSE",
    "principal_login_aad",
    "principal_name_aad",
    "record_aad",
    "seal",
    "sealed_text_aad",
    "subject_key_aad",
    "totp_secret_aad",
    "unseal",
    "unwrap_key",
    "wrap_key",
]
