"""HKDF-SHA256 against RFC 5869's vectors, and keyrings bound to a subject secret."""

import os

import pytest

import crypto
from crypto import Keyring, hkdf_sha256

# RFC 5869, appendix A, test cases 1-3 (SHA-256).
VECTORS = [
    (
        "0b" * 22,
        "000102030405060708090a0b0c",
        "f0f1f2f3f4f5f6f7f8f9",
        42,
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
    ),
    (
        "".join(f"{i:02x}" for i in range(0x00, 0x50)),
        "".join(f"{i:02x}" for i in range(0x60, 0xB0)),
        "".join(f"{i:02x}" for i in range(0xB0, 0x100)),
        82,
        "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09"
        "da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87",
    ),
    ("0b" * 22, "", "", 42, "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"),
]


@pytest.mark.parametrize("ikm, salt, info, length, okm", VECTORS)
def test_hkdf_matches_rfc5869(ikm, salt, info, length, okm):
    assert (
        hkdf_sha256(bytes.fromhex(ikm), salt=bytes.fromhex(salt), info=bytes.fromhex(info), length=length).hex() == okm
    )


def test_a_bound_keyring_needs_the_secret_the_subject_and_the_master_key():
    ring = Keyring({1: os.urandom(32), 2: os.urandom(32)})
    secret = os.urandom(32)
    bound = ring.bound_to(secret, subject_id="p-a")
    assert bound.versions == (1, 2)
    key = crypto.new_key()
    wrapped = crypto.wrap_key(bound, key, subject_id="p-a", version=1)
    assert crypto.envelope_key_id(wrapped) == 2
    assert crypto.unwrap_key(ring.bound_to(secret, subject_id="p-a"), wrapped, subject_id="p-a", version=1) == key
    for other in (
        ring,
        ring.bound_to(os.urandom(32), subject_id="p-a"),
        ring.bound_to(secret, subject_id="p-b"),
        Keyring({1: os.urandom(32), 2: os.urandom(32)}).bound_to(secret, subject_id="p-a"),
    ):
        with pytest.raises(crypto.InvalidEnvelope):
            crypto.unwrap_key(other, wrapped, subject_id="p-a", version=1)
    # Each version's bound key differs from the master key and from the other versions'.
    assert len({bound.key(1), bound.key(2), ring.key(1), ring.key(2)}) == 4


@pytest.mark.parametrize("secret", [b"", b"x" * 31, b"x" * 33, "x" * 32, None])
def test_a_secret_is_32_bytes(secret):
    with pytest.raises(crypto.KeyringError):
        Keyring({1: os.urandom(32)}).bound_to(secret, subject_id="p-a")
