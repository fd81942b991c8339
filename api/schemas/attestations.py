"""Attestations: ask for a signed yes/no answer about a resident's records; the vault's public key."""

import marshmallow as ma
from marshmallow import fields, validate

from api.schemas.common import (
    AGENCY,
    AMINA,
    LANDLORD,
    LEAF_HASH,
    RECEIPT,
    Page,
    ReceiptOut,
    Strict,
    Timestamp,
    id_field,
)
from vault.attestations.predicates import CATALOGUE
from vault.core.vocabulary import PURPOSES


class AttestationIn(Strict):
    predicate = fields.String(
        required=True,
        validate=validate.OneOf(sorted(CATALOGUE)),
        metadata={"description": "The question, from the catalogue (docs/attestations.md, 'Predicates')."},
    )
    parameters = fields.Dict(
        required=True,
        metadata={"description": "The predicate's parameters, exactly as the catalogue names them."},
    )
    purpose = fields.String(required=True, validate=validate.OneOf(PURPOSES))
    include_self_asserted = fields.Boolean(
        load_default=False,
        truthy={True},
        falsy={False},
        metadata={
            "description": "Count records the resident typed in as well as issuer-verified ones; "
            "the credential then says so (counted: 'issuer-verified and self-asserted')."
        },
    )


class AttestationOut(ma.Schema):
    credential = fields.Dict(
        required=True,
        metadata={
            "description": "A W3C Verifiable Credential (Data Model 2.0) with an eddsa-jcs-2022 proof by the "
            "vault's attestation key: the pseudonym, the question and the boolean answer, never the records."
        },
    )
    pseudonym = fields.String(
        required=True, metadata={"description": "The resident's pairwise pseudonym for the caller."}
    )
    receipt = fields.Nested(ReceiptOut, required=True, metadata={"description": "The attestation's ledger entry."})


class ObtainedQuery(Page):
    subject_id = id_field("Only the attestations about this resident.")


class ObtainedOut(ma.Schema):
    id = fields.String(
        attribute="urn",
        metadata={"description": "The credential's id, urn:uuid:<UUID>; GET /attestations/{id} takes it or the UUID."},
    )
    subject_id = fields.String(metadata={"description": "The resident the attestation is about."})
    predicate = fields.String()
    parameters = fields.Dict()
    result = fields.Boolean(metadata={"description": "The answer that was disclosed."})
    counted = fields.String(metadata={"description": "Which records counted: issuer-verified (and self-asserted)."})
    purpose = fields.String()
    pseudonym = fields.String(metadata={"description": "The resident's pairwise pseudonym for the caller."})
    created_at = Timestamp()
    valid_until = Timestamp()
    issuers = fields.List(fields.String(), metadata={"description": "The issuers of the records the answer used."})
    ledger_event = fields.String(metadata={"description": "The leaf hash of the attestation's ledger entry."})
    credential = fields.Dict(
        metadata={"description": "The signed credential, exactly as it was issued (verify it offline)."}
    )


class ObtainedListOut(ma.Schema):
    items = fields.List(fields.Nested(ObtainedOut))
    total = fields.Integer()


class AttestationKeyOut(ma.Schema):
    did = fields.String(required=True, metadata={"description": "The vault's attestation key as a did:key."})
    verification_method = fields.String(
        required=True, metadata={"description": "What every attestation's proof names: did:key:<key>#<key>."}
    )
    public_key_multibase = fields.String(
        required=True, metadata={"description": "The Ed25519 public key, multibase (base58btc) with its multicodec."}
    )


_KEY = "z6MkehRgf7yJbgaGfYsdoAsKdBPE3dj2CYhowQdcjqSJgvVd"
_PSEUDONYM = "urn:civicvault:pseudonym:k3jx5q2w7m4np6rt2yb5vhz4ca6dsel7"
ATTESTATION_IN_EXAMPLE = {
    "predicate": "income_at_least",
    "parameters": {"multiple": 3, "annual_rent": 14400, "currency": "EUR"},
    "purpose": "tenancy-screening",
}
CREDENTIAL_EXAMPLE = {
    "@context": ["https://www.w3.org/ns/credentials/v2"],
    "id": "urn:uuid:5f0c6e1a-8b7d-4e3a-9c2b-1d4f6a8e0b37",
    "type": ["VerifiableCredential", "CivicVaultAttestation"],
    "issuer": f"did:key:{_KEY}",
    "validFrom": "2026-11-25T09:30:00Z",
    "validUntil": "2026-12-25T09:30:00Z",
    "credentialSubject": {
        "id": _PSEUDONYM,
        "predicate": "income_at_least",
        "parameters": {"multiple": 3.0, "annual_rent": 14400, "currency": "EUR"},
        "result": True,
        "counted": "issuer-verified",
    },
    "requester": LANDLORD,
    "evidence": [
        {
            "type": ["CivicVaultEvaluation"],
            "ledgerEvent": LEAF_HASH,
            "issuers": [{"id": AGENCY}],
        }
    ],
    "proof": {
        "type": "DataIntegrityProof",
        "cryptosuite": "eddsa-jcs-2022",
        "created": "2026-11-25T09:30:00Z",
        "verificationMethod": f"did:key:{_KEY}#{_KEY}",
        "proofPurpose": "assertionMethod",
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "proofValue": "z21ekaJQsfNqFYkbRxbX7mUht7fSMwpnnUaSZQSh7GewALxBxWqsyCEbc26vjaUZXfNSmDmKVozkrapKL29y82duT",
    },
}
ATTESTATION_EXAMPLE = {"credential": CREDENTIAL_EXAMPLE, "pseudonym": _PSEUDONYM, "receipt": RECEIPT}
OBTAINED_EXAMPLE = {
    "id": "urn:uuid:5f0c6e1a-8b7d-4e3a-9c2b-1d4f6a8e0b37",
    "subject_id": AMINA,
    "predicate": "income_at_least",
    "parameters": {"multiple": 3.0, "annual_rent": 14400, "currency": "EUR"},
    "result": True,
    "counted": "issuer-verified",
    "purpose": "tenancy-screening",
    "pseudonym": _PSEUDONYM,
    "created_at": "2026-11-25T09:30:00.000Z",
    "valid_until": "2026-12-25T09:30:00.000Z",
    "issuers": [AGENCY],
    "ledger_event": LEAF_HASH,
    "credential": CREDENTIAL_EXAMPLE,
}
OBTAINED_LIST_EXAMPLE = {"items": [OBTAINED_EXAMPLE], "total": 1}
ATTESTATION_KEY_EXAMPLE = {
    "did": f"did:key:{_KEY}",
    "verification_method": f"did:key:{_KEY}#{_KEY}",
    "public_key_multibase": _KEY,
}
