"""Blind indices: HKDF-derived per master key version and purpose, HMAC-SHA256 of the value."""

import hashlib
import hmac

import pytest

import crypto
from crypto import Keyring, blind_index, blind_index_key, hkdf_sha256


def test_the_index_key_is_hkdf_of_the_master_key_with_a_zero_salt_and_the_purpose():
    ring = Keyring({1: bytes(range(32)), 2: bytes(range(32, 64))})
    expected = hkdf_sha256(bytes(range(32)), salt=bytes(32), info=b"civicvault/blind-index/v1\x00login")
    assert blind_index_key(ring, 1, purpose="login") == expected
    assert blind_index_key(ring, 2, purpose="login") != expected
    assert blind_index_key(ring, 1, purpose="other") != expected
    assert blind_index(expected, b"amina") == hmac.new(expected, b"amina", hashlib.sha256).digest()


def test_unknown_versions_and_odd_purposes_are_refused():
    ring = Keyring({1: bytes(32)})
    with pytest.raises(crypto.KeyringError):
        blind_index_key(ring, 2, purpose="login")
    for purpose in ("", "lögin"):
        with pytest.raises(ValueError):
            blind_index_key(ring, 1, purpose=purpose)


def test_login_and_totp_contexts_are_their_own():
    assert (
        crypto.principal_login_aad(principal_id="p-x")
        == b"\x00\x00\x00\x1dcivicvault/principal-login/v1\x00\x00\x00\x03p-x"
    )
    assert crypto.totp_secret_aad(principal_id="p-x") == b"\x00\x00\x00\x19civicvault/totp-secret/v1\x00\x00\x00\x03p-x"
    assert crypto.principal_login_aad(principal_id="p-x") != crypto.principal_name_aad(principal_id="p-x")


def test_the_pairwise_pseudonym_is_the_documented_hmac_in_lowercase_base32():
    import base64

    key = blind_index_key(Keyring({1: bytes(range(32))}), 1, purpose="pseudonym")
    assert key == hkdf_sha256(bytes(range(32)), salt=bytes(32), info=b"civicvault/blind-index/v1\x00pseudonym")
    digest = hmac.new(key, b"civicvault/pseudonym/v1\x00p-amina\x00p-landlord", hashlib.sha256).digest()[:20]
    expected = "urn:civicvault:pseudonym:" + base64.b32encode(digest).decode().rstrip("=").lower()
    pseudonym = crypto.pairwise_pseudonym(key, subject_id="p-amina", requester_id="p-landlord")
    assert pseudonym == expected and len(pseudonym) == len("urn:civicvault:pseudonym:") + 32
    assert crypto.pairwise_pseudonym(key, subject_id="p-amina", requester_id="p-landlord") == pseudonym
    assert crypto.pairwise_pseudonym(key, subject_id="p-amina", requester_id="p-other") != pseudonym
    assert crypto.pairwise_pseudonym(key, subject_id="p-tomasz", requester_id="p-landlord") != pseudonym
    # The separator keeps ("p-a", "b-c") and ("p-a\x00b", "c") apart; a NUL inside an id is refused.
    for subject, requester in (("", "p-landlord"), ("p-amina", ""), ("p-am\x00ina", "p-landlord")):
        with pytest.raises(ValueError):
            crypto.pairwise_pseudonym(key, subject_id=subject, requester_id=requester)
