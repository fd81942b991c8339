"""``civicvault attest``: the key made by ``init`` and shown, and offline verification with no database."""

import json
import stat
from datetime import UTC, datetime

from click.testing import CliRunner

from tests.vault.cli.test_cli import assert_one_sentence_error, run_process
from tests.vault.cli.test_startup import DATABASE, clean_env, heavy, run_traced
from vault.attestations import credential as vc
from vault.cli.main import cli
from vault.keys import attestation_key

NOW = datetime(2026, 11, 30, 10, tzinfo=UTC)


def _credential(seed: bytes, *, requester: str = "p-n6yilbmg6f3gqbut2j5mmmbwku") -> dict:
    key = attestation_key.AttestationKey(seed)
    body = vc.unsigned(
        credential_id="5f0c6e1a-8b7d-4e3a-9c2b-1d4f6a8e0b37",
        issuer=key.did,
        pseudonym="urn:civicvault:pseudonym:k3jx5q2w7m4np6rt2yb5vhz4ca6dsel7",
        predicate="adult",
        parameters={},
        result=True,
        include_self_asserted=False,
        requester=requester,
        now=NOW,
        valid_days=30,
    )
    return vc.sign(vc.with_evidence(body, ledger_event="ab" * 32, issuers=[]), seed, now=NOW)


def test_init_creates_the_key_once_private_and_key_show_prints_it(tmp_path):
    home = tmp_path / "home"
    first = run_process("init", "--home", home)
    assert first.returncode == 0, first.stderr
    assert "attestation key:" in first.stdout
    path = home / "attestation.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["format"] == "civicvault-attestation-key/1"
    before = path.read_bytes()
    again = run_process("init", "--home", home)
    assert again.returncode == 0 and "attestation key:" not in again.stdout and path.read_bytes() == before
    shown = run_process("attest", "key", "--show", "--home", home)
    assert shown.returncode == 0 and shown.stdout == attestation_key.read(path).did + "\n"
    # An existing home without the key (made before attestations) gets one from init; never overwritten.
    path.unlink()
    assert run_process("init", "--home", home).returncode == 0 and path.read_bytes() != before


def test_a_broken_key_file_is_one_sentence_and_never_replaced(tmp_path):
    home = tmp_path / "home"
    assert run_process("init", "--home", home).returncode == 0
    (home / "attestation.key").write_text("{}")
    assert_one_sentence_error(run_process("attest", "key", "--show", "--home", home))
    assert_one_sentence_error(run_process("init", "--home", home))
    assert (home / "attestation.key").read_text() == "{}"


def test_verify_offline_with_key_needs_no_home_and_no_database(tmp_path):
    seed = bytes(range(32))
    path = tmp_path / "credential.json"
    path.write_text(json.dumps(_credential(seed)))
    did = attestation_key.AttestationKey(seed).did
    env = clean_env(CIVICVAULT_HOME=str(tmp_path / "nowhere"))
    result, modules = run_traced(
        "-m", "vault.cli", "attest", "verify", str(path), "--key", did, "--at", "2026-12-01T00:00:00Z", env=env
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout == "valid: adult {} = true for urn:civicvault:pseudonym:k3jx5q2w7m4np6rt2yb5vhz4ca6dsel7\n"
    assert heavy(modules, DATABASE) == []
    assert not (tmp_path / "nowhere").exists()


def test_verify_without_key_uses_the_homes_key(tmp_path):
    home = tmp_path / "home"
    assert run_process("init", "--home", home).returncode == 0
    seed = attestation_key.read(home / "attestation.key").seed
    path = tmp_path / "credential.json"
    path.write_text(json.dumps(_credential(seed)))
    good = CliRunner().invoke(cli, ["attest", "verify", str(path), "--home", str(home), "--at", "2026-12-01T00:00:00Z"])
    assert good.exit_code == 0, good.output
    path.write_text(json.dumps(_credential(bytes(32))))  # signed by a key that is not this vault's
    bad = CliRunner().invoke(cli, ["attest", "verify", str(path), "--home", str(home), "--at", "2026-12-01T00:00:00Z"])
    assert bad.exit_code == 1 and "issuer is not the vault's key" in bad.output


def test_verify_refuses_bad_input_in_one_sentence(tmp_path):
    did = attestation_key.AttestationKey(bytes(32)).did
    notjson = tmp_path / "not.json"
    notjson.write_text("{")
    for args in (
        ["attest", "verify", str(notjson), "--key", did],
        ["attest", "verify", str(tmp_path / "missing.json"), "--key", did],
        ["attest", "verify", str(notjson), "--key", "did:key:zNotAKey"],
        ["attest", "verify", str(notjson), "--key", did, "--at", "yesterday"],
    ):
        assert_one_sentence_error(run_process(*args))
    path = tmp_path / "credential.json"
    path.write_text(json.dumps(_credential(bytes(32))))
    assert_one_sentence_error(run_process("attest", "verify", str(path), "--key", "did:key:zNotAKey"))
    assert_one_sentence_error(
        run_process("attest", "verify", str(path), "--key", did, "--requester", "p-aaaaaaaaaaaaaaaaaaaaaaaaaa")
    )


def test_verify_reads_standard_input_for_a_dash():
    seed = bytes(range(32))
    did = attestation_key.AttestationKey(seed).did
    args = ["attest", "verify", "-", "--key", did, "--at", "2026-12-01T00:00:00Z"]
    result = CliRunner().invoke(cli, args, input=json.dumps(_credential(seed)))
    assert result.exit_code == 0 and result.output.startswith("valid: adult {} = true"), result.output
