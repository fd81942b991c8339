"""Issuer signatures: Ed25519 against RFC 8032's vectors, the proof of possession and the signed statement's bytes."""

import hashlib

import pytest

from crypto import issuer
from crypto.errors import KeyringError, SignatureError

# RFC 8032, section 7.1, tests 1 and 2: (secret, public, message, signature).
RFC8032 = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
]
L = 2**252 + 27742317777372353535851937790883648493


def statement(**changes) -> issuer.SignedStatement:
    fields = {
        "subject_id": "p-seytgdvtc3czy56kuyxdtjhdne",
        "category": "tenancy.income",
        "content_sha256": hashlib.sha256(b'{"gross_annual":41200}').hexdigest(),
        "issued_at": "2026-11-30T09:15:00Z",
        "issuer_id": "p-n6yilbmg6f3gqbut2j5mmmbwku",
        "key_id": "k-a3x7qkd2m5o4rzlbwcyte6hvfu",
    }
    return issuer.SignedStatement(**{**fields, **changes})


@pytest.mark.parametrize(("secret", "public", "message", "signature"), RFC8032)
def test_rfc8032_vectors(secret, public, message, signature):
    key = issuer.IssuerKey.from_seed(bytes.fromhex(secret))
    assert key.public_key.hex() == public
    assert key.sign(bytes.fromhex(message)).hex() == signature
    issuer._ed25519.verify(bytes.fromhex(public), bytes.fromhex(message), bytes.fromhex(signature))


@pytest.mark.parametrize(("secret", "public", "message", "signature"), RFC8032)
def test_rfc8032_vectors_corrupted_fail(secret, public, message, signature):
    pub, msg, sig = bytes.fromhex(public), bytes.fromhex(message), bytes.fromhex(signature)
    for bad_msg, bad_sig in [
        (msg + b"\x00", sig),  # another message
        (msg, sig[:-1]),  # truncated
        (msg, sig + b"\x00"),  # trailing garbage
        (msg, bytes([sig[0] ^ 1]) + sig[1:]),  # R flipped
        (msg, sig[:40] + bytes([sig[40] ^ 0x10]) + sig[41:]),  # S flipped
        # S + L: the same scalar modulo L, refused as non-canonical (RFC 8032, 5.1.7)
        (msg, sig[:32] + (int.from_bytes(sig[32:], "little") + L).to_bytes(32, "little")),
    ]:
        with pytest.raises(SignatureError):
            issuer._ed25519.verify(pub, bad_msg, bad_sig)


def test_the_statement_bytes_are_seven_lines():
    assert statement().message() == (
        b"civicvault/record-signature/v1\n"
        b"p-seytgdvtc3czy56kuyxdtjhdne\n"
        b"tenancy.income\n"
        + hashlib.sha256(b'{"gross_annual":41200}').hexdigest().encode()
        + b"\n2026-11-30T09:15:00Z\n"
        b"p-n6yilbmg6f3gqbut2j5mmmbwku\n"
        b"k-a3x7qkd2m5o4rzlbwcyte6hvfu\n"
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"subject_id": "p-a\nb"},
        {"subject_id": ""},
        {"category": "tenancy.income\n"},
        {"category": "Tenancy"},
        {"content_sha256": "AB" * 32},
        {"content_sha256": "ab" * 31},
        {"issued_at": "2026-11-30T09:15:00.000Z"},
        {"issued_at": "2026-11-30T09:15:00+00:00"},
        {"issuer_id": "x" * 41},
        {"key_id": "k/1"},
    ],
)
def test_a_field_out_of_its_form_is_refused(changes):
    with pytest.raises(ValueError):
        statement(**changes).message()
    key = issuer.IssuerKey.generate()
    with pytest.raises(SignatureError):
        issuer.verify_record_signature(key.public_key, statement(**changes), b"\x00" * 64)


def test_a_record_signature_verifies_for_exactly_its_statement():
    key = issuer.IssuerKey.generate()
    signed = issuer.sign_record(key, statement())
    issuer.verify_record_signature(key.public_key, statement(), signed)
    for changes in [
        {"subject_id": "p-rlskoc3yggezgye4zpxtqnn2by"},
        {"category": "tenancy.lease"},
        {"content_sha256": hashlib.sha256(b'{"gross_annual":91200}').hexdigest()},
        {"issued_at": "2026-11-30T09:15:01Z"},
        {"issuer_id": "p-omtmrarydwz7gsxa3xahwqskoa"},
        {"key_id": "k-b3x7qkd2m5o4rzlbwcyte6hvfu"},
    ]:
        with pytest.raises(SignatureError):
            issuer.verify_record_signature(key.public_key, statement(**changes), signed)
    with pytest.raises(SignatureError):
        issuer.verify_record_signature(issuer.IssuerKey.generate().public_key, statement(), signed)


def test_proof_of_possession_binds_the_key_to_one_principal():
    key = issuer.IssuerKey.generate()
    proof = key.prove_possession("p-n6yilbmg6f3gqbut2j5mmmbwku")
    assert issuer.possession_message("p-n6yilbmg6f3gqbut2j5mmmbwku", key.public_key) == (
        b"civicvault/issuer-key/v1\x00p-n6yilbmg6f3gqbut2j5mmmbwku" + key.public_key
    )
    issuer.verify_possession("p-n6yilbmg6f3gqbut2j5mmmbwku", key.public_key, proof)
    with pytest.raises(SignatureError):
        issuer.verify_possession("p-omtmrarydwz7gsxa3xahwqskoa", key.public_key, proof)
    with pytest.raises(SignatureError):
        issuer.verify_possession("p-n6yilbmg6f3gqbut2j5mmmbwku", issuer.IssuerKey.generate().public_key, proof)
    # A record signature is never a proof of possession (domain separation), and the reverse.
    with pytest.raises(SignatureError):
        issuer.verify_record_signature(key.public_key, statement(), proof)


@pytest.mark.parametrize(
    "public",
    [
        b"",
        b"\x00" * 31,
        b"\x00" * 33,
        (1).to_bytes(32, "little"),  # the identity: small order
        bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),  # y = -1: order 2
        b"\xff" * 32,  # not a point
    ],
)
def test_malformed_and_weak_public_keys_are_refused(public):
    with pytest.raises(KeyringError):
        issuer.check_public_key(public)
    with pytest.raises(SignatureError):
        issuer.verify_possession("p-n6yilbmg6f3gqbut2j5mmmbwku", public, b"\x00" * 64)


def test_keys_round_trip_through_pkcs8_pem_and_never_show_themselves():
    key = issuer.IssuerKey.generate()
    pem = key.to_pem()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    again = issuer.IssuerKey.from_pem(pem)
    assert again.public_key == key.public_key
    assert pem.decode() not in repr(key) and "PRIVATE" not in repr(key)
    for bad in [b"", b"not a key", pem[:-40], b"x" * 10_000, pem.replace(b"PRIVATE", b"PUBLIC")]:
        with pytest.raises(KeyringError):
            issuer.IssuerKey.from_pem(bad)


def test_issued_at_has_one_form():
    from datetime import UTC, datetime, timedelta, timezone

    moment = datetime(2026, 11, 30, 10, 15, 0, 999_000, tzinfo=timezone(timedelta(hours=1)))
    assert issuer.format_issued_at(moment) == "2026-11-30T09:15:00Z"
    assert issuer.parse_issued_at("2026-11-30T09:15:00Z") == datetime(2026, 11, 30, 9, 15, tzinfo=UTC)
    for bad in ["2026-11-30T09:15:00.1Z", "2026-11-30 09:15:00Z", "2026-13-30T09:15:00Z", "2026-11-30T09:15:00"]:
        with pytest.raises(ValueError):
            issuer.parse_issued_at(bad)


def test_the_example_in_docs_attestations_md():
    """The worked example of docs/attestations.md ("Proof of possession", "What an issuer signs")."""
    key = issuer.IssuerKey.from_seed(bytes(range(32)))
    assert key.public_key.hex() == "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
    assert key.prove_possession("p-vq3xk7hm2lzfbwae5tjd4oyrcu").hex() == (
        "2c5c67327bac433eb90d9c15bf4f0250275551561ed56b358a74fece163284a3"
        "6cf0668f75e14a5bf5bbd629e0b7d01b6ee6c6b0aa9045bf6c8969a8aefcd00c"
    )
    content = (
        b'{"employer":"Riverside Bakery","gross_annual":{"amount":31200,"currency":"EUR"},'
        b'"person":"Tomasz Nowak","tax_year":2025,"type":"income-statement"}'
    )
    digest = hashlib.sha256(content).hexdigest()
    assert digest == "0e1bb7c955f62d52a90dad685fc6efc1b5e1fd55db2b3aa6f11c9746600250b6"
    signed = issuer.SignedStatement(
        subject_id="p-fchrivk5b27vhnn7t332ct6uha",
        category="tenancy.income",
        content_sha256=digest,
        issued_at="2026-11-30T09:15:00Z",
        issuer_id="p-vq3xk7hm2lzfbwae5tjd4oyrcu",
        key_id="k-m4ryq2xwdbh7fzjc6vtlke3usa",
    )
    assert issuer.sign_record(key, signed).hex() == (
        "6501572ba41f254d13897b96ae0a5ab3cf245427f778bcd724b2defb0a7c2681"
        "97b7729839207ed7974918a251cb2b632a1c72055f1a58f965fd2caa8b077e0f"
    )
