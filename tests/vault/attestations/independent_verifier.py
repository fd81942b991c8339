"""An attestation verifier written from docs/attestations.md ("Verifying") alone.

It imports nothing of the vault (no ``vault``, ``api`` or ``crypto``): only
the standard library, ``rfc8785`` (JCS), ``base58`` and PyCryptodome's
Ed25519. ``verify`` returns the answer or raises ``Rejected`` naming the
step that failed.
"""

import hashlib
from datetime import UTC, datetime
from typing import Any

import base58
import rfc8785
from Cryptodome.Signature import eddsa

CONTEXT = ["https://www.w3.org/ns/credentials/v2"]
TYPE = ["VerifiableCredential", "CivicVaultAttestation"]


class Rejected(Exception):
    pass


def _jcs(value: Any) -> bytes:
    try:
        return bytes(rfc8785.dumps(value))
    except Exception as error:  # step 1: what JCS cannot represent is rejected
        raise Rejected(f"step 1: not canonicalizable ({type(error).__name__})") from None


def _time(value: Any) -> datetime:
    if not isinstance(value, str) or len(value) != 20 or not value.endswith("Z"):
        raise Rejected("step 10: a validity time is not YYYY-MM-DDTHH:MM:SSZ")
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def verify(credential: Any, did: str, *, at: datetime, requester: str | None = None, pseudonym: str | None = None):
    # 1. a JSON object
    if not isinstance(credential, dict):
        raise Rejected("step 1: not a JSON object")
    # 2. shape
    if credential.get("@context") != CONTEXT or credential.get("type") != TYPE:
        raise Rejected("step 2: @context or type")
    subject = credential.get("credentialSubject")
    if not isinstance(subject, dict):
        raise Rejected("step 2: credentialSubject")
    if not all(isinstance(subject.get(name), str) for name in ("id", "predicate", "counted")):
        raise Rejected("step 2: credentialSubject members")
    if not isinstance(subject.get("parameters"), dict) or not isinstance(subject.get("result"), bool):
        raise Rejected("step 2: parameters or result")
    if not isinstance(credential.get("requester"), str) or not isinstance(credential.get("id"), str):
        raise Rejected("step 2: requester or id")
    # 3. the key, from the vault's did:key
    if not did.startswith("did:key:z"):
        raise Rejected("step 3: not a did:key")
    multibase = did[len("did:key:") :]
    try:
        raw = base58.b58decode(multibase[1:])
    except ValueError:
        raise Rejected("step 3: not base58btc") from None
    if len(raw) != 34 or raw[:2] != b"\xed\x01":
        raise Rejected("step 3: not an Ed25519 key")
    public = raw[2:]
    # 4. issuer
    if credential.get("issuer") != did:
        raise Rejected("step 4: issuer")
    # 5. proof options
    proof = credential.get("proof")
    if not isinstance(proof, dict):
        raise Rejected("step 5: no proof")
    if (
        proof.get("type") != "DataIntegrityProof"
        or proof.get("cryptosuite") != "eddsa-jcs-2022"
        or proof.get("proofPurpose") != "assertionMethod"
        or proof.get("verificationMethod") != f"{did}#{multibase}"
    ):
        raise Rejected("step 5: proof options")
    value = proof.get("proofValue")
    if not isinstance(value, str) or not value.startswith("z"):
        raise Rejected("step 5: proofValue")
    try:
        signature = base58.b58decode(value[1:])
    except ValueError:
        raise Rejected("step 5: proofValue is not base58btc") from None
    if len(signature) != 64:
        raise Rejected("step 5: a signature is 64 bytes")
    # 6. proof configuration
    configuration = {name: member for name, member in proof.items() if name != "proofValue"}
    if "@context" in configuration and configuration["@context"] != credential["@context"]:
        raise Rejected("step 6: the proof's @context")
    # 7. unsecured document
    unsecured = {name: member for name, member in credential.items() if name != "proof"}
    # 8. hash data
    hash_data = hashlib.sha256(_jcs(configuration)).digest() + hashlib.sha256(_jcs(unsecured)).digest()
    # 9. Ed25519 signature
    key = eddsa.import_public_key(public)
    try:
        eddsa.new(key, "rfc8032").verify(hash_data, signature)
    except ValueError:
        raise Rejected("step 9: the signature does not verify") from None
    # 10. validity
    if not _time(credential.get("validFrom")) <= at < _time(credential.get("validUntil")):
        raise Rejected("step 10: outside the validity window")
    # 11. requester
    if requester is not None and credential["requester"] != requester:
        raise Rejected("step 11: issued to another requester")
    # 12. subject
    if pseudonym is not None and subject["id"] != pseudonym:
        raise Rejected("step 12: about another subject")
    return subject["result"]
