"""``civicvault serve`` on a taken port, and ``make serve HOST= PORT=``.

A taken port is one sentence and a non-zero exit, found by binding before
gunicorn starts, so gunicorn's retry loop (five seconds of errors) never runs.
"""

import errno
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.vault.cli.test_startup import clean_env, imported_modules
from vault.cli.listen import display, listen
from vault.cli.main import cli
from vault.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def taken() -> Iterator[socket.socket]:
    """A free port on 127.0.0.1, then held by a listening socket."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    yield holder
    holder.close()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    result = CliRunner().invoke(cli, ["init", "--home", str(home)], env={"CIVICVAULT_MASTER_KEY": None})
    assert result.exit_code == 0, result.output
    return home


def serve(home: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], float, set[str]]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "vault.cli", "serve", "--home", str(home), *args],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=10,  # gunicorn's retry loop alone would take five seconds, and then it would serve
    )
    return result, time.monotonic() - started, imported_modules(result.stderr)


def said(result: subprocess.CompletedProcess[str]) -> list[str]:
    """What the user reads on stderr (the import trace aside)."""
    return [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("import time:")]


def test_a_taken_port_is_one_sentence_and_a_quick_non_zero_exit(home, taken):
    port = taken.getsockname()[1]
    result, elapsed, modules = serve(home, "--port", str(port))
    assert result.returncode == 1
    assert said(result) == [
        f"Error: Port {port} on 127.0.0.1 is in use: stop what holds it or choose another with --port "
        f"(make serve PORT={port + 1})."
    ]
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert result.stdout == ""  # not even the "CivicVault on http://..." banner
    # gunicorn never started, so it cannot have retried.
    assert not any(m.split(".")[0] == "gunicorn" for m in modules)
    assert elapsed < 10
    # The holder still holds the port: serve took nothing from it.
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass


def test_a_port_held_on_every_address_is_taken_on_localhost_too(home):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result, _, modules = serve(home, "--host", "127.0.0.1", "--port", str(port))
    assert result.returncode == 1
    assert said(result) == [
        f"Error: Port {port} on 127.0.0.1 is in use: stop what holds it or choose another with --port "
        f"(make serve PORT={port + 1})."
    ]
    assert "gunicorn" not in modules


def test_a_host_that_is_not_this_machine_is_one_sentence(home):
    # 192.0.2.0/24 is TEST-NET-1 (RFC 5737): documentation only, never a local address.
    result, _, modules = serve(home, "--host", "192.0.2.1", "--port", "8080")
    assert result.returncode == 1
    assert said(result) == [
        "Error: 192.0.2.1 is not an address of this machine: choose another with --host (make serve HOST=127.0.0.1)."
    ]
    assert "gunicorn" not in modules


def test_a_taken_port_is_reported_before_the_home_is_even_opened(tmp_path, taken):
    """No home at all: the port is still the one sentence, and nothing was created."""
    port = taken.getsockname()[1]
    result, _, modules = serve(tmp_path / "nowhere", "--port", str(port))
    assert result.returncode == 1
    assert len(said(result)) == 1 and f"Port {port} on 127.0.0.1 is in use" in said(result)[0]
    assert not (tmp_path / "nowhere").exists()
    assert "sqlalchemy" not in modules


def test_listen_gives_a_listening_socket_on_a_free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    listener = listen("127.0.0.1", port)
    try:
        assert listener.getsockname() == ("127.0.0.1", port)
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            accepted, _ = listener.accept()
            accepted.close()
        # A second vault on the same port is refused, with the sentence.
        with pytest.raises(ConfigError, match=rf"^Port {port} on 127\.0\.0\.1 is in use: "):
            listen("127.0.0.1", port)
    finally:
        listener.close()


def test_a_restart_right_after_a_stop_is_not_refused():
    """Connections the old server closed linger in TIME_WAIT; like gunicorn, the port is free again."""
    first = listen("127.0.0.1", 0)
    port = first.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    accepted, _ = first.accept()
    accepted.close()  # the server closes first: its side of the connection enters TIME_WAIT
    client.recv(1)
    client.close()
    first.close()
    again = listen("127.0.0.1", port)
    again.close()


def test_an_error_other_than_in_use_is_still_one_sentence(monkeypatch):
    def refuse(self, address):
        raise OSError(errno.ENETDOWN, "Network is down")

    monkeypatch.setattr(socket.socket, "bind", refuse)
    with pytest.raises(ConfigError) as caught:
        listen("127.0.0.1", 8080)
    assert caught.value.detail == "Cannot listen on port 8080 of 127.0.0.1: Network is down."


def test_display_brackets_ipv6():
    assert display("127.0.0.1", 8080) == "127.0.0.1:8080"
    assert display("::1", 8080) == "[::1]:8080"
    assert display("[::1]", 8080) == "[::1]:8080"


needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def make_dry_run(*args: str, env: dict[str, str] | None = None) -> str:
    # -o: take the install stamp as done, so that a dry run never plans a reinstall.
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "-o", ".venv/.installed", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env or clean_env(),
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@needs_make
def test_make_serve_passes_host_and_port():
    assert "civicvault serve --host '127.0.0.1' --port '8080'" in make_dry_run("serve")
    assert "civicvault serve --host '0.0.0.0' --port '8081'" in make_dry_run("serve", "PORT=8081", "HOST=0.0.0.0")


@needs_make
def test_make_serve_ignores_a_host_exported_by_the_shell():
    """tcsh and others export HOST as the machine's name; only `make serve HOST=...` changes it."""
    planned = make_dry_run("serve", env=clean_env(HOST="some-workstation", PORT="1"))
    assert "civicvault serve --host '127.0.0.1' --port '8080'" in planned


@needs_make
@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
@pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "civicvault").exists(), reason="no .venv with civicvault")
def test_make_shell_puts_civicvault_on_the_path(tmp_path):
    result = subprocess.run(
        ["make", "--no-print-directory", "-o", ".venv/.installed", "shell"],
        cwd=ROOT,
        input='printf "found=%s\\n" "$(command -v civicvault)"\nexit\n',
        capture_output=True,
        text=True,
        env=clean_env(HOME=str(tmp_path)),  # no personal ~/.bashrc in the way, no history left behind
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert f"found={ROOT / '.venv' / 'bin' / 'civicvault'}" in result.stdout


def test_serve_refuses_while_a_resident_lacks_their_secret(home: Path) -> None:
    """A database restored from before an erasure: serve only after `replay-erasures` (docs/operations.md)."""
    for name in ("Sam", "Robin"):  # Sam keeps a secret: the store is the right one
        added = CliRunner().invoke(
            cli, ["principal", "add", "--role", "resident", "--name", name, "--json", "--home", str(home)]
        )
        assert added.exit_code == 0, added.output
    import json

    from vault.core.config import Settings
    from vault.runtime import Vault

    vault = Vault.open(Settings.from_env(home, environ={}))
    try:
        assert vault.keys.secrets.destroy(json.loads(added.output)["id"])
    finally:
        vault.close()
    with socket.socket() as probe:  # a free port, released before serve binds it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result, elapsed, _ = serve(home, "--port", str(port))
    assert result.returncode == 1
    assert said(result) == [
        "Error: Some residents have no subject secret (a database restored from before their erasure?): "
        "run 'civicvault replay-erasures' first (docs/operations.md, \"Restoring\")."
    ]
    replayed = CliRunner().invoke(cli, ["replay-erasures", "--yes", "--home", str(home)])
    assert replayed.exit_code == 0, replayed.output
    vault = Vault.open(Settings.from_env(home, environ={}))
    try:
        from vault.keys.key_rotation import residents_without_secret

        assert residents_without_secret(vault) == []
    finally:
        vault.close()
