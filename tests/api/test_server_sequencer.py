"""``civicvault serve`` with ``CIVICVAULT_SEQUENCER=external`` and ``civicvault sequencer`` beside it, over HTTP.

Two workers answer while a separate sequencer gives their events indices;
the sequencer is killed (-9) in the middle of the traffic: actions go on with
pending receipts, ``/healthz`` shows the backlog, and a new sequencer resolves
every receipt to a valid inclusion proof, with no gap and nothing twice.
"""

import json
import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import crypto
from tests.api.test_server import CLI, request, served_on_a_free_port
from tests.conftest import new_master_key

pytestmark = pytest.mark.slow


def _start(args, env):
    return subprocess.Popen([*CLI, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@pytest.fixture
def served(tmp_path, database_url):
    env = {
        **os.environ,
        "CIVICVAULT_HOME": str(tmp_path / "home"),
        "CIVICVAULT_DATABASE_URL": database_url,
        "CIVICVAULT_MASTER_KEY": new_master_key(),
        "CIVICVAULT_SEQUENCER": "external",
        "CIVICVAULT_LEDGER_RECEIPT_WAIT_MS": "1000",
    }
    subprocess.run([*CLI, "init"], env=env, check=True, capture_output=True)
    subprocess.run([*CLI, "demo", "--if-new"], env=env, check=True, capture_output=True)
    # The demo's own events were committed as pending too (no sequencer yet): drain them.
    subprocess.run([*CLI, "sequencer", "--once"], env=env, check=True, capture_output=True)
    people = json.loads((tmp_path / "home" / "demo-tokens.json").read_text())
    with served_on_a_free_port(env) as port:
        yield port, people, env


def test_a_separate_sequencer_serves_two_workers_and_another_takes_over_when_it_dies(served):
    port, people, env = served
    amina = next(p for p in people if p["name"] == "Amina Yusuf")

    def post(i):
        status, _, body = request(
            port,
            "POST",
            f"/api/v1/subjects/{amina['id']}/records",
            token=amina["token"],
            body={"category": "health.notes", "content": {"i": i}},
        )
        assert status == 201, body
        listing_status, _, listing = request(
            port, "GET", f"/api/v1/records/{json.loads(body)['id']}", token=amina["token"]
        )
        assert listing_status == 200
        return json.loads(listing)["receipt"]

    first = _start(["sequencer", "--interval-ms", "5"], env)
    assert b"sequencing every" in first.stdout.readline()  # up, with its vault open
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            receipts = list(pool.map(post, range(24)))
        assert all(r["status"] == "sequenced" for r in receipts)  # answered within the wait
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)

    # No sequencer: actions still commit, their receipts wait, and /healthz shows it.
    with ThreadPoolExecutor(max_workers=4) as pool:
        later = list(pool.map(post, range(100, 108)))
    assert all(r["status"] == "pending" and r["leaf_index"] is None for r in later)
    health = json.loads(request(port, "GET", "/healthz")[2])
    assert health["ledger"]["pending"] >= 8

    second = _start(["sequencer", "--interval-ms", "5"], env)
    try:
        deadline = time.monotonic() + 30
        resolved = {}
        while len(resolved) < len(later) and time.monotonic() < deadline:
            for receipt in later:
                status, _, body = request(
                    port, "GET", f"/api/v1/ledger/entries/{receipt['leaf_hash']}", token=amina["token"]
                )
                entry = json.loads(body)
                if status == 200 and entry["status"] == "sequenced":
                    resolved[receipt["leaf_hash"]] = entry
            time.sleep(0.05)
    finally:
        second.terminate()
        second.wait(timeout=15)
    assert len(resolved) == len(later)
    for leaf_hash, entry in resolved.items():
        proof = entry["inclusion"]
        crypto.verify_inclusion(
            proof["leaf_index"],
            proof["tree_size"],
            bytes.fromhex(leaf_hash),
            [bytes.fromhex(h) for h in proof["audit_path"]],
            bytes.fromhex(proof["root_hash"]),
        )
    verified = subprocess.run([*CLI, "verify"], env=env, capture_output=True, text=True)
    assert verified.returncode == 0, verified.stderr
    indices = sorted([r["leaf_index"] for r in receipts] + [e["leaf_index"] for e in resolved.values()])
    assert len(set(indices)) == len(indices)
