"""Raw BLS12-381 signatures, the only module that imports py_ecc.

The IETF BLS signature draft's proof-of-possession scheme with minimal-size
public keys (48-byte G1 keys, 96-byte G2 signatures), as py-ecc implements
it. py-ecc answers malformed input with assorted exceptions or ``False``;
every check here returns a plain bool, and ``crypto.bls`` turns ``False``
into an exception.

py-ecc builds its curve tables when imported, which takes most of a second;
it is imported on the first signature or check, not with this module, so that
whatever only imports ``crypto`` (the command line's ``--help``, a principal
listing) never pays for it.
"""

from collections.abc import Callable, Sequence
from functools import cache
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from eth_typing import BLSPubkey, BLSSignature
    from py_ecc.bls.ciphersuites import G2ProofOfPossession

SECRET_SIZE = 32
PUBLIC_KEY_SIZE = 48
SIGNATURE_SIZE = 96


@cache
def _scheme() -> "type[G2ProofOfPossession]":
    from py_ecc.bls.ciphersuites import G2ProofOfPossession

    return G2ProofOfPossession


def secret_from_seed(seed: bytes) -> int:
    return _scheme().KeyGen(seed)


def public_key(secret: int) -> bytes:
    return _scheme().SkToPk(secret)


def sign(secret: int, message: bytes) -> bytes:
    return _scheme().Sign(secret, message)


def prove_possession(secret: int) -> bytes:
    return _scheme().PopProve(secret)


def _checked(check: Callable[..., object], *args: object) -> bool:
    try:
        return bool(check(*args))
    except Exception:  # py-ecc raises many types for malformed points; all mean "invalid"
        return False


def verify(public: bytes, message: bytes, signature: bytes) -> bool:
    return _checked(_scheme().Verify, public, message, signature)


def verify_possession(public: bytes, proof: bytes) -> bool:
    return _checked(_scheme().PopVerify, public, proof)


def aggregate(signatures: list[bytes]) -> bytes:
    # eth_typing's BLSSignature is a NewType of bytes: the bytes are used as they are.
    return _scheme().Aggregate(cast("Sequence[BLSSignature]", signatures))


def fast_aggregate_verify(publics: list[bytes], message: bytes, signature: bytes) -> bool:
    return _checked(_scheme().FastAggregateVerify, cast("Sequence[BLSPubkey]", publics), message, signature)
