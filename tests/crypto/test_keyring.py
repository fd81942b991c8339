"""Tests of ``crypto.Keyring``, key wrapping and the associated-data encodings.

The keyring validates what it is given (``KeyringError``), seals with its
newest version and opens whatever version an envelope names; wrapped subject
keys are bound to their subject and key version; key material never appears
in a repr; and ``crypto.aad`` encodes its fields so that no two different
bindings produce the same bytes.
"""

import base64

import pytest

import crypto
from crypto import aad as aad_module
from crypto.envelope import HEADER_SIZE

KEY_1 = bytes(range(0, 32))
KEY_2 = bytes(range(32, 64))
KEY_3 = bytes(range(64, 96))
SUBJECT = "p_subject"
CONTEXT = crypto.principal_name_aad(principal_id=SUBJECT)


def _envelope_version(envelope: bytes) -> int:
    return int.from_bytes(envelope[1:HEADER_SIZE], "big")


# --- Validation ---------------------------------------------------------------


def test_empty_keyring_is_refused():
    with pytest.raises(crypto.KeyringError):
        crypto.Keyring({})


@pytest.mark.parametrize("length", [0, 1, 16, 31, 33, 64])
def test_keys_of_the_wrong_length_are_refused(length):
    with pytest.raises(crypto.KeyringError):
        crypto.Keyring({1: bytes(length)})


@pytest.mark.parametrize(
    "key", [bytearray(32), "k" * 32, None, list(range(32))], ids=["bytearray", "str", "None", "list"]
)
def test_keys_that_are_not_bytes_are_refused(key):
    with pytest.raises(crypto.KeyringError):
        crypto.Keyring({1: key})


@pytest.mark.parametrize("version", [0, -1, 2**32])
def test_versions_outside_1_to_2_32_minus_1_are_refused(version):
    with pytest.raises(crypto.KeyringError):
        crypto.Keyring({version: KEY_1})


@pytest.mark.parametrize("version", ["1", 1.0, None, b"\x01", (1,)], ids=["str", "float", "None", "bytes", "tuple"])
def test_versions_that_are_not_integers_are_refused(version):
    with pytest.raises(crypto.KeyringError):
        crypto.Keyring({version: KEY_1})


def test_one_bad_entry_spoils_the_whole_keyring():
    with pytest.raises(crypto.KeyringError):
        crypto.Keyring({1: KEY_1, 2: bytes(31)})


def test_keyring_error_is_a_crypto_error():
    assert issubclass(crypto.KeyringError, crypto.CryptoError)
    assert issubclass(crypto.InvalidEnvelope, crypto.CryptoError)
    assert not issubclass(crypto.InvalidEnvelope, crypto.KeyringError)


def test_largest_valid_version_is_accepted():
    keyring = crypto.Keyring({2**32 - 1: KEY_1})
    assert keyring.current_version == 2**32 - 1
    assert keyring.unseal(keyring.seal(b"x", aad=CONTEXT), aad=CONTEXT) == b"x"


# --- Versions -----------------------------------------------------------------


def test_current_version_is_the_largest_whatever_the_order_given():
    keyring = crypto.Keyring({3: KEY_3, 1: KEY_1, 2: KEY_2})
    assert keyring.current_version == 3
    assert keyring.versions == (1, 2, 3)
    assert keyring.key(1) == KEY_1 and keyring.key(3) == KEY_3


def test_current_version_need_not_be_contiguous():
    keyring = crypto.Keyring({7: KEY_1, 2: KEY_2})
    assert keyring.current_version == 7
    assert _envelope_version(keyring.seal(b"x", aad=CONTEXT)) == 7


def test_key_of_an_unknown_version_raises_keyring_error():
    with pytest.raises(crypto.KeyringError):
        crypto.Keyring({1: KEY_1}).key(2)


def test_keyring_copies_its_input():
    keys = {1: KEY_1}
    keyring = crypto.Keyring(keys)
    keys[2] = KEY_2
    assert keyring.versions == (1,)


def test_seal_uses_the_current_version_and_its_key():
    keyring = crypto.Keyring({1: KEY_1, 2: KEY_2})
    envelope = keyring.seal(b"secret", aad=CONTEXT)
    assert _envelope_version(envelope) == 2
    assert crypto.unseal(KEY_2, envelope, aad=CONTEXT) == b"secret"
    with pytest.raises(crypto.InvalidEnvelope):
        crypto.unseal(KEY_1, envelope, aad=CONTEXT)


# --- Rotation -----------------------------------------------------------------


def test_rotated_adds_a_new_current_version_and_keeps_the_old():
    old = crypto.Keyring({1: KEY_1})
    new = old.rotated(KEY_2)
    assert new.current_version == 2
    assert new.versions == (1, 2)
    assert new.key(1) == KEY_1 and new.key(2) == KEY_2
    assert old.versions == (1,)  # the original is unchanged


def test_rotated_seals_with_the_new_version_and_opens_the_old():
    old = crypto.Keyring({1: KEY_1})
    sealed_before = old.seal(b"before", aad=CONTEXT)
    new = old.rotated(KEY_2)
    sealed_after = new.seal(b"after", aad=CONTEXT)

    assert _envelope_version(sealed_before) == 1
    assert _envelope_version(sealed_after) == 2
    assert crypto.unseal(KEY_2, sealed_after, aad=CONTEXT) == b"after"
    assert new.unseal(sealed_before, aad=CONTEXT) == b"before"
    assert new.unseal(sealed_after, aad=CONTEXT) == b"after"
    with pytest.raises(crypto.InvalidEnvelope):  # the old keyring cannot read the new version
        old.unseal(sealed_after, aad=CONTEXT)


def test_rotated_without_a_key_draws_a_fresh_random_one():
    keyring = crypto.Keyring({1: KEY_1})
    first, second = keyring.rotated(), keyring.rotated()
    assert first.current_version == second.current_version == 2
    assert len(first.key(2)) == crypto.KEY_SIZE
    assert first.key(2) not in (KEY_1, second.key(2))


def test_rotated_refuses_a_bad_key():
    with pytest.raises(crypto.KeyringError):
        crypto.Keyring({1: KEY_1}).rotated(bytes(16))


def test_new_key_is_32_random_bytes():
    keys = {crypto.new_key() for _ in range(8)}
    assert len(keys) == 8
    assert all(isinstance(k, bytes) and len(k) == crypto.KEY_SIZE == 32 for k in keys)


# --- Opening ------------------------------------------------------------------


def test_an_envelope_naming_an_unknown_version_is_refused():
    keyring = crypto.Keyring({1: KEY_1, 2: KEY_2})
    foreign = crypto.seal(KEY_3, b"x", key_id=3, aad=CONTEXT)
    with pytest.raises(crypto.InvalidEnvelope):
        keyring.unseal(foreign, aad=CONTEXT)


def test_an_envelope_naming_a_known_version_with_another_key_is_refused():
    keyring = crypto.Keyring({1: KEY_1})
    forged = crypto.seal(KEY_3, b"x", key_id=1, aad=CONTEXT)
    with pytest.raises(crypto.InvalidEnvelope):
        keyring.unseal(forged, aad=CONTEXT)


def test_relabelling_an_envelope_to_another_known_version_is_refused():
    keyring = crypto.Keyring({1: KEY_1, 2: KEY_1})  # even with the same key: the key id is authenticated
    envelope = keyring.seal(b"x", aad=CONTEXT)
    relabelled = envelope[:1] + (1).to_bytes(4, "big") + envelope[HEADER_SIZE:]
    with pytest.raises(crypto.InvalidEnvelope):
        keyring.unseal(relabelled, aad=CONTEXT)


@pytest.mark.parametrize("envelope", [b"", b"\x01", bytes(32)], ids=["empty", "one-byte", "32-zero-bytes"])
def test_keyring_unseal_refuses_garbage_with_invalid_envelope(envelope):
    with pytest.raises(crypto.InvalidEnvelope):
        crypto.Keyring({1: KEY_1}).unseal(envelope, aad=CONTEXT)


def test_keyring_unseal_refuses_other_context():
    keyring = crypto.Keyring({1: KEY_1})
    envelope = keyring.seal(b"x", aad=CONTEXT)
    with pytest.raises(crypto.InvalidEnvelope):
        keyring.unseal(envelope, aad=crypto.principal_name_aad(principal_id="p_other"))


# --- Wrapping subject keys ----------------------------------------------------


def test_wrap_then_unwrap_round_trips():
    keyring = crypto.Keyring({1: KEY_1})
    subject_key = crypto.new_key()
    wrapped = crypto.wrap_key(keyring, subject_key, subject_id=SUBJECT, version=1)
    assert subject_key not in wrapped
    assert crypto.unwrap_key(keyring, wrapped, subject_id=SUBJECT, version=1) == subject_key


def test_wrapped_key_is_bound_by_subject_key_aad():
    keyring = crypto.Keyring({1: KEY_1})
    subject_key = crypto.new_key()
    wrapped = crypto.wrap_key(keyring, subject_key, subject_id=SUBJECT, version=4)
    assert keyring.unseal(wrapped, aad=crypto.subject_key_aad(subject_id=SUBJECT, version=4)) == subject_key


def test_unwrap_with_another_subject_is_refused():
    keyring = crypto.Keyring({1: KEY_1})
    wrapped = crypto.wrap_key(keyring, crypto.new_key(), subject_id=SUBJECT, version=1)
    with pytest.raises(crypto.InvalidEnvelope):
        crypto.unwrap_key(keyring, wrapped, subject_id="p_other", version=1)


def test_unwrap_with_another_version_is_refused():
    keyring = crypto.Keyring({1: KEY_1})
    wrapped = crypto.wrap_key(keyring, crypto.new_key(), subject_id=SUBJECT, version=1)
    with pytest.raises(crypto.InvalidEnvelope):
        crypto.unwrap_key(keyring, wrapped, subject_id=SUBJECT, version=2)


def test_unwrap_under_a_keyring_without_the_master_version_is_refused():
    wrapped = crypto.wrap_key(crypto.Keyring({1: KEY_1}), crypto.new_key(), subject_id=SUBJECT, version=1)
    with pytest.raises(crypto.InvalidEnvelope):
        crypto.unwrap_key(crypto.Keyring({2: KEY_2}), wrapped, subject_id=SUBJECT, version=1)


def test_wrapped_keys_survive_master_key_rotation():
    old = crypto.Keyring({1: KEY_1})
    subject_key = crypto.new_key()
    wrapped = crypto.wrap_key(old, subject_key, subject_id=SUBJECT, version=1)
    new = old.rotated(KEY_2)
    assert crypto.unwrap_key(new, wrapped, subject_id=SUBJECT, version=1) == subject_key
    rewrapped = crypto.wrap_key(new, subject_key, subject_id=SUBJECT, version=1)
    assert _envelope_version(rewrapped) == 2
    assert crypto.unwrap_key(new, rewrapped, subject_id=SUBJECT, version=1) == subject_key


@pytest.mark.parametrize("length", [0, 16, 31, 33])
def test_wrap_refuses_keys_that_are_not_32_bytes(length):
    with pytest.raises(crypto.KeyringError):
        crypto.wrap_key(crypto.Keyring({1: KEY_1}), bytes(length), subject_id=SUBJECT, version=1)


def test_unwrap_refuses_a_correctly_sealed_payload_that_is_not_a_32_byte_key():
    keyring = crypto.Keyring({1: KEY_1})
    short = keyring.seal(bytes(16), aad=crypto.subject_key_aad(subject_id=SUBJECT, version=1))
    with pytest.raises(crypto.InvalidEnvelope):
        crypto.unwrap_key(keyring, short, subject_id=SUBJECT, version=1)


# --- No key material in reprs ---------------------------------------------------


def test_repr_never_contains_key_material():
    keyring = crypto.Keyring({1: KEY_1, 2: KEY_2})
    text = repr(keyring) + str(keyring)
    assert "1" in text and "2" in text  # it does name the versions
    for key in (KEY_1, KEY_2):
        forms = {
            key.hex(),
            key.hex().upper(),
            base64.b64encode(key).decode(),
            base64.urlsafe_b64encode(key).decode(),
            base64.b64encode(key).decode().rstrip("="),
            repr(key),
            repr(key)[2:-1],
        }
        for form in forms:
            assert form not in text
        assert key.hex()[:16] not in text  # nor a recognisable prefix
        assert base64.b64encode(key).decode()[:12] not in text


def test_keyring_has_no_instance_dict_to_leak_through():
    keyring = crypto.Keyring({1: KEY_1})
    assert not hasattr(keyring, "__dict__")
    with pytest.raises(AttributeError):
        keyring.extra = KEY_1


# --- Associated-data encodings ----------------------------------------------------


def _record(**overrides) -> bytes:
    fields = {"record_id": "r_1", "subject_id": "p_1", "version": 1, "category": "health.labs", "part": "content"}
    return crypto.record_aad(**{**fields, **overrides})


def test_record_aad_does_not_confuse_field_boundaries():
    assert _record(record_id="ab", subject_id="c") != _record(record_id="a", subject_id="bc")
    assert _record(subject_id="p_1", category="x.y") != _record(subject_id="p_1x", category=".y")
    assert _record(record_id="", subject_id="r_1p_1") != _record(record_id="r_1", subject_id="p_1")


def test_subject_key_aad_does_not_confuse_field_boundaries():
    assert crypto.subject_key_aad(subject_id="p_1", version=11) != crypto.subject_key_aad(subject_id="p_11", version=1)


def test_record_aad_binds_every_field():
    base = _record()
    for change in (
        {"record_id": "r_2"},
        {"subject_id": "p_2"},
        {"version": 2},
        {"category": "health.notes"},
        {"part": "title"},
    ):
        assert _record(**change) != base, change
    assert _record() == base  # and is deterministic


def test_bindings_of_different_kinds_never_collide():
    encodings = {
        crypto.record_aad(record_id="x", subject_id="x", version=1, category="x", part="content"),
        crypto.subject_key_aad(subject_id="x", version=1),
        crypto.principal_name_aad(principal_id="x"),
    }
    assert len(encodings) == 3


def test_aad_encoding_is_length_prefixed_and_labelled():
    assert crypto.principal_name_aad(principal_id="p_é") == (
        b"\x00\x00\x00\x1ccivicvault/principal-name/v1" + b"\x00\x00\x00\x04p_\xc3\xa9"
    )
    assert crypto.subject_key_aad(subject_id="p", version=12) == (
        b"\x00\x00\x00\x19civicvault/subject-key/v1" + b"\x00\x00\x00\x01p" + b"\x00\x00\x00\x0212"
    )


@pytest.mark.parametrize("part", ["", "Content", "body", "title ", "content\x00"])
def test_record_aad_refuses_parts_other_than_content_title_and_signature(part):
    with pytest.raises(ValueError):
        _record(part=part)


@pytest.mark.parametrize("version", [0, -1])
def test_record_aad_refuses_versions_below_1(version):
    with pytest.raises(ValueError):
        _record(version=version)


@pytest.mark.parametrize("version", [0, -1])
def test_subject_key_aad_refuses_versions_below_1(version):
    with pytest.raises(ValueError):
        crypto.subject_key_aad(subject_id=SUBJECT, version=version)


def test_aad_frame_is_a_4_byte_big_endian_length():
    assert aad_module._frame(b"") == b"\x00\x00\x00\x00"
    assert aad_module._frame(b"x" * 258) == b"\x00\x00\x01\x02" + b"x" * 258
