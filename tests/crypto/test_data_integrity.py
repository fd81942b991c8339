"""eddsa-jcs-2022 proofs and did:key: the W3C Recommendation's own example verifies, and every change to it fails."""

import copy
import json
from pathlib import Path

import base58
import pytest

from crypto.data_integrity import (
    add_proof,
    canonical,
    did_key,
    new_seed,
    public_key,
    public_key_of,
    verification_method,
    verify_proof,
)
from crypto.errors import ProofError

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "vc-di-eddsa"
SIGNED = json.loads((VECTORS / "signedJCS.json").read_text())
KEYS = json.loads((VECTORS / "keyPair.json").read_text())
W3C_KEY = public_key_of(KEYS["publicKeyMultibase"])


def test_the_specifications_signed_credential_verifies():
    verify_proof(SIGNED, W3C_KEY)


def test_the_specifications_signature_is_the_one_we_compute():
    # The private key is multibase: 0x80 0x26 (ed25519-priv) || the 32-byte seed.
    raw = base58.b58decode(KEYS["privateKeyMultibase"][1:])
    assert raw[:2] == b"\x80\x26"
    seed = raw[2:]
    assert public_key(seed) == W3C_KEY
    unsigned = {k: v for k, v in SIGNED.items() if k != "proof"}
    ours = add_proof(unsigned, seed, created=SIGNED["proof"]["created"], method=SIGNED["proof"]["verificationMethod"])
    signature = base58.b58decode(ours["proof"]["proofValue"][1:])
    assert signature.hex() == (VECTORS / "sigHexJCS.txt").read_text().strip()  # Ed25519 is deterministic
    assert ours["proof"]["proofValue"] == SIGNED["proof"]["proofValue"]


def _mutated(path, value):
    document = copy.deepcopy(SIGNED)
    target = document
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return document


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("credentialSubject", "alumniOf"), "Another School"),
        (("credentialSubject", "id"), "did:example:someone-else"),
        (("validFrom",), "2024-01-01T00:00:00Z"),
        (("name",), _DELETE),
        (("extra",), True),
        (("@context",), ["https://www.w3.org/ns/credentials/v2"]),
        (("proof", "created"), "2023-02-24T23:36:39Z"),
        (("proof", "cryptosuite"), "eddsa-rdfc-2022"),
        (("proof", "proofPurpose"), "authentication"),
        (("proof", "type"), "Ed25519Signature2020"),
        (("proof", "proofValue"), "z" + base58.b58encode(bytes(64)).decode()),
        (("proof", "proofValue"), SIGNED["proof"]["proofValue"][:-1]),
        (("proof", "proofValue"), "u" + SIGNED["proof"]["proofValue"][1:]),
        (("proof", "proofValue"), 12),
        (("proof",), _DELETE),
        (("proof",), "not an object"),
    ],
)
def test_each_change_fails(path, value):
    with pytest.raises(ProofError):
        verify_proof(_mutated(path, value), W3C_KEY)


def test_another_key_fails():
    with pytest.raises(ProofError):
        verify_proof(SIGNED, public_key(new_seed()))


def test_a_proof_naming_another_did_key_fails_even_with_a_good_signature():
    seed = new_seed()
    other = public_key(new_seed())
    signed = add_proof({"a": 1}, seed, created="2026-11-30T10:00:00Z", method=verification_method(other))
    with pytest.raises(ProofError, match="another key"):
        verify_proof(signed, public_key(seed))


def test_our_own_proof_round_trips_and_names_the_method():
    seed = new_seed()
    public = public_key(seed)
    document = {"@context": ["https://www.w3.org/ns/credentials/v2"], "type": ["VerifiableCredential"], "n": "é😀"}
    signed = add_proof(document, seed, created="2026-11-30T10:00:00Z")
    assert signed["proof"]["verificationMethod"] == verification_method(public)
    assert signed["proof"]["@context"] == document["@context"]
    verify_proof(signed, public)
    verify_proof(signed, public, method=verification_method(public))
    with pytest.raises(ProofError):
        verify_proof(signed, public, method="did:key:z6MkSomethingElse#z6MkSomethingElse")


def test_did_key_round_trips_and_refuses_other_codecs():
    public = public_key(new_seed())
    assert did_key(public).startswith("did:key:z6Mk")
    assert public_key_of(did_key(public)) == public
    assert public_key_of(verification_method(public)) == public
    assert public_key_of(KEYS["publicKeyMultibase"]) == W3C_KEY
    secp = "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme"  # a secp256k1 key
    for bad in (secp, "did:key:", "did:web:example.com", "z", "did:key:z0OIl", did_key(public) + "#z6MkOther", 5):
        with pytest.raises(ProofError):
            public_key_of(bad)


def test_canonical_is_rfc8785():
    assert canonical({"b": [1.0, 2.5e-7, "\u20ac"], "a": None}) == b'{"a":null,"b":[1,2.5e-7,"\xe2\x82\xac"]}'
    with pytest.raises(ProofError):
        canonical({"x": float("nan")})
