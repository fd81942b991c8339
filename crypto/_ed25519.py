"""Ed25519 primitives (RFC 8032, PureEdDSA) on PyCryptodome: the only module that touches them.

Callers use ``crypto.issuer``. Every check here raises ``SignatureError`` or
``KeyringError`` and never returns ``False``.
"""

from Cryptodome.PublicKey import ECC
from Cryptodome.Signature import eddsa

from crypto.errors import KeyringError, SignatureError

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
# The order of the prime-order subgroup (RFC 8032, section 5.1: L).
_L = 2**252 + 27742317777372353535851937790883648493
_COFACTOR = 8
_MAX_PEM = 4096
_PKCS8_LABEL = b"-----BEGIN PRIVATE KEY-----"  # unencrypted PKCS#8 only

PrivateKey = ECC.EccKey


def _public(raw: bytes) -> ECC.EccKey:
    """A public key from its 32-byte encoding; not the encoding of a point, or a point of small order, is refused."""
    if not isinstance(raw, bytes) or len(raw) != PUBLIC_KEY_SIZE:
        raise KeyringError(f"an Ed25519 public key has {PUBLIC_KEY_SIZE} bytes")
    try:
        key = eddsa.import_public_key(raw)
    except (ValueError, TypeError):
        raise KeyringError("not the encoding of an Ed25519 public key") from None
    # A key of small order (the identity, or one of the torsion points) verifies signatures
    # that commit to nothing: RFC 8032 does not forbid it, a registry must.
    if (key.pointQ * _COFACTOR).is_point_at_infinity():
        raise KeyringError("an Ed25519 public key of small order")
    return key


def check_public_key(raw: bytes) -> None:
    _public(raw)


def generate() -> ECC.EccKey:
    return ECC.generate(curve="ed25519")


def from_seed(seed: bytes) -> ECC.EccKey:
    """The key of a 32-byte RFC 8032 secret (for test vectors)."""
    if not isinstance(seed, bytes) or len(seed) != 32:
        raise KeyringError("an Ed25519 secret has 32 bytes")
    return eddsa.import_private_key(seed)


def from_pem(pem: bytes) -> ECC.EccKey:
    """An Ed25519 private key from PKCS#8 PEM (unencrypted)."""
    if not isinstance(pem, bytes) or len(pem) > _MAX_PEM or not pem.lstrip().startswith(_PKCS8_LABEL):
        raise KeyringError("not an Ed25519 private key in PKCS#8 PEM")
    try:
        key = ECC.import_key(pem)
    except (ValueError, TypeError, IndexError):
        raise KeyringError("not an Ed25519 private key in PKCS#8 PEM") from None
    if key.curve != "Ed25519" or not key.has_private():
        raise KeyringError("not an Ed25519 private key in PKCS#8 PEM")
    return key


def to_pem(key: ECC.EccKey) -> bytes:
    pem: str = key.export_key(format="PEM")  # PKCS#8 "PRIVATE KEY"
    return pem.encode("ascii")


def public_bytes(key: ECC.EccKey) -> bytes:
    raw: bytes = key.public_key().export_key(format="raw")
    return raw


def sign(key: ECC.EccKey, message: bytes) -> bytes:
    signature: bytes = eddsa.new(key, "rfc8032").sign(message)
    return signature


def verify(public: bytes, message: bytes, signature: bytes) -> None:
    """RFC 8032 verification, with the encoding checks of section 5.1.7 (S < L) done here too."""
    if not isinstance(signature, bytes) or len(signature) != SIGNATURE_SIZE:
        raise SignatureError(f"an Ed25519 signature has {SIGNATURE_SIZE} bytes")
    if int.from_bytes(signature[32:], "little") >= _L:
        raise SignatureError("the signature is not in canonical form")
    try:
        key = _public(public)
    except KeyringError as exc:
        raise SignatureError(str(exc)) from None
    try:
        eddsa.new(key, "rfc8032").verify(message, signature)
    except ValueError:
        raise SignatureError("the signature does not verify") from None
