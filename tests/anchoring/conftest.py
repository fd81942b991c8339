"""A real Ethereum JSON-RPC node for the anchoring tests: ganache, pinned in package-lock.json.

One ganache process per test session, on 127.0.0.1 at a free port, with
fixed funded accounts; each test deploys its own contract. The suite installs
the npm packages itself (``npm ci``) when they are missing; the tests are
skipped, saying why, only where Node.js or npm is not installed.
"""

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GANACHE = ROOT / "node_modules" / "ganache" / "dist" / "node" / "cli.js"
CHAIN_ID = 1337
# Test-only keys: the owner (who deploys and anchors) and a stranger.
OWNER_KEY = "0x" + "4c" * 32
STRANGER_KEY = "0x" + "5d" * 32
NO_NODE = "Node.js and npm are not installed: the anchoring tests need them to run a local ganache node"


def node_tools() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip(NO_NODE)
    if not GANACHE.exists() or not (ROOT / "node_modules" / "solc").exists():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=ROOT,
            check=True,
            timeout=600,
            capture_output=True,
        )
    return node, npm


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rpc(url: str, method: str, params: list | None = None, timeout: float = 5.0):
    request = urllib.request.Request(
        url,
        data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())["result"]


@dataclass(frozen=True)
class Ganache:
    url: str
    chain_id: int = CHAIN_ID


@pytest.fixture(scope="session")
def ganache(tmp_path_factory) -> Ganache:
    node, _ = node_tools()
    port = free_port()
    log_path = tmp_path_factory.mktemp("ganache") / "ganache.log"
    log = open(log_path, "wb")  # noqa: SIM115 (closed at teardown) a file, not a pipe: a full pipe would stall the node
    process = subprocess.Popen(
        [
            node,
            str(GANACHE),
            "--server.host",
            "127.0.0.1",
            "--server.port",
            str(port),
            "--chain.chainId",
            str(CHAIN_ID),
            "--wallet.accounts",
            f"{OWNER_KEY},{10**21}",
            "--wallet.accounts",
            f"{STRANGER_KEY},{10**21}",
            "--miner.instamine",
            "eager",
            "--logging.quiet",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"ganache exited at start: {log_path.read_text(errors='replace')[-2000:]}")
        try:
            if int(rpc(url, "eth_chainId", timeout=1), 16) == CHAIN_ID:
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("ganache did not answer within 60 s")
        time.sleep(0.2)
    yield Ganache(url=url)
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log.close()


@pytest.fixture
def owner():
    from vault.anchoring.settings import Signer

    return Signer(bytes.fromhex(OWNER_KEY[2:]))


@pytest.fixture
def stranger():
    from vault.anchoring.settings import Signer

    return Signer(bytes.fromhex(STRANGER_KEY[2:]))


@pytest.fixture
def chain(ganache, owner):
    """A fresh CheckpointAnchor contract on the session's node."""
    from vault.anchoring.chain import Chain

    deployed = Chain(ganache.url, timeout=20)
    deployed.deploy(owner)
    return deployed


@pytest.fixture
def snapshot(ganache):
    """Take a chain snapshot; ``revert()`` rolls the chain back to it (an anchor that disappears)."""
    ident = rpc(ganache.url, "evm_snapshot")
    return lambda: rpc(ganache.url, "evm_revert", [ident])
