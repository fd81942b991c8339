"""Regressions: odd argument types fail closed with the documented error."""

import pytest

import crypto


@pytest.mark.parametrize("envelope", [None, 40, "x" * 40, [1] * 40])
def test_unseal_of_a_non_bytes_envelope_is_invalid_envelope(envelope):
    with pytest.raises(crypto.InvalidEnvelope):
        crypto.unseal(bytes(32), envelope, aad=b"")
    with pytest.raises(crypto.InvalidEnvelope):
        crypto.Keyring({1: bytes(32)}).unseal(envelope, aad=b"")


def test_bytearray_and_memoryview_envelopes_open():
    sealed = crypto.seal(bytes(32), b"data", key_id=1, aad=b"ctx")
    assert crypto.unseal(bytes(32), bytearray(sealed), aad=b"ctx") == b"data"
    assert crypto.unseal(bytes(32), memoryview(sealed), aad=b"ctx") == b"data"


@pytest.mark.parametrize("version", [True, 1.0, "1"])
def test_versions_must_be_true_integers(version):
    with pytest.raises(crypto.KeyringError):
        crypto.Keyring({version: bytes(32)})
    with pytest.raises(ValueError):
        crypto.record_aad(record_id="r", subject_id="p", version=version, category="health.labs", part="content")
    with pytest.raises(ValueError):
        crypto.subject_key_aad(subject_id="p", version=version)
