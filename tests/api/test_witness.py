"""Witnesses: a running witness cosigns honest checkpoints and refuses forged ones."""

import base64
import json
import os
import subprocess
import sys

import pytest
from sqlalchemy import text

from crypto import checkpoint as notes
from crypto.bls import SigningKey
from tests.api.conftest import add_record
from tests.api.helpers import assert_problem
from tests.api.test_server import request
from tests.conftest import new_master_key
from tests.served import free_port
from vault.keys import ledger_key
from vault.ledger import checkpoints
from vault.storage.db import make_engine

CLI = [sys.executable, "-m", "vault.cli"]


def cli(env, *args, check=True):
    result = subprocess.run([*CLI, *args], env=env, capture_output=True, text=True)
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def served(tmp_path, database_url):
    env = {
        **os.environ,
        "CIVICVAULT_HOME": str(tmp_path / "home"),
        "CIVICVAULT_DATABASE_URL": database_url,
        "CIVICVAULT_MASTER_KEY": new_master_key(),
    }
    cli(env, "init")
    cli(env, "demo")
    witness = json.loads(
        cli(env, "principal", "add", "--role", "witness", "--name", "County Records Office", "--json").stdout
    )
    log_key = cli(env, "checkpoint", "--show-key").stdout.strip()
    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import time

    for _ in range(150):
        try:
            if request(port, "GET", "/healthz")[0] == 200:
                break
        except OSError:
            time.sleep(0.2)
    try:
        yield {
            "env": env,
            "port": port,
            "witness": witness,
            "log_key": log_key,
            "state": tmp_path / "witness",
            "db": database_url,
            "people": json.loads((tmp_path / "home" / "demo-tokens.json").read_text()),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def run_witness(s, *, log_key=None, token_from="env"):
    """One witness round; the token from CIVICVAULT_WITNESS_TOKEN, a --token-file, or the deprecated --token."""
    env = {k: v for k, v in s["env"].items() if k != "CIVICVAULT_WITNESS_TOKEN"}
    token = s["witness"]["token"]
    given = []
    if token_from == "env":
        env["CIVICVAULT_WITNESS_TOKEN"] = token
    elif token_from == "file":
        path = s["state"].parent / "witness-token"
        path.touch(mode=0o600)
        path.write_text(token + "\n")
        given = ["--token-file", str(path)]
    else:
        given = ["--token", token]
    return cli(
        env,
        "witness",
        "--url",
        f"http://127.0.0.1:{s['port']}",
        *given,
        "--log-key",
        log_key or s["log_key"],
        "--state",
        str(s["state"]),
        "--once",
        check=False,
    )


def forge_history(database_url):
    """An operator rewrites the ledger into a self-consistent but different history."""
    engine = make_engine(database_url)
    with engine.begin() as connection:
        body = connection.execute(text("SELECT body FROM events WHERE ledger_index = 3")).scalar()
        forged = bytes(body).replace(b'"kind":"', b'"kind":" ', 1)  # any change will do
        connection.execute(text("UPDATE events SET body = :b WHERE ledger_index = 3"), {"b": forged})
        rows = connection.execute(text("SELECT ledger_index, salt, body FROM events ORDER BY ledger_index")).all()
        connection.execute(text("DELETE FROM ledger_nodes"))
    from crypto import merkle
    from vault.ledger import ledger as vault_ledger

    nodes = {}
    for index, salt, body in rows:
        node, level, position = vault_ledger.leaf_hash_of(bytes(salt), bytes(body)), 0, index
        nodes[(0, index)] = node
        while position & 1:
            node = merkle.node_hash(nodes[(level, position - 1)], node)
            level, position = level + 1, position >> 1
            nodes[(level, position)] = node
    with engine.begin() as connection:
        for (level, index), value in nodes.items():
            connection.execute(
                text("INSERT INTO ledger_nodes (level, idx, hash) VALUES (:l, :i, :h)"),
                {"l": level, "i": index, "h": value},
            )
    engine.dispose()


def test_a_witness_cosigns_honest_checkpoints_and_refuses_a_forged_history(served):
    s = served
    first = cli(s["env"], "checkpoint").stdout
    size1 = int(first.split("\n")[1])
    ok = run_witness(s)
    assert ok.returncode == 0 and f"cosigned size {size1}" in ok.stdout, ok.stderr
    assert s["witness"]["token"] not in ok.stdout + ok.stderr

    served_checkpoint = json.loads(
        request(s["port"], "GET", "/api/v1/ledger/checkpoint", token=s["witness"]["token"])[2]
    )
    assert served_checkpoint["cosigners"] == 1 and served_checkpoint["witnessed"] is True
    body, signatures = notes.verify_note(served_checkpoint["note"], public_key=bytes.fromhex(s["log_key"]))
    assert [sig.name for sig in signatures] == [body.origin, s["witness"]["id"]]
    # The witness's line is a cosignature (its own domain), under its key from its state directory.
    witness_key = SigningKey(base64.b64decode((s["state"] / "witness.key").read_text().strip()))
    roster = {s["witness"]["id"]: witness_key.public_key}
    assert notes.verify_cosignatures(body, signatures, roster, threshold=1) == [s["witness"]["id"]]
    with pytest.raises(notes.CheckpointError):  # it does not pass for the log's signature
        notes.verify_note(served_checkpoint["note"], public_key=witness_key.public_key, name=s["witness"]["id"])

    # The log grows honestly: the witness checks consistency and cosigns again.
    amina = next(p for p in s["people"] if p["name"] == "Amina Yusuf")
    request(s["port"], "GET", f"/api/v1/subjects/{amina['id']}/records", token=amina["token"])
    second = cli(s["env"], "checkpoint").stdout
    size2 = int(second.split("\n")[1])
    assert size2 > size1
    again = run_witness(s, token_from="file")
    assert again.returncode == 0 and f"cosigned size {size2}" in again.stdout, again.stderr
    assert again.stderr == ""  # a file of mode 0600: no warning
    state = json.loads((s["state"] / "state.json").read_text())
    assert state["tree_size"] == size2

    # The operator rewrites history and has the node sign the forgery: the witness refuses.
    forge_history(s["db"])
    request(s["port"], "GET", f"/api/v1/subjects/{amina['id']}/records", token=amina["token"])
    cli(s["env"], "checkpoint")
    refused = run_witness(s)
    assert refused.returncode == 3
    assert "REFUSED: split view" in refused.stderr
    assert json.loads((s["state"] / "state.json").read_text()) == state  # nothing moved

    # And verify names the rewritten entry.
    verdict = cli(s["env"], "verify", check=False)
    assert verdict.returncode == 1 and "Ledger entry 3" in verdict.stderr


def test_a_witness_refuses_a_checkpoint_not_signed_by_the_pinned_key(served):
    cli(served["env"], "checkpoint")
    # The deprecated --token still works, and says that it shows the token to every user of the machine.
    wrong = run_witness(served, log_key=SigningKey.generate().public_key.hex(), token_from="flag")
    assert wrong.returncode == 3 and "not signed by the pinned log key" in wrong.stderr
    assert "Warning: --token is visible to every user of this machine in the process list" in wrong.stderr
    assert not (served["state"] / "state.json").exists()


def test_the_vault_refuses_inconsistent_or_bad_cosignatures(client, vault_, settings, make_actor):
    ledger_key.create(settings.ledger_key_file)
    node = ledger_key.read(settings.ledger_key_file)
    resident = make_actor("resident")
    witness = make_actor("witness")
    key = SigningKey.generate()
    for _ in range(3):
        add_record(client, resident)

    def sign_node():
        with vault_.transaction() as session:
            return checkpoints.sign_now(session, key=node, origin="civicvault", now=vault_.now())

    def cosign(view, signer=key, message=notes.Checkpoint.cosigned_message):
        body = notes.Checkpoint(origin=view.origin, size=view.tree_size, root=bytes.fromhex(view.root_hash))
        signature = base64.b64encode(signer.sign(message(body))).decode()
        return client.post(
            "/api/v1/ledger/cosignatures",
            json={"tree_size": view.tree_size, "root_hash": view.root_hash, "signature": signature},
            headers=witness.auth,
        )

    first = sign_node()
    assert_problem(cosign(first), 400)  # not registered yet
    bad_pop = {
        "public_key": key.public_key.hex(),
        "proof_of_possession": SigningKey.generate().prove_possession().hex(),
    }
    assert_problem(client.post("/api/v1/ledger/witnesses", json=bad_pop, headers=witness.auth), 400)
    good = {"public_key": key.public_key.hex(), "proof_of_possession": key.prove_possession().hex()}
    assert client.post("/api/v1/ledger/witnesses", json=good, headers=witness.auth).status_code == 204
    assert_problem(client.post("/api/v1/ledger/witnesses", json=good, headers=resident.auth), 403)
    assert_problem(cosign(first, signer=SigningKey.generate()), 400)  # not this witness's signature
    # Format 1: the witness signed the very bytes the log signs. No longer a cosignature.
    assert_problem(cosign(first, message=lambda body: body.body().encode()), 400)
    # Nor is the node's own signature, with the node's key registered by a witness.
    node_witness = make_actor("witness")
    pop = {"public_key": node.public_key.hex(), "proof_of_possession": node.prove_possession().hex()}
    assert client.post("/api/v1/ledger/witnesses", json=pop, headers=node_witness.auth).status_code == 204
    replay = {"tree_size": first.tree_size, "root_hash": first.root_hash, "signature": first.signatures[0].signature}
    assert_problem(client.post("/api/v1/ledger/cosignatures", json=replay, headers=node_witness.auth), 400)
    assert cosign(first).get_json() == {"tree_size": first.tree_size, "cosigners": 1}

    add_record(client, resident)
    forge_history(settings.database_url)
    forged = sign_node()
    assert_problem(cosign(forged), 409)  # does not extend what the witness cosigned
    unknown = type(forged)(**{**forged.__dict__, "root_hash": "00" * 32})
    assert_problem(cosign(unknown), 404)


def test_a_served_vault_signs_checkpoints_in_the_background(tmp_path, database_url):
    import time

    env = {
        **os.environ,
        "CIVICVAULT_HOME": str(tmp_path / "home"),
        "CIVICVAULT_DATABASE_URL": database_url,
        "CIVICVAULT_MASTER_KEY": new_master_key(),
        "CIVICVAULT_CHECKPOINT_SECONDS": "1",
        "CIVICVAULT_CHECKPOINT_EVERY": "1",
    }
    cli(env, "init")
    cli(env, "demo")
    people = json.loads((tmp_path / "home" / "demo-tokens.json").read_text())
    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        seen = None
        while time.monotonic() < deadline:
            try:
                status, _, body = request(port, "GET", "/api/v1/ledger/checkpoint", token=people[0]["token"])
                if status == 200:
                    seen = json.loads(body)
                    break
            except OSError:
                pass
            time.sleep(0.3)
        assert seen is not None, "no checkpoint signed in the background"
        request(port, "GET", f"/api/v1/subjects/{people[0]['id']}/records", token=people[0]["token"])  # one more entry
        while time.monotonic() < deadline:
            later = json.loads(request(port, "GET", "/api/v1/ledger/checkpoint", token=people[0]["token"])[2])
            if later["tree_size"] > seen["tree_size"]:
                break
            time.sleep(0.3)
        assert later["tree_size"] > seen["tree_size"]
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    assert "checkpoint" in cli(env, "verify").stdout
