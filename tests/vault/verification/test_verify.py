"""``civicvault verify`` on an honest ledger, and the tamper matrix on a real database."""

import os
import subprocess
import sys

import pytest
from sqlalchemy import text

from tests.api.conftest import T0
from vault.consent import access_requests, consent
from vault.core.caller import Caller
from vault.core.errors import ConsentDenied, LedgerIntegrityError
from vault.identity import principals
from vault.keys import ledger_key
from vault.records import records
from vault.verification.verify import verify


@pytest.fixture
def history(vault_):
    """A small honest history: principals, records, versions, a grant, reads, a refusal."""
    now = T0
    with vault_.transaction() as session:
        amina, _ = principals.create_principal(session, vault_.keys, role="resident", name="Amina", now=now)
        clinic, _ = principals.create_principal(session, vault_.keys, role="clinic", name="Clinic", now=now)
    a, c = Caller(amina.id, "resident"), Caller(clinic.id, "clinic")
    with vault_.transaction() as session:
        ids = [
            records.create_record(
                session, vault_.keys, a, subject_id=a.id, category="health.labs", content={"i": i}, now=now
            ).id
            for i in range(5)
        ]
        records.add_version(session, vault_.keys, a, ids[0], content={"i": 99}, now=now)
        consent.create_grant(
            session,
            a,
            grantee_id=c.id,
            categories=["health.*"],
            purpose="treatment",
            actions=["read"],
            expires_at=now.replace(year=2027),
            limits=vault_.limits,
            now=now,
        )
        request = access_requests.create_request(
            session,
            vault_.keys,
            c,
            subject_id=a.id,
            categories=["health.labs"],
            purpose="research",
            reason="Study",
            limits=vault_.limits,
            now=now,
        )
        access_requests.deny_request(session, vault_.keys, a, request.id, now=now)
    for record_id in ids:
        with vault_.transaction() as session:
            records.read_record(session, vault_.keys, c, record_id, purpose="treatment", now=now)
    with pytest.raises(ConsentDenied):
        with vault_.transaction() as session:
            records.read_record(session, vault_.keys, c, ids[0], purpose="research", now=now)
    return ids


def run_verify(vault_):
    with vault_.read_transaction() as session:
        return verify(session)


def execute(vault_, *statements):
    with vault_.engine.begin() as connection:
        for statement, params in statements:
            connection.execute(text(statement), params)


def size(vault_) -> int:
    with vault_.engine.connect() as connection:
        return connection.execute(text("SELECT size FROM ledger_head")).scalar()


def test_an_honest_ledger_verifies(vault_, history):
    report = run_verify(vault_)
    assert report.size == size(vault_) > 20


def body_of(vault_, index) -> bytes:
    with vault_.engine.connect() as connection:
        return bytes(connection.execute(text("SELECT body FROM events WHERE ledger_index = :i"), {"i": index}).scalar())


def tamper_byte(vault_, index):
    body = bytearray(body_of(vault_, index))
    body[len(body) // 2] ^= 0x01
    execute(vault_, ("UPDATE events SET body = :b WHERE ledger_index = :i", {"b": bytes(body), "i": index}))


def tamper_delete(vault_, index):
    execute(vault_, ("DELETE FROM events WHERE ledger_index = :i", {"i": index}))


def tamper_insert(vault_, index):
    # A forged event copied from a real one, slipped in at the end.
    execute(
        vault_,
        (
            "INSERT INTO events (ledger_index, kind, occurred_at, actor_id, subject_id, data, salt, body) "
            "SELECT :n, kind, occurred_at, actor_id, subject_id, data, salt, body FROM events WHERE ledger_index = :i",
            {"n": size(vault_), "i": index},
        ),
    )


def tamper_swap(vault_, index):
    with vault_.engine.connect() as connection:
        rows = {
            r[0]: r
            for r in connection.execute(
                text(
                    "SELECT ledger_index, kind, occurred_at, actor_id, subject_id, data, salt, body FROM events "
                    "WHERE ledger_index IN (:a, :b)"
                ),
                {"a": index, "b": index + 1},
            )
        }
    for target, source in ((index, rows[index + 1]), (index + 1, rows[index])):
        execute(
            vault_,
            (
                "UPDATE events SET kind = :k, occurred_at = :o, actor_id = :a, subject_id = :s, data = :d, salt = "
                ":salt, body = :body "
                "WHERE ledger_index = :i",
                {
                    "k": source[1],
                    "o": source[2],
                    "a": source[3],
                    "s": source[4],
                    "d": source[5],
                    "salt": source[6],
                    "body": source[7],
                    "i": target,
                },
            ),
        )


def tamper_truncate(vault_, index):
    execute(vault_, ("DELETE FROM events WHERE ledger_index >= :i", {"i": index}))


def tamper_column(vault_, index):
    execute(vault_, ("UPDATE events SET actor_id = 'p-someoneelse' WHERE ledger_index = :i", {"i": index}))


def tamper_node(vault_, index):
    execute(
        vault_, ("UPDATE ledger_nodes SET hash = :h WHERE level = 1 AND idx = :i", {"h": bytes(32), "i": index // 2})
    )


@pytest.mark.parametrize(
    "tamper, position, expected",
    [
        (tamper_byte, 7, "Ledger entry 7: its event does not match its leaf"),
        (tamper_delete, 9, "Ledger entry 9: is missing"),
        (tamper_insert, 3, "lies beyond the ledger's size"),
        (tamper_swap, 4, "Ledger entry 4: its event does not match its leaf"),
        (tamper_truncate, 15, "Ledger entry 15: is missing"),
        (tamper_column, 2, "Ledger entry 2: its columns do not match its body (actor_id)"),
        (tamper_node, 10, "node (level 1, index 5) does not match its children"),
    ],
)
def test_tampering_is_detected_and_named(vault_, history, tamper, position, expected):
    run_verify(vault_)
    tamper(vault_, position)
    with pytest.raises(LedgerIntegrityError) as info:
        run_verify(vault_)
    assert expected in info.value.detail


def test_a_record_version_or_grant_without_its_event_is_detected(vault_, history):
    # An operator slipping a version in behind the ledger's back.
    execute(
        vault_,
        (
            "INSERT INTO record_versions (record_id, version, content_sealed, title_sealed, created_by, created_at) "
            "SELECT record_id, 7, content_sealed, NULL, created_by, created_at FROM record_versions WHERE record_id "
            "= :r AND version = 1",
            {"r": history[1]},
        ),
    )
    with pytest.raises(LedgerIntegrityError) as info:
        run_verify(vault_)
    assert f"record {history[1]} version 7 has no record event" in info.value.detail
    execute(vault_, ("DELETE FROM record_versions WHERE version = 7", {}))
    run_verify(vault_)
    execute(
        vault_,
        (
            "INSERT INTO grants (id, subject_id, grantee_id, categories, purpose, actions, valid_from, expires_at, "
            "max_uses, uses, "
            "created_by, created_at, revoked_at, revoked_by, request_id) SELECT 'g-forged', subject_id, grantee_id, "
            "categories, "
            "purpose, actions, valid_from, expires_at, max_uses, uses, created_by, created_at, revoked_at, "
            "revoked_by, request_id "
            "FROM grants",
            {},
        ),
    )
    with pytest.raises(LedgerIntegrityError) as info:
        run_verify(vault_)
    assert "grant g-forged has no consent.granted event" in info.value.detail


def test_the_command_line_exits_non_zero_naming_the_entry(vault_, history, settings):
    ledger_key.create(settings.ledger_key_file)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICVAULT_")}
    env.update({"CIVICVAULT_DATABASE_URL": settings.database_url, "CIVICVAULT_MASTER_KEY": settings.master_key})
    ok = subprocess.run(
        [sys.executable, "-m", "vault.cli", "verify", "--home", str(settings.home)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert ok.returncode == 0 and "ledger intact" in ok.stdout
    tamper_byte(vault_, 5)
    bad = subprocess.run(
        [sys.executable, "-m", "vault.cli", "verify", "--home", str(settings.home)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert bad.returncode == 1 and "Ledger entry 5" in bad.stderr and "Traceback" not in bad.stderr


@pytest.fixture
def longer_history(vault_, history):
    """The small history and enough access events after it for many chunks of four entries."""
    from datetime import timedelta

    from vault.ledger import ledger
    from vault.ledger.events import encode

    with vault_.transaction() as session:
        ledger.append_many(
            session,
            [
                {
                    "kind": "access.refused",
                    "occurred_at": T0 + timedelta(seconds=i),
                    "actor_id": f"p-actor{i % 7}",
                    "subject_id": f"p-subject{i % 5}",
                    "data_json": encode({"reason": "no-grant", "n": i}),
                }
                for i in range(83)
            ],
        )
    return history


@pytest.fixture
def small_chunks(monkeypatch):
    """Parallel verification from 8 entries on, in chunks of 4 or more.

    The workers get the chunk level with each task.
    """
    from vault.verification import verify as module

    monkeypatch.setattr(module, "MIN_CHUNK_LEVEL", 2)
    monkeypatch.setattr(module, "PARALLEL_MIN_SIZE", 8)


def test_parallel_verification_agrees_with_the_single_pass(vault_, longer_history, small_chunks):
    with vault_.read_transaction() as session:
        single = verify(session)
        seen = []
        parallel = verify(session, workers=2, progress=seen.append)
    assert parallel == single and single.size > 100
    assert sum(seen) == single.size and len(seen) == 13  # one progress step per chunk (of 8 here)


@pytest.mark.parametrize(
    "tamper, position, expected",
    [
        (tamper_byte, 57, "Ledger entry 57: its event does not match its leaf"),
        (tamper_delete, 42, "Ledger entry 42: is missing"),
        (tamper_column, 90, "Ledger entry 90: its columns do not match its body (actor_id)"),
        (tamper_insert, 3, "lies beyond the ledger's size"),
        (tamper_truncate, 101, "Ledger entry 101: is missing"),
        (tamper_node, 70, "node (level 1, index 35) does not match its children"),
    ],
)
def test_parallel_verification_names_the_same_first_bad_entry(
    vault_, longer_history, small_chunks, tamper, position, expected
):
    tamper(vault_, position)
    tamper_byte(vault_, position + 5) if tamper is tamper_column else None  # a later fault must not be the one named
    for workers in (1, 2):
        with pytest.raises(LedgerIntegrityError) as info:
            with vault_.read_transaction() as session:
                verify(session, workers=workers)
        assert expected in info.value.detail, (workers, info.value.detail)


def test_parallel_verification_checks_the_nodes_above_the_chunks(vault_, longer_history, small_chunks):
    # Level 4 lies above the chunks of eight entries: only the merging process computes it.
    execute(vault_, ("UPDATE ledger_nodes SET hash = :h WHERE level = 4 AND idx = 3", {"h": bytes(32)}))
    with pytest.raises(LedgerIntegrityError) as info:
        with vault_.read_transaction() as session:
            verify(session, workers=2)
    assert "node (level 4, index 3) does not match its children" in info.value.detail


def test_a_record_event_that_names_no_record_is_reported_not_a_crash(vault_):
    """An entry committed to the ledger with malformed data (a buggy or hostile writer) is named, not a traceback."""
    from vault.ledger import ledger
    from vault.ledger.events import encode

    with vault_.transaction() as session:
        ledger.append(
            session,
            kind="record.created",
            occurred_at=T0,
            actor_id="p-x",
            subject_id="p-y",
            data_json=encode({"version": 1}),
        )
    with pytest.raises(LedgerIntegrityError) as info:
        run_verify(vault_)
    assert "Ledger entry 0: its record.created event does not name its record_id and version" in info.value.detail
