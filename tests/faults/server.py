"""A real ``civicvault serve`` on a free 127.0.0.1 port, in its own process group, for the fault tests."""

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

CLI = [sys.executable, "-m", "vault.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def request(
    port: int, method: str, path: str, *, token: str | None = None, body: object = None, timeout: float = 10
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def cli(env: dict, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    done = subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"civicvault {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")
    return done


class Server:
    """``civicvault serve --workers N``: gunicorn master and workers in one new process group."""

    def __init__(self, env: dict, log: Path, *, workers: int = 2) -> None:
        self.port = free_port()
        self.killed = False
        self.log = log.open("ab")
        self.proc = subprocess.Popen(
            [*CLI, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(workers)],
            env=env,
            stdout=self.log,
            stderr=self.log,
            start_new_session=True,  # the master and the workers it forks: one group to kill
        )
        self.pgid = os.getpgid(self.proc.pid)
        deadline = time.monotonic() + 60
        while True:
            try:
                if request(self.port, "GET", "/healthz", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"civicvault serve did not start; see {log.name}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL to the whole group: no worker finishes a request, no shutdown code runs."""
        if self.killed:
            return
        self.killed = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._wait_group_gone()
        self.log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=20)
        self.kill()

    def _wait_group_gone(self) -> None:
        deadline = time.monotonic() + 20
        while live_in_group(self.pgid):
            if time.monotonic() > deadline:
                raise AssertionError("the server's processes outlived SIGKILL")
            time.sleep(0.05)


def live_in_group(pgid: int) -> list[int]:
    """Processes of the group that are not zombies (a zombie is dead: it only waits to be reaped)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(entry.name))
    return alive
