"""Key seed files: created once and private, never replaced, and anything else refused by name."""

import base64
import json
import os
import stat

import pytest

from vault.core.errors import ConfigError
from vault.keys import attestation_key, ledger_key, seed_files

KINDS = [
    pytest.param(ledger_key, "ledger.key", "ledger signing key", id="ledger"),
    pytest.param(attestation_key, "attestation.key", "attestation key", id="attestation"),
]


@pytest.mark.parametrize(("module", "name", "what"), KINDS)
def test_created_once_private_and_never_replaced(tmp_path, module, name, what):
    path = tmp_path / name
    assert module.create(path) is True
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    first = path.read_bytes()
    assert module.create(path) is False  # an existing key is checked, not replaced
    assert path.read_bytes() == first
    assert json.loads(first)["format"] == module.FORMAT


@pytest.mark.parametrize(("module", "name", "what"), KINDS)
@pytest.mark.parametrize(
    "content",
    [
        "",
        "not json",
        "[]",
        '{"seed": "AAAA"}',
        json.dumps({"format": "civicvault-other-key/1", "seed": base64.b64encode(bytes(32)).decode()}),
        "{{format}}",  # the right format, a seed that is not base64
        "{{format31}}",  # the right format, 31 bytes
    ],
)
def test_anything_but_a_key_of_its_format_is_refused_by_name(tmp_path, module, name, what, content):
    path = tmp_path / name
    if content == "{{format}}":
        content = json.dumps({"format": module.FORMAT, "seed": "not base64!"})
    elif content == "{{format31}}":
        content = json.dumps({"format": module.FORMAT, "seed": base64.b64encode(bytes(31)).decode()})
    path.write_text(content)
    with pytest.raises(ConfigError, match=f"is not a CivicVault {what}"):
        module.read(path)
    with pytest.raises(ConfigError):
        module.create(path)  # and init refuses it rather than replacing it
    assert path.read_text() == content


@pytest.mark.parametrize(("module", "name", "what"), KINDS)
def test_a_missing_file_says_to_run_init(tmp_path, module, name, what):
    with pytest.raises(ConfigError, match=f"No {what} at .*: run 'civicvault init'"):
        module.read(tmp_path / name)


def test_a_ledger_key_file_is_not_an_attestation_key(tmp_path):
    path = tmp_path / "key"
    ledger_key.create(path)
    with pytest.raises(ConfigError, match="not a CivicVault attestation key"):
        attestation_key.read(path)


def test_a_writer_racing_past_the_existence_check_cannot_replace_the_key(tmp_path, monkeypatch):
    path = tmp_path / "raced.key"
    seed_files.create(path, format="f/1", seed=bytes(32), what="test key")
    before = path.read_bytes()
    monkeypatch.setattr(type(path), "exists", lambda self: False)  # the other init checked before this one wrote
    with pytest.raises(FileExistsError):
        seed_files.create(path, format="f/1", seed=b"\x01" * 32, what="test key")
    assert path.read_bytes() == before


def test_the_attestation_key_is_derived_once_per_file_and_read_again_when_replaced(tmp_path):
    path = tmp_path / "attestation.key"
    attestation_key.create(path)
    first = attestation_key.read(path)
    assert attestation_key.read(path) is first  # the public key is not derived again for the same file
    path.unlink()
    with pytest.raises(ConfigError, match="No attestation key"):
        attestation_key.read(path)  # a removed file is never served from memory
    attestation_key.create(path)
    assert attestation_key.read(path).did != first.did
