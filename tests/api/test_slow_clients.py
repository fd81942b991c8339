"""Slow clients cannot take ``civicvault serve`` down.

Each test starts the real server (gunicorn, 2 workers, as ``make serve``) on
a free port of 127.0.0.1 and opens connections that trickle their request one
byte a second. While they are connected, other clients (``/healthz``, an
authenticated ``/api/v1/me``) are answered at once; each slow connection is
closed once its deadline has passed. The deadlines are shortened through the
environment so that the suite waits seconds, not the defaults' 10 and 30.
Everything is bounded: a fixed number of sockets, a fixed time, and every
thread and process stops by itself.
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.test_server import request
from tests.conftest import new_master_key
from tests.served import free_port

CLI = [sys.executable, "-m", "vault.cli"]
HEADER_SECONDS = 4
BODY_SECONDS = 4
SLOW_CLIENTS = 40
BOUND = 2.0  # seconds any healthy request may take while the slow clients are connected


@pytest.fixture
def served(tmp_path: Path) -> Iterator[dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICVAULT_")}
    env.update(
        CIVICVAULT_HOME=str(tmp_path / "home"),
        CIVICVAULT_MASTER_KEY=new_master_key(),
        CIVICVAULT_SERVE_HEADER_TIMEOUT=str(HEADER_SECONDS),
        CIVICVAULT_SERVE_BODY_TIMEOUT=str(BODY_SECONDS),
    )
    subprocess.run([*CLI, "init"], env=env, check=True, capture_output=True)
    subprocess.run([*CLI, "demo"], env=env, check=True, capture_output=True)
    people = json.loads((tmp_path / "home" / "demo-tokens.json").read_text())
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([*CLI, "serve", "--port", str(port), "--workers", "2"], env=env, stdout=out, stderr=out)
    deadline = time.monotonic() + 30
    while True:
        try:
            if request(port, "GET", "/healthz")[0] == 200:
                break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("server did not start: " + log.read_text(errors="replace")[-2000:])
        time.sleep(0.2)
    try:
        yield {"port": port, "people": people, "log": log}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Tricklers:
    """Connections that send ``prefix`` at once, then their ``heads`` one byte a second, for at most ``seconds``.

    One thread sends for all of them.
    """

    def __init__(self, port: int, heads: list[bytes], *, seconds: float, prefix: bytes = b"") -> None:
        self.socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in heads]
        for sock in self.socks:
            if prefix:
                sock.sendall(prefix)
        self.heads = heads
        self.closed_at: dict[int, float] = {}
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(seconds,), daemon=True)
        self._thread.start()

    def _run(self, seconds: float) -> None:
        position = 0
        while not self._stop.is_set() and time.monotonic() - self.started < seconds:
            for i, (sock, head) in enumerate(zip(self.socks, self.heads, strict=True)):
                if i in self.closed_at or position >= len(head):
                    continue
                try:
                    sock.sendall(head[position : position + 1])
                except OSError:  # the server closed it: reset on our send
                    self.closed_at[i] = time.monotonic() - self.started
            position += 1
            self._stop.wait(1.0)

    def dropped(self) -> dict[int, float]:
        """Connections the server has closed (end of file or reset), with when that was first seen."""
        for i, sock in enumerate(self.socks):
            if i in self.closed_at:
                continue
            sock.setblocking(False)
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            finally:
                sock.setblocking(True)
            if data == b"" or data.startswith(b"HTTP/1.1 4"):
                self.closed_at[i] = time.monotonic() - self.started
        return self.closed_at

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for sock in self.socks:
            sock.close()


def timed(port: int, path: str, token: str | None = None) -> tuple[int, float]:
    started = time.monotonic()
    status = request(port, "GET", path, token=token)[0]
    return status, time.monotonic() - started


def test_forty_slow_clients_neither_stall_the_api_nor_stay_connected(served):
    port = served["port"]
    amina = next(p for p in served["people"] if p["name"] == "Amina Yusuf")
    # Header lines that would take 200 s to arrive at one byte a second.
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 200 + b"\r\n\r\n"
    slow = Tricklers(port, [head] * SLOW_CLIENTS, seconds=HEADER_SECONDS + 8)
    try:
        time.sleep(1.0)  # every slow client has sent its first bytes and holds a thread
        assert not slow.dropped()
        timings = []
        while time.monotonic() - slow.started < HEADER_SECONDS - 1:
            timings.append(timed(port, "/healthz"))
            timings.append(timed(port, "/api/v1/me", amina["token"]))
        assert len(timings) >= 10
        assert all(status == 200 for status, _ in timings), timings
        assert max(elapsed for _, elapsed in timings) < BOUND, sorted(e for _, e in timings)[-5:]
        assert not slow.dropped(), "the slow clients were all still connected while the others were served"

        # Past the header deadline every slow connection is closed by the server.
        while len(slow.dropped()) < SLOW_CLIENTS and time.monotonic() - slow.started < HEADER_SECONDS + 6:
            time.sleep(0.25)
        dropped = slow.dropped()
        assert len(dropped) == SLOW_CLIENTS
        assert min(dropped.values()) >= HEADER_SECONDS - 1 and max(dropped.values()) < HEADER_SECONDS + 6
    finally:
        slow.close()
    assert timed(port, "/healthz")[0] == 200
    assert "its request line and headers did not arrive within 4 s" in served["log"].read_text()


def test_a_trickled_body_is_cut_off_and_stores_nothing(served):
    port = served["port"]
    amina = next(p for p in served["people"] if p["name"] == "Amina Yusuf")
    body = json.dumps({"category": "health.notes", "content": {"note": "x" * 200}}).encode()
    head = (
        f"POST /api/v1/subjects/{amina['id']}/records HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {amina['token']}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    # The headers at once, then the body a byte a second.
    slow = Tricklers(port, [body] * 8, seconds=BODY_SECONDS + 8, prefix=head)
    try:
        time.sleep(1.0)
        assert timed(port, "/healthz")[1] < BOUND
        while len(slow.dropped()) < 8 and time.monotonic() - slow.started < BODY_SECONDS + 6:
            time.sleep(0.25)
        assert len(slow.dropped()) == 8
    finally:
        slow.close()
    status, _, listing = request(port, "GET", f"/api/v1/subjects/{amina['id']}/records", token=amina["token"])
    assert status == 200
    assert "health.notes" not in {item["category"] for item in json.loads(listing)["items"]}
    assert "its request body did not arrive within 4 s" in served["log"].read_text()


def test_oversized_request_heads_are_refused_and_slow_but_timely_ones_served(served):
    heads = {
        "a request line over 4094 bytes": b"GET /healthz?" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        "65 header fields": b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(65)) + b"\r\n",
        "a header field over 8190 bytes": b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
    }
    answers = {}
    for what, head in heads.items():
        with socket.create_connection(("127.0.0.1", served["port"]), timeout=10) as sock:
            sock.sendall(head)
            answers[what] = sock.recv(65536).split(b"\r\n", 1)[0]
    assert answers == {
        "a request line over 4094 bytes": b"HTTP/1.1 414 URI Too Long",
        "65 header fields": b"HTTP/1.1 431 Request Header Fields Too Large",
        "a header field over 8190 bytes": b"HTTP/1.1 431 Request Header Fields Too Large",
    }
    # Within the limits: answered.
    ok = b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(60)) + b"Connection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", served["port"]), timeout=10) as sock:
        sock.sendall(ok)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    # Slow but within the header deadline: answered, not cut off.
    with socket.create_connection(("127.0.0.1", served["port"]), timeout=10) as sock:
        for start in range(0, len(ok), len(ok) // 3 + 1):
            sock.sendall(ok[start : start + len(ok) // 3 + 1])
            time.sleep(HEADER_SECONDS / 4)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
