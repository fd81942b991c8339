"""``civicvault anchor deploy|now|status|key`` and ``civicvault verify`` against a real node, end to end."""

import json
import os
import re
import shutil
import stat

import pytest
from click.testing import CliRunner

from tests.anchoring.conftest import OWNER_KEY, free_port
from tests.anchoring.helpers import rewrite_history
from vault.cli.main import cli
from vault.core.config import Settings
from vault.runtime import Vault


def run(*args, env):
    result = CliRunner().invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)
    assert OWNER_KEY[2:] not in result.output and OWNER_KEY[2:] not in (result.stderr or "")
    return result


def one_sentence_error(result) -> str:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("verifying")]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in result.output, result.stderr
    return lines[0]


@pytest.fixture
def env(tmp_path, ganache):
    return {
        "CIVICVAULT_HOME": str(tmp_path / "home"),
        "CIVICVAULT_ANCHOR_RPC_URL": ganache.url,
        "CIVICVAULT_ANCHOR_PRIVATE_KEY": OWNER_KEY,
        "CIVICVAULT_DATABASE_URL": None,
        "CIVICVAULT_MASTER_KEY": None,
        "CIVICVAULT_ANCHOR_CONTRACT": None,
    }


def test_deploy_anchor_status_verify_then_a_rewritten_copy_fails(env, tmp_path):
    assert run("init", env=env).exit_code == 0
    assert run("demo", env=env).exit_code == 0
    assert run("checkpoint", env=env).exit_code == 0
    deployed = run("anchor", "deploy", env=env)
    assert deployed.exit_code == 0, deployed.output
    address = re.search(r"contract: (0x[0-9a-fA-F]{40})", deployed.output).group(1)
    assert json.loads((tmp_path / "home" / "anchor-contract.json").read_text())["address"] == address
    assert "already recorded" in one_sentence_error(run("anchor", "deploy", env=env))

    anchored = run("anchor", "now", env=env)
    assert anchored.exit_code == 0 and anchored.output.startswith("anchored: size "), anchored.output
    size, block = re.search(r"size (\d+) .* block (\d+)", anchored.output).groups()
    assert run("anchor", "now", env=env).output.startswith(f"already on chain: size {size} ")
    status = run("anchor", "status", "--json", env=env)
    [shown] = json.loads(status.output)
    assert (shown["tree_size"], shown["block_number"], shown["contract"]) == (int(size), int(block), address)
    assert f"block {block}" in run("anchor", "status", env=env).output

    verified = run("verify", env=env)
    assert verified.exit_code == 0 and "anchors: 1 anchor checked on chain" in verified.output, verified.output

    # A copy of the data home whose history is rewritten after the anchor, checkpoints re-signed.
    shutil.copytree(tmp_path / "home", tmp_path / "copy")
    copy_env = {**env, "CIVICVAULT_HOME": str(tmp_path / "copy")}
    settings = Settings.from_env(tmp_path / "copy", environ={})
    vault = Vault.open(settings)
    rewrite_history(vault, settings, index=3)
    vault.close()
    failed = one_sentence_error(run("verify", env=copy_env))
    assert f"contradicts the anchor of size {size}" in failed and f"block {block}" in failed and address in failed
    assert run("verify", env=env).exit_code == 0  # the original is untouched


def test_a_node_that_is_down_fails_in_one_sentence(env):
    run("init", env=env)
    run("demo", env=env)
    run("checkpoint", env=env)
    down = {
        **env,
        "CIVICVAULT_ANCHOR_RPC_URL": f"http://127.0.0.1:{free_port()}",
        "CIVICVAULT_ANCHOR_CONTRACT": "0x" + "ab" * 20,
    }
    message = one_sentence_error(run("anchor", "now", env=down))
    assert "did not answer" in message
    assert "did not answer" in one_sentence_error(
        run("anchor", "deploy", env={**down, "CIVICVAULT_ANCHOR_CONTRACT": None})
    )
    assert "nothing anchored yet" in run("anchor", "status", env=down).output
    assert "did not answer" in one_sentence_error(run("verify", env=down))  # never passes unchecked


def test_configuration_mistakes_are_one_sentence(env, tmp_path):
    run("init", env=env)
    unset = {**env, "CIVICVAULT_ANCHOR_RPC_URL": None}
    assert "CIVICVAULT_ANCHOR_RPC_URL" in one_sentence_error(run("anchor", "now", env=unset))
    assert "anchor deploy" in one_sentence_error(run("anchor", "now", env=env))  # no contract yet
    assert "64 hex digits" in one_sentence_error(
        run("anchor", "deploy", env={**env, "CIVICVAULT_ANCHOR_PRIVATE_KEY": "0x1234"})
    )
    assert "20-byte" in one_sentence_error(run("anchor", "now", env={**env, "CIVICVAULT_ANCHOR_CONTRACT": "nope"}))
    assert "whole number" in one_sentence_error(run("anchor", "now", env={**env, "CIVICVAULT_ANCHOR_CHAIN_ID": "x"}))
    verified = run("verify", env=unset)
    assert verified.exit_code == 0 and "anchors: no anchors" in verified.output


def test_the_key_file_is_created_0600_shown_by_address_only_and_refused_when_readable(env, tmp_path):
    run("init", env=env)
    file_env = {**env, "CIVICVAULT_ANCHOR_PRIVATE_KEY": None}
    created = run("anchor", "key", env=file_env)
    path = tmp_path / "home" / "anchor.key"
    assert created.exit_code == 0 and "(created, mode 0600)" in created.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secret = json.loads(path.read_text())["private_key"]
    assert secret not in created.output and re.search(r"account: 0x[0-9a-fA-F]{40}", created.output)
    again = run("anchor", "key", env=file_env)
    assert "(created" not in again.output and again.output.splitlines()[0] == created.output.splitlines()[0]
    os.chmod(path, 0o644)
    message = one_sentence_error(run("anchor", "deploy", env=file_env))
    assert "readable by others" in message and secret not in message


def test_without_the_ethereum_extra_the_vault_works_and_anchoring_says_what_to_install(tmp_path, monkeypatch):
    import sys

    for name in ("web3", "eth_account", "vault.anchoring.chain"):
        monkeypatch.setitem(sys.modules, name, None)  # as if web3 were not installed
    env = {
        "CIVICVAULT_HOME": str(tmp_path / "home"),
        "CIVICVAULT_ANCHOR_RPC_URL": "http://127.0.0.1:8545",
        "CIVICVAULT_ANCHOR_PRIVATE_KEY": OWNER_KEY,
        "CIVICVAULT_DATABASE_URL": None,
        "CIVICVAULT_MASTER_KEY": None,
        "CIVICVAULT_ANCHOR_CONTRACT": "0x" + "ab" * 20,
    }
    assert run("init", env=env).exit_code == 0 and run("demo", env=env).exit_code == 0
    for command in (("anchor", "now"), ("anchor", "deploy"), ("anchor", "key")):
        assert "pip install '.[ethereum]'" in one_sentence_error(run(*command, env=env))
    verified = run("verify", env={**env, "CIVICVAULT_ANCHOR_RPC_URL": None})
    assert verified.exit_code == 0 and "anchors: no anchors" in verified.output
