"""The attestation as a W3C Verifiable Credential (Data Model 2.0), signed and checked.

The format is written down in docs/attestations.md ("The credential",
"Verifying"); this module builds it (``unsigned``, ``with_evidence``,
``sign``) and checks one (``verify``) the way any verifier should: the
``eddsa-jcs-2022`` proof by the expected key, the issuer being that key,
the validity window at a given time, and, when given, the requester it was
issued to. ``verify`` raises ``InvalidAttestation`` (one error, whatever
was wrong; its message names the first check that failed) and returns the
credential's claims otherwise.

Nothing here touches the database, the clock or the network.
"""

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from crypto import data_integrity
from crypto.errors import ProofError

CONTEXT = "https://www.w3.org/ns/credentials/v2"
TYPES = ["VerifiableCredential", "CivicVaultAttestation"]
EVIDENCE_TYPE = ["CivicVaultEvaluation"]
COUNTED_ISSUED = "issuer-verified"
COUNTED_BOTH = "issuer-verified and self-asserted"
MAX_CREDENTIAL_BYTES = 64 * 1024


class InvalidAttestation(Exception):
    """The credential does not verify; the message says which check failed first."""


def xsd_datetime(moment: datetime) -> str:
    """An XML Schema dateTime in UTC to the second (``2026-11-30T10:00:00Z``), as the data model writes them."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_datetime(value: Any) -> datetime:
    if not isinstance(value, str) or not value.endswith("Z") or len(value) > 40:
        raise InvalidAttestation("a date in the credential is not a UTC dateTime")
    try:
        parsed = datetime.fromisoformat(value[:-1] + "+00:00")
    except ValueError:
        raise InvalidAttestation("a date in the credential is not a UTC dateTime") from None
    return parsed


def unsigned(
    *,
    credential_id: str,
    issuer: str,
    pseudonym: str,
    predicate: str,
    parameters: dict[str, Any],
    result: bool,
    include_self_asserted: bool,
    requester: str,
    now: datetime,
    valid_days: int,
) -> dict[str, Any]:
    """The credential before its evidence and proof: what the ledger event's digest covers."""
    return {
        "@context": [CONTEXT],
        "id": f"urn:uuid:{credential_id}",
        "type": list(TYPES),
        "issuer": issuer,
        "validFrom": xsd_datetime(now),
        "validUntil": xsd_datetime(now + timedelta(days=valid_days)),
        "credentialSubject": {
            "id": pseudonym,
            "predicate": predicate,
            "parameters": parameters,
            "result": result,
            "counted": COUNTED_BOTH if include_self_asserted else COUNTED_ISSUED,
        },
        "requester": requester,
    }


def digest(credential: dict[str, Any]) -> str:
    """SHA-256 (hex) of the JCS form of the credential without ``evidence`` and ``proof``.

    The ledger event holds this digest and the credential's evidence names the
    event, so the digest cannot cover the evidence (nor the proof, which signs it).
    """
    core = {name: value for name, value in credential.items() if name not in ("evidence", "proof")}
    return hashlib.sha256(data_integrity.canonical(core)).hexdigest()


def with_evidence(credential: dict[str, Any], *, ledger_event: str, issuers: list[dict[str, str]]) -> dict[str, Any]:
    return {**credential, "evidence": [{"type": list(EVIDENCE_TYPE), "ledgerEvent": ledger_event, "issuers": issuers}]}


def sign(credential: dict[str, Any], seed: bytes, *, now: datetime, method: str | None = None) -> dict[str, Any]:
    """The credential with its proof; ``method``, the key's verification method, saves deriving it again."""
    return data_integrity.add_proof(credential, seed, created=xsd_datetime(now), method=method)


@dataclass(frozen=True)
class Claims:
    """What a verified credential says."""

    id: str
    pseudonym: str
    predicate: str
    parameters: dict[str, Any]
    result: bool
    counted: str
    requester: str
    valid_from: datetime
    valid_until: datetime

    def line(self) -> str:
        """``income_at_least {"annual_rent":14400,...} = true for urn:civicvault:pseudonym:...``"""
        parameters = data_integrity.canonical(self.parameters).decode("utf-8")
        return f"{self.predicate} {parameters} = {'true' if self.result else 'false'} for {self.pseudonym}"


def _check_shape(credential: Any) -> dict[str, Any]:
    if not isinstance(credential, dict):
        raise InvalidAttestation("the credential is not a JSON object")
    if credential.get("@context") != [CONTEXT]:
        raise InvalidAttestation("the credential's @context is not the VC Data Model 2.0 context")
    if credential.get("type") != TYPES:
        raise InvalidAttestation("the credential is not a CivicVaultAttestation")
    subject = credential.get("credentialSubject")
    if not isinstance(subject, dict):
        raise InvalidAttestation("the credential has no credentialSubject")
    if not isinstance(subject.get("result"), bool):
        raise InvalidAttestation("the credential's result is not true or false")
    for name in ("id", "predicate", "counted"):
        if not isinstance(subject.get(name), str):
            raise InvalidAttestation(f"the credential's credentialSubject has no {name}")
    if not isinstance(subject.get("parameters"), dict):
        raise InvalidAttestation("the credential's parameters are not an object")
    if not isinstance(credential.get("requester"), str) or not isinstance(credential.get("id"), str):
        raise InvalidAttestation("the credential names no requester or no id")
    return subject


def verify(credential: Any, *, key: str, at: datetime, requester: str | None = None) -> Claims:
    """Check ``credential`` against the vault's ``did:key`` ``key`` at time ``at``; ``InvalidAttestation`` if not.

    In order: the shape; the issuer is ``key``; the proof is an
    ``eddsa-jcs-2022`` proof for ``assertionMethod`` by ``key``'s
    verification method over this very credential; ``validFrom <= at <
    validUntil``; the requester is ``requester`` when given.
    """
    subject = _check_shape(credential)
    try:
        public = data_integrity.public_key_of(key)
    except ProofError:
        raise InvalidAttestation("the key is not an Ed25519 did:key") from None
    did = data_integrity.did_key(public)
    if credential.get("issuer") != did:
        raise InvalidAttestation("the credential's issuer is not the vault's key")
    try:
        data_integrity.verify_proof(credential, public, method=data_integrity.verification_method(public))
    except ProofError as error:
        raise InvalidAttestation(f"the proof does not verify: {error}") from None
    valid_from = parse_datetime(credential.get("validFrom"))
    valid_until = parse_datetime(credential.get("validUntil"))
    if at < valid_from:
        raise InvalidAttestation("the credential is not valid yet")
    if at >= valid_until:
        raise InvalidAttestation("the credential has expired")
    if requester is not None and credential["requester"] != requester:
        raise InvalidAttestation("the credential was issued to another requester")
    return Claims(
        id=credential["id"],
        pseudonym=subject["id"],
        predicate=subject["predicate"],
        parameters=subject["parameters"],
        result=subject["result"],
        counted=subject["counted"],
        requester=credential["requester"],
        valid_from=valid_from,
        valid_until=valid_until,
    )
