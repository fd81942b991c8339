"""The ``civicvault`` command line: behaviour and one-sentence errors."""

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from vault.cli.main import cli


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


def run(*args, env=None):
    result = CliRunner().invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)
    return result


def run_process(*args, env=None):
    """The installed entry point, as a user runs it."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICVAULT_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "vault.cli", *map(str, args)], capture_output=True, text=True, env=full_env
    )


def assert_one_sentence_error(result):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")


def test_init_is_idempotent(home):
    first = run("init", "--home", home)
    assert first.exit_code == 0 and "(created)" in first.output
    key = (home / "master.key").read_bytes()
    second = run("--home", home, "init")
    assert second.exit_code == 0 and "(created)" not in second.output
    assert (home / "master.key").read_bytes() == key


def test_principal_add_json_list_and_revoke(home):
    run("init", "--home", home)
    added = run("principal", "add", "--role", "clinic", "--name", "Riverside Clinic", "--json", "--home", home)
    assert added.exit_code == 0
    data = json.loads(added.stdout)
    assert (
        set(data) == {"id", "role", "name", "token"} and data["role"] == "clinic" and data["token"].startswith("cvt_")
    )

    listing = json.loads(run("principal", "list", "--json", "--home", home).stdout)
    assert [(p["id"], p["name"], p["live_tokens"]) for p in listing] == [(data["id"], "Riverside Clinic", 1)]
    assert data["token"] not in run("principal", "list", "--home", home).stdout

    revoked = run("principal", "revoke-token", data["id"], "--home", home)
    assert revoked.exit_code == 0 and "revoked 1 token" in revoked.output
    assert json.loads(run("principal", "list", "--json", "--home", home).stdout)[0]["live_tokens"] == 0
    token = run("principal", "token", data["id"], "--home", home).stdout.strip()
    assert token.startswith("cvt_") and token != data["token"]


def test_demo_loads_once_and_reprints_saved_tokens(home):
    run("init", "--home", home)
    first = run("demo", "--if-new", "--home", home)
    assert first.exit_code == 0 and "Demo data loaded" in first.output
    for step in (
        "grants Riverside Community Clinic health.* for treatment",
        "requests tenancy.income",
        "Amina approves it",
        "then revokes it",
        "Tomasz Nowak grants Northside Payroll Services write on tenancy.income",
        "issues Tomasz's income statement, signed",
    ):
        assert step in first.output
    people = json.loads((home / "demo-tokens.json").read_text())
    assert {p["role"] for p in people} == {"resident", "clinic", "landlord", "agency", "compliance", "admin"}
    second = run("demo", "--if-new", "--home", home)
    assert "already has data" in second.output and people[0]["token"] in second.output
    assert len(json.loads(run("principal", "list", "--json", "--home", home).stdout)) == len(people)
    again = run("demo", "--home", home)  # without --if-new: another set, tokens added to the file
    assert again.exit_code == 0
    assert len(json.loads((home / "demo-tokens.json").read_text())) == 2 * len(people)


def test_errors_are_one_sentence_without_traceback(tmp_path):
    home = tmp_path / "home"
    assert_one_sentence_error(run_process("principal", "list", "--home", home))  # no key yet
    assert run_process("init", "--home", home).returncode == 0
    assert_one_sentence_error(run_process("principal", "revoke-token", "p_nobody", "--home", home))
    assert_one_sentence_error(run_process("principal", "add", "--role", "resident", "--name", " ", "--home", home))
    result = run_process("principal", "add", "--role", "mayor", "--name", "X", "--home", home)
    assert result.returncode == 2 and "Traceback" not in result.stderr  # click's usage error
    (home / "master.key").write_text("garbage")
    assert_one_sentence_error(run_process("serve", "--home", home))
    assert_one_sentence_error(run_process("init", "--home", home))


def test_bad_database_url_is_one_sentence(tmp_path):
    env = {"CIVICVAULT_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", "CIVICVAULT_MASTER_KEY": "A" * 43 + "="}
    assert_one_sentence_error(run_process("init", "--home", tmp_path, env=env))
    assert_one_sentence_error(run_process("principal", "list", "--home", tmp_path, env=env))
    env["CIVICVAULT_DATABASE_URL"] = "::::"
    assert_one_sentence_error(run_process("principal", "list", "--home", tmp_path, env=env))


def test_files_in_the_home_are_private(tmp_path):
    home = tmp_path / "home"
    assert run_process("init", "--home", home).returncode == 0
    assert run_process("demo", "--home", home).returncode == 0
    for path in home.iterdir():
        assert path.stat().st_mode & 0o077 == 0, path.name
