"""A vault served for real: ``civicvault init`` (and, if asked, ``demo``) on a fresh home, ``serve`` on a free port.

For the tests that need a server a browser or a second process can reach:
the browser journeys (tests/web/conftest.py ``live_vault``) and the /docs
page's browser test (tests/api/test_docs_page.py), the served API's tests
(tests/api/test_server.py). ``serving`` yields the base URL once
``/healthz`` answers, and stops the server afterwards; a server that does
not come up fails the test with the end of its output.
"""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import new_master_key

CLI = [sys.executable, "-m", "vault.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def is_local(url: str) -> bool:
    """A URL the pages may load: this machine's loopback, or data:, blob:, about:."""
    parts = urlsplit(url)
    return parts.scheme in ("data", "blob", "about") or parts.hostname in ("127.0.0.1", "localhost", "::1")


def home_env(home: Path) -> dict[str, str]:
    """The environment of a vault in ``home`` with its own master key and its own SQLite file."""
    env = {**os.environ, "CIVICVAULT_HOME": str(home), "CIVICVAULT_MASTER_KEY": new_master_key()}
    env.pop("CIVICVAULT_DATABASE_URL", None)
    return env


@contextmanager
def serving(env: dict[str, str], *, workers: int = 1, start_timeout: float = 30) -> Iterator[str]:
    """``civicvault serve`` for ``env`` on a free loopback port; yields the base URL once ``/healthz`` answers."""
    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + start_timeout
    while True:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=5) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("server did not start: " + proc.stdout.read().decode(errors="replace")[-2000:])
        time.sleep(0.2)
    try:
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextmanager
def served(env: dict[str, str], *, demo: bool = False, workers: int = 1) -> Iterator[str]:
    """``init`` (and ``demo``) then ``serving``; yields the base URL."""
    subprocess.run([*CLI, "init"], env=env, check=True, capture_output=True)
    if demo:
        subprocess.run([*CLI, "demo"], env=env, check=True, capture_output=True)
    with serving(env, workers=workers) as base:
        yield base
