"""``civicvault init`` against a database that already holds data never writes a new master key.

A regression test for what broke: ``init`` next to an existing database whose
key file was missing or wrong created a new key and exited 0, and the vault
then failed on every request. Now it refuses in one sentence and writes nothing.
"""

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import new_master_key
from vault.cli.main import cli

NO_ENV_KEY = {"CIVICVAULT_MASTER_KEY": None, "CIVICVAULT_DATABASE_URL": None, "CIVICVAULT_SECRETS_DATABASE_URL": None}


def run(*args: str, **env: str | None):
    return CliRunner().invoke(cli, list(args), env={**NO_ENV_KEY, **env})


def init(home: Path, **env: str | None):
    return run("init", "--home", str(home), **env)


def add(home: Path, role: str, **env: str | None) -> dict:
    result = run("principal", "add", "--role", role, "--name", f"A {role}", "--json", "--home", str(home), **env)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    assert init(home).exit_code == 0
    add(home, "admin")
    add(home, "resident")
    return home


def other_key_file(tmp_path: Path) -> bytes:
    other = tmp_path / "other"
    assert init(other).exit_code == 0
    return (other / "master.key").read_bytes()


def test_init_without_the_key_of_an_existing_database_refuses_and_writes_no_key(home):
    (home / "master.key").rename(home / "master.key.aside")
    result = init(home)
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Error: The database already holds data sealed under a master key and there is no key at "
        f"{home / 'master.key'}: restore that key file (or set CIVICVAULT_MASTER_KEY); init never creates a new "
        "key for an existing database."
    )
    assert not (home / "master.key").exists()
    # Put back, the right key opens everything again.
    (home / "master.key.aside").rename(home / "master.key")
    assert init(home).exit_code == 0
    assert run("principal", "list", "--home", str(home)).exit_code == 0


def test_init_with_another_key_file_refuses_and_leaves_it_alone(home, tmp_path):
    right = (home / "master.key").read_bytes()
    wrong = other_key_file(tmp_path)
    (home / "master.key").write_bytes(wrong)
    result = init(home)
    assert result.exit_code == 1
    assert result.output.strip() == "Error: The master key does not open this database's data: is it the right key?"
    assert (home / "master.key").read_bytes() == wrong
    (home / "master.key").write_bytes(right)
    assert init(home).exit_code == 0


def test_init_with_a_wrong_environment_key_refuses(home):
    result = init(home, CIVICVAULT_MASTER_KEY=new_master_key())
    assert result.exit_code == 1
    assert result.output.strip() == "Error: The master key does not open this database's data: is it the right key?"


def test_a_database_of_residents_only_is_checked_through_their_subject_keys(tmp_path):
    # No principal with a name sealed under the master key alone: the check unwraps a resident's subject key.
    home = tmp_path / "home"
    assert init(home).exit_code == 0
    add(home, "resident")
    (home / "master.key").write_bytes(other_key_file(tmp_path))
    result = init(home)
    assert result.exit_code == 1
    assert "do not open this database's data: is it the right key?" in result.output
    (home / "master.key").unlink()
    result = init(home)
    assert result.exit_code == 1 and "init never creates a new key for an existing database" in result.output
    assert not (home / "master.key").exists()


def test_a_copied_database_with_a_missing_key_is_refused(home, tmp_path):
    """The restore mistake: a database copied into a fresh home without its key file."""
    fresh = tmp_path / "fresh"
    fresh.mkdir(mode=0o700)
    for name in ("vault.db", "subject-secrets.db"):  # SQLite's online backup, as docs/operations.md says
        with closing(sqlite3.connect(home / name)) as source, closing(sqlite3.connect(fresh / name)) as copy:
            source.backup(copy)
    result = init(fresh)
    assert result.exit_code == 1 and "there is no key at" in result.output
    assert sorted(p.name for p in fresh.iterdir()) == ["subject-secrets.db", "vault.db"]


def test_an_initialised_but_empty_database_may_still_get_its_first_key(tmp_path):
    # Nothing is sealed yet, so a new key loses nothing.
    home = tmp_path / "home"
    assert init(home).exit_code == 0
    (home / "master.key").unlink()
    result = init(home)
    assert result.exit_code == 0, result.output
    assert (home / "master.key").exists()
    add(home, "resident")
