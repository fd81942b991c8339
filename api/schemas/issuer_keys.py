"""Issuer keys: register an Ed25519 public key with a proof of possession, list, look up, revoke."""

import marshmallow as ma
from marshmallow import fields, validate

from api.schemas.common import AGENCY, ISSUER_KEY, Strict, Timestamp

ISSUER_ROLE = {"enum": ["clinic", "landlord", "agency"]}


class IssuerKeyIn(Strict):
    public_key = fields.String(
        required=True,
        validate=validate.Regexp(r"^[0-9a-f]{64}$"),
        metadata={"description": "The 32-byte Ed25519 public key (RFC 8032), lowercase hex"},
    )
    proof_of_possession = fields.String(
        required=True,
        validate=validate.Regexp(r"^[0-9a-f]{128}$"),
        metadata={
            "description": "Ed25519 signature, lowercase hex, of 'civicvault/issuer-key/v1' 0x00 || your principal "
            "id || the public key (docs/attestations.md)"
        },
    )


class IssuerKeyOut(ma.Schema):
    id = fields.String(required=True, metadata={"description": "The key id a signature names (key_id)"})
    issuer_id = fields.String(required=True, attribute="principal_id")
    issuer_role = fields.String(required=True, attribute="principal_role", metadata=ISSUER_ROLE)
    issuer_name = fields.String(required=True, attribute="principal_name")
    public_key = fields.Function(
        lambda key: key.public_key.hex(),
        required=True,
        metadata={"type": "string", "description": "32-byte Ed25519 public key, lowercase hex"},
    )
    status = fields.String(required=True, metadata={"enum": ["active", "revoked"]})
    created_at = Timestamp(required=True)
    revoked_at = Timestamp(
        required=True,
        allow_none=True,
        metadata={"description": "From this time the key signs nothing new; what it signed before still shows it"},
    )


class IssuerKeyListOut(ma.Schema):
    items = fields.List(fields.Nested(IssuerKeyOut), required=True)
    total = fields.Integer(required=True)


# A real key and proof: the proof verifies for AGENCY (docs/attestations.md shows how to make one).
PUBLIC_KEY = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
ISSUER_KEY_IN_EXAMPLE = {
    "public_key": PUBLIC_KEY,
    "proof_of_possession": "2c5c67327bac433eb90d9c15bf4f0250275551561ed56b358a74fece163284a3"
    "6cf0668f75e14a5bf5bbd629e0b7d01b6ee6c6b0aa9045bf6c8969a8aefcd00c",
}
ISSUER_KEY_EXAMPLE = {
    "id": ISSUER_KEY,
    "issuer_id": AGENCY,
    "issuer_role": "agency",
    "issuer_name": "Northside Payroll Services",
    "public_key": PUBLIC_KEY,
    "status": "active",
    "created_at": "2026-11-20T08:00:00.000Z",
    "revoked_at": None,
}
ISSUER_KEY_REVOKED_EXAMPLE = {**ISSUER_KEY_EXAMPLE, "status": "revoked", "revoked_at": "2026-12-01T17:45:10.204Z"}
ISSUER_KEY_LIST_EXAMPLE = {"items": [ISSUER_KEY_EXAMPLE], "total": 1}
