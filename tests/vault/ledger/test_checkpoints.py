"""Signed checkpoints: signing, the API, and what verify finds when history is rewritten."""

import base64

import pytest
from sqlalchemy import text

from crypto import checkpoint as notes
from crypto.bls import SigningKey
from crypto.errors import SignatureError
from tests.api.conftest import T0
from tests.api.helpers import assert_problem
from vault.core.caller import Caller
from vault.core.errors import InvalidInput, LedgerIntegrityError
from vault.identity import principals
from vault.keys import ledger_key
from vault.ledger import checkpoints
from vault.records import records
from vault.verification.verify import verify


@pytest.fixture
def key(settings):
    ledger_key.create(settings.ledger_key_file)
    return ledger_key.read(settings.ledger_key_file)


@pytest.fixture
def amina(vault_):
    with vault_.transaction() as session:
        info, token = principals.create_principal(session, vault_.keys, role="resident", name="Amina", now=T0)
    return Caller(info.id, "resident"), token


def write(vault_, caller, n):
    with vault_.transaction() as session:
        for i in range(n):
            records.create_record(
                session, vault_.keys, caller, subject_id=caller.id, category="health.notes", content={"i": i}, now=T0
            )


def sign(vault_, key):
    with vault_.transaction() as session:
        return checkpoints.sign_now(session, key=key, origin="civicvault-test", now=T0)


def check(vault_, key):
    with vault_.read_transaction() as session:
        return verify(session, public_key=key.public_key)


def test_a_signed_checkpoint_verifies_and_is_served(vault_, app, key, amina):
    caller, token = amina
    write(vault_, caller, 4)
    signed = sign(vault_, key)
    assert signed.tree_size == 8  # each record: an access.permitted (write) and a record.created event
    body, signatures = notes.parse_note(signed.note)
    notes.verify(body, signatures[0], name="civicvault-test", public_key=key.public_key)
    assert body.root.hex() == signed.root_hash
    served = app.test_client().get("/api/v1/ledger/checkpoint", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert served["note"] == signed.note and served["tree_size"] == signed.tree_size
    assert base64.b64decode(served["signatures"][0]["signature"]) == signatures[0].signature
    assert check(vault_, key).checkpoints == 1


def test_no_checkpoint_yet_is_404_and_an_empty_ledger_cannot_be_signed(vault_, app, key, amina):
    _, token = amina
    assert_problem(
        app.test_client().get("/api/v1/ledger/checkpoint", headers={"Authorization": f"Bearer {token}"}), 404
    )
    with pytest.raises(InvalidInput):
        sign(vault_, key)


def test_a_truncated_tail_contradicts_the_checkpoint(vault_, key, amina):
    caller, _ = amina
    write(vault_, caller, 5)
    sign(vault_, key)
    # Rewrite history consistently: drop the last entries, their nodes, and shrink the head.
    with vault_.engine.begin() as connection:
        connection.execute(text("DELETE FROM events WHERE ledger_index >= 6"))
        connection.execute(text("DELETE FROM ledger_nodes WHERE level = 0 AND idx >= 6"))
        connection.execute(text("DELETE FROM ledger_nodes WHERE level = 1 AND idx >= 3"))
        connection.execute(text("DELETE FROM ledger_nodes WHERE level = 2 AND idx >= 1"))
        connection.execute(text("DELETE FROM ledger_nodes WHERE level = 3"))
        connection.execute(text("UPDATE ledger_head SET size = 6"))
        connection.execute(text("DELETE FROM record_versions"))  # and the records whose events went
        connection.execute(text("DELETE FROM records"))
    with pytest.raises(LedgerIntegrityError) as info:
        check(vault_, key)
    assert "Ledger entry 6 is missing" in info.value.detail and "signed over 10 entries" in info.value.detail


def test_a_rewritten_history_contradicts_the_checkpoint(vault_, key, amina):
    caller, _ = amina
    write(vault_, caller, 3)
    sign(vault_, key)
    # Replace the whole ledger by a self-consistent forgery of the same size.
    with vault_.engine.begin() as connection:
        for table in ("events", "ledger_nodes", "record_versions", "records"):
            connection.execute(text(f"DELETE FROM {table}"))
        connection.execute(text("UPDATE ledger_head SET size = 0"))
    write(vault_, caller, 3)
    with pytest.raises(LedgerIntegrityError) as info:
        check(vault_, key)
    assert "contradicts checkpoint" in info.value.detail


def test_a_forged_checkpoint_signature_is_refused(vault_, key, amina):
    caller, _ = amina
    write(vault_, caller, 2)
    sign(vault_, key)
    forger = SigningKey.generate()
    with vault_.transaction() as session:
        checkpoints.sign_now(session, key=forger, origin="civicvault-test", now=T0)
    with pytest.raises(LedgerIntegrityError) as info:
        check(vault_, key)
    assert "checkpoint 2" in info.value.detail and "does not verify" in info.value.detail


def test_note_parsing_refuses_malformed_notes(key):
    body = notes.Checkpoint(origin="o", size=3, root=bytes(32))
    good = notes.note(body, [notes.sign(body, name="o", key=key)])
    notes.parse_note(good)
    for bad in [
        good.replace("\n\n", "\n"),
        good.replace("\n3\n", "\n03\n"),
        good.replace("\n3\n", "\n-3\n"),
        good.replace("\u2014", "-"),
        good[:-10] + "\n",
        good.replace("o\n", "o x\n", 1),
    ]:
        with pytest.raises(SignatureError):
            parsed, sigs = notes.parse_note(bad)
            notes.verify(parsed, sigs[0], name="o", public_key=key.public_key)
    other = notes.Checkpoint(origin="o", size=4, root=bytes(32))
    with pytest.raises(notes.CheckpointError):
        notes.verify(other, notes.parse_note(good)[1][0], name="o", public_key=key.public_key)


def test_periodic_signing_follows_entries_and_time(vault_, key, amina):
    from datetime import timedelta

    caller, _ = amina

    def due(now):
        return checkpoints.sign_if_due(vault_, key=key, origin="o", every=4, seconds=60, holder="w1", now=now)

    assert due(T0) is None  # empty ledger
    write(vault_, caller, 1)
    first = due(T0)
    assert first is not None and first.tree_size == 2
    assert due(T0 + timedelta(seconds=1)) is None  # nothing new
    write(vault_, caller, 1)
    assert due(T0 + timedelta(seconds=2)) is None  # 2 new < 4, and not 60 s yet
    assert due(T0 + timedelta(seconds=61)).tree_size == 4  # old enough
    write(vault_, caller, 2)
    assert due(T0 + timedelta(seconds=62)).tree_size == 8  # 4 new entries
    assert check(vault_, key).checkpoints == 3


def test_only_one_worker_signs_at_a_time(vault_, key, amina):
    from sqlalchemy import update

    from vault.storage.models import CheckpointLease

    caller, _ = amina
    write(vault_, caller, 1)
    with vault_.transaction() as session:  # another worker holds the lease
        session.execute(update(CheckpointLease).values(holder="w2", until=T0.replace(year=2030)))
    assert checkpoints.sign_if_due(vault_, key=key, origin="o", every=1, seconds=1, holder="w1", now=T0) is None
    with vault_.transaction() as session:  # its lease has run out
        session.execute(update(CheckpointLease).values(until=T0.replace(year=2025)))
    assert checkpoints.sign_if_due(vault_, key=key, origin="o", every=1, seconds=1, holder="w1", now=T0).tree_size == 2


def test_cosignatures_and_anchors_alone_do_not_make_a_checkpoint_due(vault_, key, amina):
    """An idle vault with witnesses: each checkpoint is cosigned, each cosignature an entry; no checkpoint loop."""
    from datetime import timedelta

    from vault.ledger import ledger
    from vault.ledger.events import encode

    caller, _ = amina

    def due(now):
        return checkpoints.sign_if_due(vault_, key=key, origin="o", every=100, seconds=60, holder="w1", now=now)

    write(vault_, caller, 1)
    first = due(T0)
    assert first is not None
    for kind in checkpoints.BOOKKEEPING_KINDS:
        with vault_.transaction() as session:
            ledger.append(
                session,
                kind=kind,
                occurred_at=T0,
                actor_id="system",
                subject_id=None,
                data_json=encode({"tree_size": first.tree_size}),
            )
    assert due(T0 + timedelta(minutes=10)) is None  # only bookkeeping since: not news
    write(vault_, caller, 1)
    later = due(T0 + timedelta(minutes=11))
    assert later is not None and later.tree_size == first.tree_size + 2 + 2  # the bookkeeping entries are covered too


def test_checkpoints_and_cosignatures_made_before_format_2_still_verify(vault_, key, amina):
    """Format 1 named the node's key with type byte 0xB1 and witnesses signed the log's very bytes.

    A stored format-1 checkpoint verifies (its signed bytes are those of format 2) and is
    served under its stored key id; a format-1 cosignature is kept but neither shown nor
    counted, until the witness cosigns that checkpoint again in format 2.
    """
    from vault.ledger import witnesses
    from vault.storage.models import Cosignature, WitnessKey

    caller, _ = amina
    write(vault_, caller, 2)
    signed = sign(vault_, key)
    body = notes.Checkpoint(origin=signed.origin, size=signed.tree_size, root=bytes.fromhex(signed.root_hash))
    legacy_id = notes._key_id(signed.origin, notes.LEGACY_LOG_SIGNATURE_TYPE, key.public_key)
    witness = SigningKey(bytes(range(32, 64)))
    with vault_.transaction() as session:
        info, _ = principals.create_principal(session, vault_.keys, role="witness", name="County", now=T0)
        session.add(WitnessKey(principal_id=info.id, public_key=witness.public_key, registered_at=T0))
    with vault_.engine.begin() as connection:  # what format 1 stored
        connection.execute(text("UPDATE checkpoints SET key_id = :k"), {"k": legacy_id})
        checkpoint_id = connection.execute(text("SELECT id FROM checkpoints")).scalar_one()
    with vault_.transaction() as session:
        session.add(
            Cosignature(
                checkpoint_id=checkpoint_id,
                witness_id=info.id,
                signature=witness.sign(body.body().encode()),
                created_at=T0,
            )
        )

    assert check(vault_, key).checkpoints == 1
    with vault_.read_transaction() as session:
        served = checkpoints.latest(session)
    assert served.cosigners == 0 and not served.witnessed and served.signatures[0].key_id == legacy_id.hex()
    with pytest.raises(notes.CheckpointError):
        notes.verify_note(served.note, public_key=key.public_key)
    notes.verify_note(served.note, public_key=key.public_key, accept_legacy_key_id=True)

    with vault_.transaction() as session:  # the witness's next round: the same checkpoint, in format 2
        witnesses.cosign(
            session,
            Caller(info.id, "witness"),
            tree_size=body.size,
            root=body.root,
            signature=notes.cosign(body, key=witness),
            now=T0,
        )
    with vault_.read_transaction() as session:
        served = checkpoints.latest(session)
    assert served.cosigners == 1 and served.witnessed
    parsed, lines = notes.verify_note(served.note, public_key=key.public_key, accept_legacy_key_id=True)
    assert notes.verify_cosignatures(parsed, lines, {info.id: witness.public_key}, threshold=1) == [info.id]

    write(vault_, caller, 1)
    later = sign(vault_, key)
    assert later.signatures[0].key_id == notes.key_id(later.origin, key.public_key).hex()
    assert check(vault_, key).checkpoints == 2


def test_a_stored_checkpoint_under_another_key_id_fails_verify(vault_, key, amina):
    caller, _ = amina
    write(vault_, caller, 1)
    sign(vault_, key)
    with vault_.engine.begin() as connection:
        connection.execute(text("UPDATE checkpoints SET key_id = :k"), {"k": b"\x00\x00\x00\x00"})
    with pytest.raises(LedgerIntegrityError, match="does not verify"):
        check(vault_, key)
