"""Property-based tests of ``crypto.seal`` / ``crypto.unseal`` (Hypothesis).

Random keys, plaintexts, caller contexts and key ids: sealing round-trips;
any single flipped bit, any truncation, any other context and any other key
is refused with ``InvalidEnvelope``; sealing is randomised; the header names
the key id. Example counts are kept small so the whole file runs in about a
second. Hypothesis's example database is disabled so no failing examples are
saved (Hypothesis still keeps its gitignored ``.hypothesis/constants`` cache).
"""

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import crypto
from crypto import _aesgcm
from crypto.envelope import HEADER_SIZE, MAX_KEY_ID, OVERHEAD

FAST = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

keys = st.binary(min_size=_aesgcm.KEY_SIZE, max_size=_aesgcm.KEY_SIZE)
plaintexts = st.binary(max_size=300)
contexts = st.binary(max_size=64)
key_ids = st.integers(min_value=0, max_value=MAX_KEY_ID)


@st.composite
def sealed(draw):
    """``(key, plaintext, aad, key_id, envelope)`` for a freshly sealed envelope."""
    key, plaintext, aad, key_id = draw(keys), draw(plaintexts), draw(contexts), draw(key_ids)
    return key, plaintext, aad, key_id, crypto.seal(key, plaintext, key_id=key_id, aad=aad)


def _refused(key: bytes, envelope: bytes, aad: bytes) -> bool:
    try:
        crypto.unseal(key, envelope, aad=aad)
    except crypto.InvalidEnvelope:
        return True
    return False


@FAST
@given(sealed())
def test_seal_then_unseal_round_trips(case):
    key, plaintext, aad, key_id, envelope = case
    assert crypto.unseal(key, envelope, aad=aad) == plaintext
    assert len(envelope) == OVERHEAD + len(plaintext)
    assert envelope[0] == crypto.ENVELOPE_VERSION
    assert len(plaintext) < 8 or plaintext not in envelope  # not stored in the clear


@FAST
@given(sealed(), st.data())
def test_any_single_flipped_bit_is_refused(case, data):
    key, _, aad, _, envelope = case
    bit = data.draw(st.integers(min_value=0, max_value=8 * len(envelope) - 1), label="bit")
    tampered = bytearray(envelope)
    tampered[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(crypto.InvalidEnvelope):
        crypto.unseal(key, bytes(tampered), aad=aad)


def test_every_single_bit_flip_of_one_envelope_is_refused():
    """The exhaustive version of the property above, for one small envelope."""
    key, aad = bytes(range(32)), b"context"
    envelope = crypto.seal(key, b"twelve bytes", key_id=7, aad=aad)
    flips = []
    for bit in range(8 * len(envelope)):
        tampered = bytearray(envelope)
        tampered[bit // 8] ^= 1 << (bit % 8)
        flips.append(_refused(key, bytes(tampered), aad))
    assert len(flips) == 8 * (OVERHEAD + 12) and all(flips)


@FAST
@given(sealed(), st.data())
def test_any_truncation_is_refused(case, data):
    key, _, aad, _, envelope = case
    length = data.draw(st.integers(min_value=0, max_value=len(envelope) - 1), label="length")
    with pytest.raises(crypto.InvalidEnvelope):
        crypto.unseal(key, envelope[:length], aad=aad)


@FAST
@given(sealed(), st.binary(min_size=1, max_size=16))
def test_appended_bytes_are_refused(case, extra):
    key, _, aad, _, envelope = case
    with pytest.raises(crypto.InvalidEnvelope):
        crypto.unseal(key, envelope + extra, aad=aad)


@FAST
@given(sealed(), contexts)
def test_a_different_aad_is_refused(case, other):
    key, _, aad, _, envelope = case
    assume(other != aad)
    with pytest.raises(crypto.InvalidEnvelope):
        crypto.unseal(key, envelope, aad=other)


@FAST
@given(sealed(), keys)
def test_a_different_key_is_refused(case, other):
    key, _, aad, _, envelope = case
    assume(other != key)
    with pytest.raises(crypto.InvalidEnvelope):
        crypto.unseal(other, envelope, aad=aad)


@FAST
@given(keys, plaintexts, contexts, key_ids)
def test_two_seals_of_the_same_plaintext_differ(key, plaintext, aad, key_id):
    first = crypto.seal(key, plaintext, key_id=key_id, aad=aad)
    second = crypto.seal(key, plaintext, key_id=key_id, aad=aad)
    assert (
        first[HEADER_SIZE : HEADER_SIZE + _aesgcm.NONCE_SIZE] != second[HEADER_SIZE : HEADER_SIZE + _aesgcm.NONCE_SIZE]
    )
    assert first != second
    assert crypto.unseal(key, first, aad=aad) == crypto.unseal(key, second, aad=aad) == plaintext


@FAST
@given(sealed())
def test_envelope_key_id_returns_the_key_id(case):
    *_, key_id, envelope = case
    assert crypto.envelope_key_id(envelope) == key_id
    assert envelope[1:HEADER_SIZE] == key_id.to_bytes(4, "big")


@FAST
@given(st.binary(max_size=OVERHEAD - 2))
def test_envelope_key_id_refuses_anything_too_short(rest):
    data = bytes([crypto.ENVELOPE_VERSION]) + rest  # a plausible header, too short to be an envelope
    with pytest.raises(crypto.InvalidEnvelope):
        crypto.envelope_key_id(data)
    with pytest.raises(crypto.InvalidEnvelope):
        crypto.envelope_key_id(data[:-1])


@FAST
@given(sealed(), st.integers(min_value=0, max_value=255))
def test_envelope_key_id_refuses_other_versions(case, version):
    assume(version != crypto.ENVELOPE_VERSION)
    envelope = bytes([version]) + case[-1][1:]
    with pytest.raises(crypto.InvalidEnvelope):
        crypto.envelope_key_id(envelope)


@pytest.mark.parametrize("key_id", [-1, MAX_KEY_ID + 1])
def test_seal_refuses_key_ids_outside_32_bits(key_id):
    with pytest.raises(ValueError):
        crypto.seal(bytes(32), b"x", key_id=key_id, aad=b"")
