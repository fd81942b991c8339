"""An independent check of issued records, written only from docs/attestations.md and RFC 8032.

It imports nothing of the vault's crypto: Ed25519 verification is done here in
plain Python (RFC 8032, section 5.1.7, with the curve's affine formulas), the
statement is built from the record as the API returns it, and the content's
canonical bytes as the page describes them.
"""

import hashlib
import json

from tests.api.conftest import grant
from tests.api.test_issuer_records import INCOME, Issuer

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)
BASE = (
    15112221349535400772501151409588531511454012693041857206046113283949847762202,
    46316835694926478169428394003475163141307993866256225615783033603165251855960,
)


def _add(p1, p2):
    (x1, y1), (x2, y2) = p1, p2
    t = D * x1 * x2 * y1 * y2 % P
    return (
        (x1 * y2 + y1 * x2) * pow(1 + t, P - 2, P) % P,
        (y1 * y2 + x1 * x2) * pow(1 - t, P - 2, P) % P,
    )


def _times(k, point):
    result = (0, 1)
    while k:
        if k & 1:
            result = _add(result, point)
        point, k = _add(point, point), k >> 1
    return result


def _decode(data: bytes):
    if len(data) != 32:
        raise ValueError("a point has 32 bytes")
    number = int.from_bytes(data, "little")
    y, sign = number & (2**255 - 1), number >> 255
    if y >= P:
        raise ValueError("not canonical")
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P:
        raise ValueError("not a point")
    if x == 0 and sign:
        raise ValueError("not canonical")
    if x % 2 != sign:
        x = P - x
    return x, y


def ed25519_verifies(public: bytes, message: bytes, signature: bytes) -> bool:
    if len(signature) != 64:
        return False
    try:
        a, r = _decode(public), _decode(signature[:32])
    except ValueError:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= L:
        return False
    h = int.from_bytes(hashlib.sha512(signature[:32] + public + message).digest(), "little") % L
    # [8][S]B = [8]R + [8][h]A (the cofactored equation of RFC 8032, 5.1.7)
    return _times(8, _times(s, BASE)) == _times(8, _add(r, _times(h, a)))


def canonical(content) -> bytes:
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def statement(record: dict) -> bytes:
    origin = record["provenance"]
    issued_at = origin["issued_at"][:19] + "Z"  # the API's time has milliseconds; the statement is to the second
    lines = [
        "civicvault/record-signature/v1",
        record["subject_id"],
        record["category"],
        hashlib.sha256(canonical(record["content"])).hexdigest(),
        issued_at,
        origin["issuer_id"],
        origin["key_id"],
    ]
    return "".join(line + "\n" for line in lines).encode("ascii")


def test_the_verifier_agrees_with_rfc_8032_and_the_documented_example():
    assert ed25519_verifies(
        bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"),
        b"",
        bytes.fromhex(
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        ),
    )
    record = {
        "subject_id": "p-fchrivk5b27vhnn7t332ct6uha",
        "category": "tenancy.income",
        "content": {
            "type": "income-statement",
            "person": "Tomasz Nowak",
            "tax_year": 2025,
            "employer": "Riverside Bakery",
            "gross_annual": {"amount": 31200, "currency": "EUR"},
        },
        "provenance": {
            "issuer_id": "p-vq3xk7hm2lzfbwae5tjd4oyrcu",
            "key_id": "k-m4ryq2xwdbh7fzjc6vtlke3usa",
            "issued_at": "2026-11-30T09:15:00.000Z",
        },
    }
    public = bytes.fromhex("03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8")
    signature = bytes.fromhex(
        "6501572ba41f254d13897b96ae0a5ab3cf245427f778bcd724b2defb0a7c2681"
        "97b7729839207ed7974918a251cb2b632a1c72055f1a58f965fd2caa8b077e0f"
    )
    assert ed25519_verifies(public, statement(record), signature)
    altered = {**record, "content": {**record["content"], "gross_annual": {"amount": 91200, "currency": "EUR"}}}
    assert not ed25519_verifies(public, statement(altered), signature)
    proof = bytes.fromhex(
        "2c5c67327bac433eb90d9c15bf4f0250275551561ed56b358a74fece163284a3"
        "6cf0668f75e14a5bf5bbd629e0b7d01b6ee6c6b0aa9045bf6c8969a8aefcd00c"
    )
    assert ed25519_verifies(public, b"civicvault/issuer-key/v1\x00p-vq3xk7hm2lzfbwae5tjd4oyrcu" + public, proof)


def test_a_reader_checks_an_issued_record_from_what_the_api_gives(client, cast, make_actor, clock):
    agency = make_actor("agency", "Northside Payroll Services")
    northside = Issuer(client, agency)
    grant(
        client,
        cast.tomasz,
        agency,
        clock,
        categories=("tenancy.income",),
        purpose="tenancy-screening",
        actions=("write",),
    )
    content = {**INCOME, "note": "Łódź branch, ½ year"}
    body = {
        "category": "tenancy.income",
        "content": content,
        "purpose": "tenancy-screening",
        "signature": northside.sign(cast.tomasz.id, "tenancy.income", content),
    }
    record_id = client.post(f"/api/v1/subjects/{cast.tomasz.id}/records", json=body, headers=agency.auth).get_json()[
        "id"
    ]
    # The landlord the resident shares it with reads it and checks it against the issuer's published key.
    grant(client, cast.tomasz, cast.landlord, clock, categories=("tenancy.income",), purpose="tenancy-screening")
    record = client.get(f"/api/v1/records/{record_id}?purpose=tenancy-screening", headers=cast.landlord.auth).get_json()
    key = client.get(f"/api/v1/issuer-keys/{record['provenance']['key_id']}", headers=cast.landlord.auth).get_json()
    assert key["issuer_id"] == record["provenance"]["issuer_id"] == agency.id
    public, signature = bytes.fromhex(key["public_key"]), bytes.fromhex(record["provenance"]["signature"])
    assert ed25519_verifies(public, statement(record), signature)
    for changed in ({"subject_id": cast.amina.id}, {"category": "tenancy.lease"}, {"content": INCOME}):
        assert not ed25519_verifies(public, statement({**record, **changed}), signature)
