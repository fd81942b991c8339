"""``civicvault`` starts fast: ``--help`` and ``principal list`` load no heavy library.

py-ecc builds its curve tables on import (most of a second), web3 and Flask are
large, and gunicorn is for ``serve`` only; ``--help`` needs no database library
either. Each case runs the command line in a fresh interpreter under
``python -X importtime`` and names every module it imported, so that a
module-level import slipped into the command line (or into what it imports)
fails here, whatever the machine's speed.
"""

import os
import subprocess
import sys

import pytest

from tests.conftest import new_master_key

# Never on the way to --help or principal list: BLS, the Ethereum client, the web stack.
HEAVY = {"py_ecc", "web3", "flask", "flask_smorest", "gunicorn", "werkzeug"}
# --help does not open a database either.
DATABASE = {"sqlalchemy", "alembic"}


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICVAULT_")}
    env.update(extra)
    return env


def imported_modules(stderr: str) -> set[str]:
    """Every module named by ``-X importtime`` (its lines go to stderr)."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":
                names.add(name)
    return names


def heavy(modules: set[str], forbidden: set[str]) -> list[str]:
    """The forbidden modules among ``modules``: listed packages and every ``eth_*`` one."""
    return sorted(m for m in modules if m.split(".")[0] in forbidden or m.split(".")[0].startswith("eth_"))


def run_traced(*args: str, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", *args], capture_output=True, text=True, env=env, timeout=120
    )
    return result, imported_modules(result.stderr)


def test_the_tracer_sees_a_heavy_import():
    """The check below would pass vacuously if the trace were misread: a real BLS signature is seen."""
    result, modules = run_traced(
        "-c", "from crypto.bls import SigningKey; SigningKey(bytes(32)).sign(b'm')", env=clean_env()
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "py_ecc" in modules and "py_ecc.bls" in modules
    assert heavy(modules, HEAVY)[0].startswith(("eth_", "py_ecc"))


def test_importing_crypto_loads_no_bls_until_a_signature():
    result, modules = run_traced(
        "-c", "import crypto, crypto.bls, crypto.checkpoint; assert crypto.KEY_SIZE == 32", env=clean_env()
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert {"crypto", "crypto.bls", "crypto.checkpoint"} <= modules
    assert heavy(modules, HEAVY) == []


def test_help_imports_nothing_heavy():
    result, modules = run_traced("-m", "vault.cli", "--help", env=clean_env())
    assert result.returncode == 0, result.stderr[-2000:]
    # The whole command tree is still listed, with the short help of each command.
    for command in (
        "init",
        "principal",
        "serve",
        "verify",
        "checkpoint",
        "audit",
        "witness",
        "keys",
        "anchor",
        "erase",
    ):
        assert f"  {command} " in result.stdout, command
    assert "Serve the API with gunicorn." in result.stdout
    assert "vault.cli.main" in modules
    assert heavy(modules, HEAVY | DATABASE) == []


@pytest.mark.parametrize("group", ["principal", "anchor", "keys", "audit"])
def test_a_group_help_imports_nothing_heavy(group):
    result, modules = run_traced("-m", "vault.cli", group, "--help", env=clean_env())
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Commands:" in result.stdout
    assert heavy(modules, HEAVY | DATABASE) == []


def test_a_mistyped_command_is_one_sentence_and_imports_nothing_heavy():
    result, modules = run_traced("-m", "vault.cli", "principle", "list", env=clean_env())
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and errors[0].startswith("Error: No such command 'principle'.")
    assert "Traceback" not in result.stderr
    assert heavy(modules, HEAVY | DATABASE) == []


def test_principal_list_imports_no_bls_web3_flask_or_gunicorn(tmp_path):
    home = tmp_path / "home"
    env = clean_env(CIVICVAULT_HOME=str(home), CIVICVAULT_MASTER_KEY=new_master_key())
    for args in (["init"], ["principal", "add", "--role", "clinic", "--name", "Riverside Clinic"]):
        done = subprocess.run([sys.executable, "-m", "vault.cli", *args], capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr
    result, modules = run_traced("-m", "vault.cli", "principal", "list", env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Riverside Clinic" in result.stdout and "clinic" in result.stdout
    # It did open the database: the check is not vacuous.
    assert "sqlalchemy" in modules and "vault.runtime" in modules
    assert heavy(modules, HEAVY) == []
