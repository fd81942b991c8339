"""Settings, the master key file and 'no key, no start'."""

import base64
import json
import os
import stat

import pytest

from crypto import Keyring
from vault.core.config import Settings
from vault.core.errors import ConfigError
from vault.core.keyfile import keyring_from_env, read_keyring, write_keyring
from vault.runtime import Vault, init_home


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def test_defaults_follow_the_contract(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env(environ={})
    assert settings.home == tmp_path / "civicvault-data"
    assert settings.database_url == f"sqlite:///{tmp_path / 'civicvault-data' / 'vault.db'}"
    assert settings.master_key is None


def test_home_option_beats_the_environment(tmp_path):
    settings = Settings.from_env(tmp_path / "a", environ={"CIVICVAULT_HOME": str(tmp_path / "b")})
    assert settings.home == tmp_path / "a"
    assert Settings.from_env(environ={"CIVICVAULT_HOME": str(tmp_path / "b")}).home == tmp_path / "b"


def test_database_url_and_limits_from_the_environment(tmp_path):
    env = {
        "CIVICVAULT_HOME": str(tmp_path),
        "CIVICVAULT_DATABASE_URL": "postgresql://x@y/z",
        "CIVICVAULT_MAX_REQUEST_BYTES": "4096",
    }
    settings = Settings.from_env(environ=env)
    assert settings.database_url == "postgresql://x@y/z" and settings.max_request_bytes == 4096
    with pytest.raises(ConfigError, match="MAX_REQUEST_BYTES"):
        Settings.from_env(environ={**env, "CIVICVAULT_MAX_REQUEST_BYTES": "lots"})


def test_init_creates_a_0600_key_file_and_never_overwrites_it(tmp_path):
    settings = Settings.from_env(tmp_path / "home", environ={})
    report = init_home(settings)
    assert report.home_created and report.key_created
    mode = stat.S_IMODE(os.stat(settings.key_file).st_mode)
    assert mode == 0o600
    assert stat.S_IMODE(os.stat(settings.home).st_mode) == 0o700
    before = settings.key_file.read_bytes()
    again = init_home(settings)
    assert not again.key_created and settings.key_file.read_bytes() == before
    assert read_keyring(settings.key_file).current_version == 1


def test_no_key_no_start(tmp_path):
    settings = Settings.from_env(tmp_path / "home", environ={})
    init_home(settings)
    settings.key_file.unlink()
    with pytest.raises(ConfigError, match="No master key .*civicvault init"):
        Vault.open(settings)


def test_a_corrupt_key_file_is_an_error_not_replaced(tmp_path):
    settings = Settings.from_env(tmp_path / "home", environ={})
    init_home(settings)
    settings.key_file.write_text("{not json")
    with pytest.raises(ConfigError, match="not a CivicVault keyring"):
        init_home(settings)
    assert settings.key_file.read_text() == "{not json"


@pytest.mark.parametrize(
    "payload",
    [
        {"format": "other", "keys": {}},
        {"format": "civicvault-keyring/1", "keys": {"1": "short"}},
        {"format": "civicvault-keyring/1", "keys": {"x": b64(bytes(32))}},
        {"format": "civicvault-keyring/1", "keys": {}},
        [],
    ],
)
def test_malformed_key_files_are_refused(tmp_path, payload):
    path = tmp_path / "master.key"
    path.write_text(json.dumps(payload))
    with pytest.raises(ConfigError):
        read_keyring(path)


def test_an_uninitialised_database_is_a_clear_error(tmp_path):
    settings = Settings.from_env(tmp_path, environ={"CIVICVAULT_MASTER_KEY": b64(bytes(32))})
    with pytest.raises(ConfigError, match="schema is missing"):
        Vault.open(settings)


def test_env_key_single_and_versioned_forms():
    single = keyring_from_env(b64(bytes(range(32))))
    assert single.versions == (1,) and single.key(1) == bytes(range(32))
    versioned = keyring_from_env(f"1:{b64(bytes(32))},3:{b64(bytes([7]) * 32)}")
    assert versioned.versions == (1, 3) and versioned.current_version == 3


@pytest.mark.parametrize(
    "value", ["", "not base64!", b64(bytes(31)), "0:" + b64(bytes(32)), "a:" + b64(bytes(32)), "1:" + b64(bytes(16))]
)
def test_bad_env_keys_are_refused(value):
    with pytest.raises(ConfigError):
        keyring_from_env(value)


def test_env_key_overrides_the_key_file(tmp_path):
    home = tmp_path / "home"
    init_home(Settings.from_env(home, environ={}))
    settings = Settings.from_env(home, environ={"CIVICVAULT_MASTER_KEY": b64(bytes(32))})
    assert settings.load_keyring().key(1) == bytes(32)


def test_write_keyring_replace_is_atomic_and_keeps_mode(tmp_path):
    path = tmp_path / "master.key"
    ring = Keyring({1: bytes(32)})
    write_keyring(path, ring)
    with pytest.raises(ConfigError, match="Refusing to overwrite"):
        write_keyring(path, ring.rotated())
    write_keyring(path, ring.rotated(bytes([1]) * 32), replace=True)
    assert read_keyring(path).versions == (1, 2)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert not path.with_name("master.key.tmp").exists()


def test_unsupported_database_is_a_clear_error(tmp_path):
    settings = Settings.from_env(
        tmp_path, environ={"CIVICVAULT_DATABASE_URL": "mysql://x/y", "CIVICVAULT_MASTER_KEY": b64(bytes(32))}
    )
    with pytest.raises(ConfigError, match="Unsupported database"):
        Vault.open(settings)


def test_empty_variables_count_as_unset(tmp_path):
    settings = Settings.from_env(
        environ={"CIVICVAULT_HOME": str(tmp_path), "CIVICVAULT_MAX_REQUEST_BYTES": "", "CIVICVAULT_MASTER_KEY": ""}
    )
    assert settings.max_request_bytes == 1024 * 1024 and settings.master_key is None


def test_a_version_named_twice_is_refused():
    with pytest.raises(ConfigError, match="twice"):
        keyring_from_env(f"1:{b64(bytes(32))},1:{b64(bytes([1]) * 32)}")


def test_consent_limits_from_the_environment(tmp_path):
    settings = Settings.from_env(
        tmp_path,
        environ={
            "CIVICVAULT_MAX_GRANT_DAYS": "10",
            "CIVICVAULT_MAX_DELEGATION_DAYS": "20",
            "CIVICVAULT_BREAK_GLASS_MINUTES": "15",
        },
    )
    assert settings.limits.max_grant_days == 10 and settings.limits.default_grant_days == 10
    assert settings.limits.max_delegation_days == 20 and settings.limits.break_glass_minutes == 15
    with pytest.raises(ConfigError, match="BREAK_GLASS"):
        Settings.from_env(tmp_path, environ={"CIVICVAULT_BREAK_GLASS_MINUTES": "0"})


@pytest.mark.parametrize("value", ["²", "١٢", "１２", "12 ", "-3", "0x10"])
def test_whole_numbers_are_ascii_digits_only(tmp_path, value):
    """Unicode digits are not numbers here: '²' used to escape as a ValueError, '١٢' to parse as 12."""
    with pytest.raises(ConfigError, match="CIVICVAULT_MAX_GRANT_DAYS must be a whole number"):
        Settings.from_env(tmp_path, environ={"CIVICVAULT_MAX_GRANT_DAYS": value})


@pytest.mark.parametrize("origin", ["civic vault", "a+b", "civic\x00vault", "civic\u200bvault", "x" * 201])
def test_a_ledger_origin_that_cannot_head_a_checkpoint_is_refused(tmp_path, origin):
    with pytest.raises(ConfigError, match="CIVICVAULT_LEDGER_ORIGIN"):
        Settings.from_env(tmp_path, environ={"CIVICVAULT_LEDGER_ORIGIN": origin})


def test_web_session_settings_default_to_hipaa_logoff_and_are_checked(tmp_path):
    settings = Settings.from_env(tmp_path, environ={})
    assert (settings.web_sessions.idle_minutes, settings.web_sessions.max_hours) == (15, 12)
    env = {"CIVICVAULT_SESSION_IDLE_MINUTES": "5", "CIVICVAULT_SESSION_MAX_HOURS": "1"}
    assert Settings.from_env(tmp_path, environ=env).web_sessions.idle_minutes == 5
    for name, value in (
        ("CIVICVAULT_SESSION_IDLE_MINUTES", "0"),
        ("CIVICVAULT_SESSION_IDLE_MINUTES", "ten"),
        ("CIVICVAULT_SESSION_IDLE_MINUTES", "1441"),
        ("CIVICVAULT_SESSION_IDLE_MINUTES", "-5"),
        ("CIVICVAULT_SESSION_MAX_HOURS", "0"),
        ("CIVICVAULT_SESSION_MAX_HOURS", "721"),
        ("CIVICVAULT_SESSION_MAX_HOURS", "1.5"),
    ):
        with pytest.raises(ConfigError, match=name):
            Settings.from_env(tmp_path, environ={name: value})
    with pytest.raises(ConfigError, match="must not exceed"):
        Settings.from_env(
            tmp_path, environ={"CIVICVAULT_SESSION_IDLE_MINUTES": "61", "CIVICVAULT_SESSION_MAX_HOURS": "1"}
        )


def test_attestation_settings(tmp_path):
    settings = Settings.from_env(tmp_path, environ={})
    assert settings.attestation_valid_days == 30 and settings.rate_limits.attestations == "100/hour"
    assert settings.attestation_key_file == tmp_path / "attestation.key"
    env = {"CIVICVAULT_ATTESTATION_VALID_DAYS": "7", "CIVICVAULT_RATE_LIMIT_ATTESTATIONS": "10/hour"}
    tuned = Settings.from_env(tmp_path, environ=env)
    assert tuned.attestation_valid_days == 7 and tuned.rate_limits.attestations == "10/hour"
    for bad in ({"CIVICVAULT_ATTESTATION_VALID_DAYS": "0"}, {"CIVICVAULT_ATTESTATION_VALID_DAYS": "367"}):
        with pytest.raises(ConfigError):
            Settings.from_env(tmp_path, environ=bad)
    with pytest.raises(ConfigError):
        Settings.from_env(tmp_path, environ={"CIVICVAULT_RATE_LIMIT_ATTESTATIONS": "lots"})
