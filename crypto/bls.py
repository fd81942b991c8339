"""BLS12-381 signing keys and checks that raise (never return ``False``).

Proof-of-possession scheme: a public key is only trusted after its holder
proved possession of the secret (``verify_possession``), which rules out
rogue-key attacks on aggregate signatures. Several signers' signatures over
the same message aggregate into one 96-byte signature, checked against their
public keys in one pairing computation (``verify_aggregate``).
"""

import os

from crypto import _bls
from crypto.errors import SignatureError

PUBLIC_KEY_SIZE = _bls.PUBLIC_KEY_SIZE
SIGNATURE_SIZE = _bls.SIGNATURE_SIZE


class SigningKey:
    """A BLS secret key. ``repr`` never shows it."""

    __slots__ = ("_secret", "public_key")

    def __init__(self, seed: bytes) -> None:
        if not isinstance(seed, bytes) or len(seed) < 32:
            raise ValueError("a BLS key needs a seed of at least 32 bytes")
        self._secret = _bls.secret_from_seed(seed)
        self.public_key: bytes = _bls.public_key(self._secret)

    @classmethod
    def generate(cls) -> "SigningKey":
        return cls(os.urandom(32))

    def sign(self, message: bytes) -> bytes:
        return _bls.sign(self._secret, message)

    def prove_possession(self) -> bytes:
        return _bls.prove_possession(self._secret)

    def __repr__(self) -> str:
        return f"SigningKey(public_key={self.public_key.hex()[:16]}...)"


def _check_lengths(public: bytes, signature: bytes) -> None:
    if not isinstance(public, bytes) or len(public) != PUBLIC_KEY_SIZE:
        raise SignatureError(f"a BLS public key has {PUBLIC_KEY_SIZE} bytes")
    if not isinstance(signature, bytes) or len(signature) != SIGNATURE_SIZE:
        raise SignatureError(f"a BLS signature has {SIGNATURE_SIZE} bytes")


def verify_signature(public: bytes, message: bytes, signature: bytes) -> None:
    _check_lengths(public, signature)
    if not _bls.verify(public, message, signature):
        raise SignatureError("the signature does not verify")


def verify_possession(public: bytes, proof: bytes) -> None:
    _check_lengths(public, proof)
    if not _bls.verify_possession(public, proof):
        raise SignatureError("the proof of possession does not verify")


def aggregate(signatures: list[bytes]) -> bytes:
    if not signatures:
        raise ValueError("nothing to aggregate")
    return _bls.aggregate(signatures)


def verify_aggregate(publics: list[bytes], message: bytes, signature: bytes) -> None:
    """All ``publics`` signed ``message``; their keys must have proved possession."""
    if not publics:
        raise SignatureError("an aggregate signature needs at least one signer")
    for public in publics:
        _check_lengths(public, signature)
    if len(set(publics)) != len(publics):
        raise SignatureError("a signer appears twice")
    if not _bls.fast_aggregate_verify(publics, message, signature):
        raise SignatureError("the aggregate signature does not verify")
