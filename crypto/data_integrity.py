"""W3C Data Integrity proofs with the ``eddsa-jcs-2022`` cryptosuite, and Ed25519 ``did:key`` identifiers.

The recipe of "Data Integrity EdDSA Cryptosuites v1.0" (W3C Recommendation),
section 3.3, for a JSON document (a Verifiable Credential):

- **canonical form**: the JSON Canonicalization Scheme (RFC 8785), through
  the ``rfc8785`` library (Trail of Bits; it refuses what JCS cannot
  represent: non-finite numbers, integers beyond 2^53, lone surrogates);
- **proof configuration**: the proof's members without ``proofValue``, with
  the document's ``@context``;
- **hash data**: SHA-256(JCS(proof configuration)) || SHA-256(JCS(document
  without ``proof``)), 64 bytes;
- **signature**: Ed25519 (RFC 8032, pure) over the hash data, written as
  ``proofValue`` = ``"z"`` + base58btc(signature) (multibase).

``did:key`` (W3C CCG did:key v0.7) of an Ed25519 public key: ``did:key:z`` +
base58btc(0xED 0x01 || the 32-byte key); the verification method is
``did:key:<id>#<id>``.

``verify_proof`` raises ``ProofError`` for every failure (a missing or
foreign proof, a wrong cryptosuite or purpose, a context mismatch, a
malformed or wrong signature, another key) and returns nothing otherwise:
there is no boolean to forget to check.
"""

import hashlib
from typing import Any

import base58
import rfc8785

from crypto import _ed25519
from crypto.errors import CryptoError, ProofError

CRYPTOSUITE = "eddsa-jcs-2022"
PROOF_TYPE = "DataIntegrityProof"
ED25519_MULTICODEC = b"\xed\x01"
PUBLIC_KEY_SIZE = 32
SEED_SIZE = 32
SIGNATURE_SIZE = 64


def canonical(value: Any) -> bytes:
    """RFC 8785 (JCS) bytes of a JSON value; ``ProofError`` for one JCS cannot represent."""
    try:
        return bytes(rfc8785.dumps(value))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise ProofError(f"not canonicalizable JSON: {type(exc).__name__}") from None


# --- keys and did:key -----------------------------------------------------------------------------


def new_seed() -> bytes:
    """A new Ed25519 private key: 32 random bytes (RFC 8032's seed)."""
    seed: bytes = _ed25519.generate().seed
    return seed


def public_key(seed: bytes) -> bytes:
    """The 32-byte Ed25519 public key of a seed."""
    if not isinstance(seed, bytes) or len(seed) != SEED_SIZE:
        raise ProofError("an Ed25519 private key is 32 bytes")
    return _ed25519.public_bytes(_ed25519.from_seed(seed))


def multibase_key(public: bytes) -> str:
    """``z6Mk...``: the multibase (base58btc) multicodec Ed25519 public key, as in did:key and Multikey."""
    if len(public) != PUBLIC_KEY_SIZE:
        raise ProofError("an Ed25519 public key is 32 bytes")
    return "z" + base58.b58encode(ED25519_MULTICODEC + public).decode("ascii")


def did_key(public: bytes) -> str:
    return "did:key:" + multibase_key(public)


def verification_method(public: bytes) -> str:
    """``did:key:<id>#<id>``: the key as a Data Integrity proof names it."""
    key = multibase_key(public)
    return f"did:key:{key}#{key}"


def public_key_of(identifier: str) -> bytes:
    """The Ed25519 key of a ``did:key:z6Mk...`` (with or without its ``#fragment``) or a bare ``z6Mk...``."""
    if not isinstance(identifier, str) or len(identifier) > 200:
        raise ProofError("not an Ed25519 did:key")
    value = identifier.split("#", 1)[0]
    if value.startswith("did:key:"):
        value = value[len("did:key:") :]
    if "#" in identifier and identifier.split("#", 1)[1] != value:
        raise ProofError("the did:key fragment names another key")
    if not value.startswith("z"):
        raise ProofError("not an Ed25519 did:key")
    try:
        raw = base58.b58decode(value[1:])
    except ValueError:
        raise ProofError("not an Ed25519 did:key") from None
    if raw[:2] != ED25519_MULTICODEC or len(raw) != 2 + PUBLIC_KEY_SIZE:
        raise ProofError("not an Ed25519 did:key")
    return raw[2:]


# --- proofs -------------------------------------------------------------------------------------------


def _hash_data(document: dict[str, Any], proof_config: dict[str, Any]) -> bytes:
    return hashlib.sha256(canonical(proof_config)).digest() + hashlib.sha256(canonical(document)).digest()


def add_proof(
    document: dict[str, Any],
    seed: bytes,
    *,
    created: str,
    proof_purpose: str = "assertionMethod",
    method: str | None = None,
) -> dict[str, Any]:
    """A copy of ``document`` with an ``eddsa-jcs-2022`` proof by the key of ``seed``.

    ``method`` is the verification method (default: the key's did:key);
    ``created`` an XML Schema dateTime in UTC (``2026-11-30T10:00:00Z``).
    """
    if not isinstance(document, dict) or "proof" in document:
        raise ProofError("sign a JSON object without a proof")
    config: dict[str, Any] = {
        "type": PROOF_TYPE,
        "cryptosuite": CRYPTOSUITE,
        "created": created,
        "verificationMethod": method or verification_method(public_key(seed)),
        "proofPurpose": proof_purpose,
    }
    if "@context" in document:
        config["@context"] = document["@context"]
    if not isinstance(seed, bytes) or len(seed) != SEED_SIZE:
        raise ProofError("an Ed25519 private key is 32 bytes")
    signature = _ed25519.sign(_ed25519.from_seed(seed), _hash_data(document, config))
    proof = {**config, "proofValue": "z" + base58.b58encode(signature).decode("ascii")}
    return {**document, "proof": proof}


def _same_context(document: dict[str, Any], proof: dict[str, Any]) -> None:
    """The proof's ``@context``, if any, must be the document's.

    The Recommendation (section 3.3.2) accepts a document whose ``@context``
    merely begins with the proof's, and hashes it with the proof's; we
    require them equal, so a context appended after signing is refused
    rather than ignored.
    """
    if "@context" in proof and document.get("@context") != proof["@context"]:
        raise ProofError("the proof's @context is not the document's")


def verify_proof(
    document: dict[str, Any],
    public: bytes,
    *,
    proof_purpose: str = "assertionMethod",
    method: str | None = None,
) -> None:
    """Check ``document``'s ``eddsa-jcs-2022`` proof by the Ed25519 key ``public``; ``ProofError`` if anything is off.

    ``method``, when given, is the verification method the proof must name
    (for example the vault's published did:key); otherwise a did:key method
    must be the key ``public``.
    """
    if not isinstance(document, dict) or not isinstance(document.get("proof"), dict):
        raise ProofError("the document has no proof")
    proof = dict(document["proof"])
    unsecured = {name: value for name, value in document.items() if name != "proof"}
    if proof.get("type") != PROOF_TYPE or proof.get("cryptosuite") != CRYPTOSUITE:
        raise ProofError(f"not a {CRYPTOSUITE} Data Integrity proof")
    if proof.get("proofPurpose") != proof_purpose:
        raise ProofError(f"the proof's purpose is not {proof_purpose}")
    named = proof.get("verificationMethod")
    if not isinstance(named, str):
        raise ProofError("the proof names no verification method")
    if method is not None and named != method:
        raise ProofError("the proof names another verification method")
    if named.startswith("did:key:") and public_key_of(named) != public:
        raise ProofError("the proof names another key")
    value = proof.pop("proofValue", None)
    if not isinstance(value, str) or not value.startswith("z") or len(value) > 200:
        raise ProofError("the proof value is not a base58btc multibase signature")
    try:
        signature = base58.b58decode(value[1:])
    except ValueError:
        raise ProofError("the proof value is not a base58btc multibase signature") from None
    if len(signature) != SIGNATURE_SIZE or len(public) != PUBLIC_KEY_SIZE:
        raise ProofError("the signature or key has the wrong length")
    _same_context(unsecured, proof)
    try:
        _ed25519.verify(public, _hash_data(unsecured, proof), signature)
    except CryptoError:
        raise ProofError("the proof's signature does not verify") from None
