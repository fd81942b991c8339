"""Audit bundles: exported with proofs, verified offline with the log key only, tampering refused."""

import copy
import json
import os
import subprocess
import sys

import pytest

from crypto.bls import SigningKey
from tests.api.conftest import T0
from vault.core.caller import Caller
from vault.core.errors import NotFound
from vault.identity import principals
from vault.keys import ledger_key
from vault.ledger import checkpoints
from vault.records import records
from vault.verification import bundles


@pytest.fixture
def setup(vault_, settings):
    ledger_key.create(settings.ledger_key_file)
    key = ledger_key.read(settings.ledger_key_file)
    with vault_.transaction() as session:
        amina, _ = principals.create_principal(session, vault_.keys, role="resident", name="Amina", now=T0)
        tomasz, _ = principals.create_principal(session, vault_.keys, role="resident", name="Tomasz", now=T0)
    for person in (amina, tomasz):
        caller = Caller(person.id, "resident")
        with vault_.transaction() as session:
            for i in range(3):
                records.create_record(
                    session,
                    vault_.keys,
                    caller,
                    subject_id=person.id,
                    category="health.notes",
                    content={"i": i},
                    now=T0,
                )
    with vault_.transaction() as session:
        checkpoints.sign_now(session, key=key, origin="civicvault", now=T0)
    with vault_.transaction() as session:  # after the checkpoint: pending
        records.create_record(
            session,
            vault_.keys,
            Caller(amina.id, "resident"),
            subject_id=amina.id,
            category="health.notes",
            content={"late": True},
            now=T0,
        )
    with vault_.read_transaction() as session:
        bundle = bundles.export(session, subject_id=amina.id)
    return bundle, key, amina, tomasz


def test_an_exported_bundle_verifies_offline(setup):
    bundle, key, amina, _ = setup
    assert len(bundle["events"]) == 6 and bundle["pending"] == 2
    assert all(json.loads(e["body"])["subject_id"] == amina.id for e in bundle["events"])
    checkpoint, count = bundles.verify_bundle(json.loads(json.dumps(bundle)), log_key=key.public_key)
    assert count == 6 and checkpoint.size == 12


def mutate(bundle, change):
    copied = copy.deepcopy(bundle)
    change(copied)
    return copied


@pytest.mark.parametrize(
    "change, expected",
    [
        (
            lambda b: b["events"][2].update(body=b["events"][2]["body"].replace("health.notes", "health.labs")),
            "event 2",
        ),
        (lambda b: b["events"][1].update(salt="00" * 32), "event 1"),
        (lambda b: b["events"][0].update(leaf_index=b["events"][0]["leaf_index"] + 1), "event 0"),
        (lambda b: b["events"][3]["audit_path"].pop(), "event 3"),
        (lambda b: b["events"][4]["audit_path"].append("00" * 32), "event 4"),
        (lambda b: b.update(subject_id="p-someoneelse"), "about someone else"),
        (lambda b: b.update(checkpoint=b["checkpoint"].replace("\n12\n", "\n13\n")), "not signed"),
        (lambda b: b.update(format="other"), "not a civicvault-audit-bundle/1"),
        (lambda b: b["events"].append("junk"), "not an object"),
    ],
)
def test_a_tampered_bundle_is_refused(setup, change, expected):
    bundle, key, _, _ = setup
    with pytest.raises(bundles.BundleError) as info:
        bundles.verify_bundle(mutate(bundle, change), log_key=key.public_key)
    assert expected in str(info.value)


def test_a_wrong_log_key_is_refused(setup):
    bundle, _, _, _ = setup
    with pytest.raises(bundles.BundleError, match="not signed"):
        bundles.verify_bundle(bundle, log_key=SigningKey.generate().public_key)


def test_export_of_a_non_resident_is_not_found(vault_, setup):
    with vault_.read_transaction() as session, pytest.raises(NotFound):
        bundles.export(session, subject_id="p-nobody")


def test_the_commands_round_trip(setup, settings, tmp_path):
    _, key, amina, _ = setup
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICVAULT_")}
    env.update({"CIVICVAULT_DATABASE_URL": settings.database_url, "CIVICVAULT_MASTER_KEY": settings.master_key})
    out = tmp_path / "bundle.json"
    exported = subprocess.run(
        [
            sys.executable,
            "-m",
            "vault.cli",
            "audit",
            "export",
            "--subject",
            amina.id,
            "--out",
            str(out),
            "--home",
            str(settings.home),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert exported.returncode == 0, exported.stderr
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    checked = subprocess.run(
        [sys.executable, "-m", "vault.cli", "audit", "verify-bundle", str(out), "--log-key", key.public_key.hex()],
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", "")},
    )
    assert checked.returncode == 0 and "6 events" in checked.stdout
    data = json.loads(out.read_text())
    data["events"][0]["body"] = data["events"][0]["body"].replace("resident", "clinic")
    out.write_text(json.dumps(data))
    refused = subprocess.run(
        [sys.executable, "-m", "vault.cli", "audit", "verify-bundle", str(out), "--log-key", key.public_key.hex()],
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 1 and "event 0" in refused.stderr and "Traceback" not in refused.stderr


def test_a_cosigned_bundle_verifies_with_the_witnesses_keys(vault_, setup):
    """Witness lines are ignored without witnesses' keys, checked with them, and never pass for the log's."""
    from crypto import checkpoint as notes
    from vault.ledger import witnesses
    from vault.storage.models import WitnessKey

    _, key, amina, _ = setup
    witness = SigningKey(bytes(range(32, 64)))
    with vault_.transaction() as session:
        info, _ = principals.create_principal(session, vault_.keys, role="witness", name="County", now=T0)
        session.add(WitnessKey(principal_id=info.id, public_key=witness.public_key, registered_at=T0))
    with vault_.read_transaction() as session:
        latest = checkpoints.latest(session)
    body = notes.Checkpoint(origin=latest.origin, size=latest.tree_size, root=bytes.fromhex(latest.root_hash))
    with vault_.transaction() as session:
        witnesses.cosign(
            session,
            Caller(info.id, "witness"),
            tree_size=body.size,
            root=body.root,
            signature=notes.cosign(body, key=witness),
            now=T0,
        )
    with vault_.read_transaction() as session:
        bundle = bundles.export(session, subject_id=amina.id)
    assert bundle["checkpoint"].count("\u2014") == 2
    assert bundles.verify_bundle(bundle, log_key=key.public_key)[1] == 6
    assert bundles.verify_bundle(bundle, log_key=key.public_key, witnesses={info.id: witness.public_key})[1] == 6
    with pytest.raises(bundles.BundleError, match="not cosigned"):
        bundles.verify_bundle(bundle, log_key=key.public_key, witnesses={info.id: key.public_key})
    with pytest.raises(bundles.BundleError, match="not cosigned"):
        bundles.verify_bundle(bundle, log_key=key.public_key, witnesses={info.id: witness.public_key}, threshold=2)
    # The witness's line, relabelled as the log's, is not the log's signature.
    _, lines = notes.parse_note(bundle["checkpoint"])
    relabelled = notes.NoteSignature(body.origin, notes.key_id(body.origin, key.public_key), lines[1].signature)
    forged = mutate(bundle, lambda b: b.update(checkpoint=notes.note(body, [relabelled])))
    with pytest.raises(bundles.BundleError, match="not signed"):
        bundles.verify_bundle(forged, log_key=key.public_key)


def test_a_bundle_of_a_checkpoint_signed_before_format_2_verifies(setup):
    from crypto import checkpoint as notes

    bundle, key, _, _ = setup
    body, lines = notes.parse_note(bundle["checkpoint"])
    legacy = notes.NoteSignature(
        body.origin, notes._key_id(body.origin, notes.LEGACY_LOG_SIGNATURE_TYPE, key.public_key), lines[0].signature
    )
    old = mutate(bundle, lambda b: b.update(checkpoint=notes.note(body, [legacy])))
    assert bundles.verify_bundle(old, log_key=key.public_key)[1] == 6
