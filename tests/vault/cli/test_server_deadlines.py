"""The read deadline behind ``civicvault serve`` (vault/cli/server.py), on a socket pair.

tests/api/test_slow_clients.py drives the real server; these check the
pieces on their own: a trickling peer is cut off at the deadline, not before
and not after; a disarmed socket reads as usual; a bad setting is one sentence.
"""

import logging
import socket
import threading
import time

import pytest
from click.testing import CliRunner

from vault.cli.main import cli
from vault.cli.server import _DeadlineSocket, request_timeouts
from vault.core.errors import ConfigError


@pytest.fixture
def pair():
    ours, theirs = socket.socketpair()
    yield ours, theirs
    ours.close()
    theirs.close()


def trickle(sock: socket.socket, seconds: float) -> threading.Thread:
    def run() -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                sock.sendall(b"a")
            except OSError:
                return
            time.sleep(0.1)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_trickling_peer_is_cut_off_at_the_deadline(pair, caplog):
    ours, theirs = pair
    wrapped = _DeadlineSocket(ours, logging.getLogger("test"))
    wrapped.arm(0.6, "line and headers")
    sender = trickle(theirs, 2.0)
    started = time.monotonic()
    received = b""
    with caplog.at_level(logging.WARNING):
        while chunk := wrapped.recv(1):
            received += chunk
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 1.0
    assert 3 <= len(received) <= 8  # it did read while the peer was in time
    assert wrapped.expired and wrapped.recv(10) == b""  # and stays closed
    assert caplog.messages == [
        "closed a slow client's connection: its request line and headers did not arrive within 0.6 s"
    ]
    assert ours.gettimeout() is None  # the real socket is left as it was
    sender.join(timeout=5)


def test_a_silent_peer_is_cut_off_too(pair):
    ours, _ = pair
    wrapped = _DeadlineSocket(ours, logging.getLogger("test"))
    wrapped.arm(0.3, "body")
    started = time.monotonic()
    assert wrapped.recv(10) == b""
    assert 0.25 <= time.monotonic() - started < 0.8


def test_a_disarmed_socket_reads_as_usual(pair):
    ours, theirs = pair
    wrapped = _DeadlineSocket(ours, logging.getLogger("test"))
    wrapped.arm(0.2, "body")
    wrapped.disarm()
    threading.Timer(0.5, lambda: theirs.sendall(b"late")).start()
    assert wrapped.recv(10) == b"late"  # waited past the old deadline
    assert not wrapped.expired


def test_a_prompt_peer_is_untouched(pair):
    ours, theirs = pair
    wrapped = _DeadlineSocket(ours, logging.getLogger("test"))
    wrapped.arm(5, "line and headers")
    theirs.sendall(b"GET / HTTP/1.1\r\n\r\n")
    assert wrapped.recv(100) == b"GET / HTTP/1.1\r\n\r\n"
    assert wrapped.fileno() == ours.fileno()  # everything else is the real socket's


@pytest.mark.parametrize("value", ["0", "-1", "abc", "nan", "inf", "3601"])
def test_a_bad_timeout_setting_is_one_sentence(monkeypatch, value):
    monkeypatch.setenv("CIVICVAULT_SERVE_BODY_TIMEOUT", value)
    with pytest.raises(ConfigError) as caught:
        request_timeouts()
    assert caught.value.detail == (
        "CIVICVAULT_SERVE_BODY_TIMEOUT must be a number of seconds greater than 0 and at most 3600."
    )


def test_timeouts_default_and_can_be_set(monkeypatch):
    monkeypatch.delenv("CIVICVAULT_SERVE_HEADER_TIMEOUT", raising=False)
    monkeypatch.delenv("CIVICVAULT_SERVE_BODY_TIMEOUT", raising=False)
    assert request_timeouts() == (10.0, 30.0)
    monkeypatch.setenv("CIVICVAULT_SERVE_HEADER_TIMEOUT", "2.5")
    assert request_timeouts() == (2.5, 30.0)


def test_serve_with_a_bad_timeout_says_so_before_serving(tmp_path):
    home = str(tmp_path / "home")
    assert CliRunner().invoke(cli, ["init", "--home", home], env={"CIVICVAULT_MASTER_KEY": None}).exit_code == 0
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = CliRunner().invoke(
        cli,
        ["serve", "--home", home, "--port", str(port)],
        env={"CIVICVAULT_MASTER_KEY": None, "CIVICVAULT_SERVE_HEADER_TIMEOUT": "soon"},
    )
    assert result.exit_code == 1
    assert result.output == (
        "Error: CIVICVAULT_SERVE_HEADER_TIMEOUT must be a number of seconds greater than 0 and at most 3600.\n"
    )
    with socket.socket() as again:  # the port was given back
        again.bind(("127.0.0.1", port))
