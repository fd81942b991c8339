"""Erasure by crypto-shredding: nothing of the resident opens afterwards, not even from an earlier database copy.

The backup test copies the database before the erasure (the SQLite file, or
every table into another PostgreSQL schema), keeps the master key and the
live subject-secret store, and tries to open every sealed value of the
resident from the copy: before the erasure everything opens (so the harness
can decrypt), afterwards nothing does.
"""

import json
import secrets
import sqlite3

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text
from sqlalchemy.orm import Session

import crypto
from tests.api.conftest import add_record, grant
from tests.api.helpers import assert_problem
from tests.conftest import POSTGRES_URL
from vault.cli.main import cli
from vault.core.caller import Caller
from vault.core.errors import LedgerIntegrityError, RecordUnreadable
from vault.keys.keys import open_text
from vault.records import records
from vault.rights import erasure
from vault.runtime import Vault
from vault.storage.db import make_engine
from vault.storage.models import (
    AccessRequest,
    Base,
    BreakGlass,
    Event,
    Grant,
    Principal,
    Record,
    RecordVersion,
    SubjectKey,
)
from vault.verification.verify import verify

CONFIRM = {"confirm": True}


@pytest.fixture
def copies(database_url, tmp_path):
    """copy() -> URL of a copy of the database as it is now; PostgreSQL copies are dropped afterwards."""
    made = []

    def copy() -> str:
        if database_url.startswith("sqlite"):
            target = tmp_path / f"backup-{len(made)}.db"
            source = sqlite3.connect(database_url.removeprefix("sqlite:///"))
            dest = sqlite3.connect(target)
            source.backup(dest)  # an online backup, consistent with the WAL
            source.close()
            dest.close()
            made.append(target)
            return f"sqlite:///{target}"
        schema = f"cv_backup_{secrets.token_hex(5)}"
        engine = make_engine(database_url)
        with engine.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
            for table in [*Base.metadata.sorted_tables, "alembic_version"]:
                name = getattr(table, "name", table)
                connection.execute(text(f'CREATE TABLE "{schema}"."{name}" AS SELECT * FROM "{name}"'))
        engine.dispose()
        made.append(schema)
        separator = "&" if "?" in POSTGRES_URL else "?"
        return f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"

    yield copy
    if made and not database_url.startswith("sqlite"):
        engine = make_engine(POSTGRES_URL)
        with engine.begin() as connection:
            for schema in made:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def open_everything(keys, url: str, subject_id: str) -> tuple[int, int]:
    """Try every way the master key and the secret store could open the resident's data in a database copy.

    Returns (attempts, opened).
    """
    engine = make_engine(url)
    attempts = opened = 0

    def attempt(fn):
        nonlocal attempts, opened
        attempts += 1
        try:
            fn()
            opened += 1
        except (RecordUnreadable, crypto.InvalidEnvelope):
            pass

    try:
        with Session(engine) as session:
            for version, record in session.execute(
                select(RecordVersion, Record)
                .join(Record, Record.id == RecordVersion.record_id)
                .where(Record.subject_id == subject_id)
            ):
                for part, sealed in (("content", version.content_sealed), ("title", version.title_sealed)):
                    if sealed is None:
                        continue
                    aad = crypto.record_aad(
                        record_id=record.id,
                        subject_id=subject_id,
                        version=version.version,
                        category=record.category,
                        part=part,
                    )
                    attempt(lambda: keys.open_for_subject(session, subject_id, bytes(sealed), aad=aad))
            for row in session.scalars(select(SubjectKey).where(SubjectKey.subject_id == subject_id)):
                attempt(lambda: keys.unwrap(row))
                # The master keyring alone, as if the key had never been bound.
                attempt(
                    lambda: crypto.unwrap_key(
                        keys.keyring, bytes(row.wrapped), subject_id=subject_id, version=row.version
                    )
                )
            person = session.get(Principal, subject_id)
            for scheme in (1, 2):
                attempt(lambda: keys.open_name(subject_id, bytes(person.name_sealed), scheme=scheme))
            for row in session.scalars(select(AccessRequest).where(AccessRequest.subject_id == subject_id)):
                attempt(
                    lambda: open_text(
                        keys,
                        session,
                        kind="access-request-reason",
                        object_id=row.id,
                        subject_id=subject_id,
                        sealed=bytes(row.reason_sealed),
                    )
                )
            for row in session.scalars(select(BreakGlass).where(BreakGlass.subject_id == subject_id)):
                attempt(
                    lambda: open_text(
                        keys,
                        session,
                        kind="break-glass-reason",
                        object_id=row.id,
                        subject_id=subject_id,
                        sealed=bytes(row.reason_sealed),
                    )
                )
    finally:
        engine.dispose()
    return attempts, opened


@pytest.fixture
def story(client, cast, clock):
    """Amina's history: records (one with two versions and a title), a grant and reads, a pending
    request, a break-glass, a delegation to Tomasz and one from Tomasz to her."""
    a, t = cast.amina, cast.tomasz
    labs = add_record(client, a, "health.labs", {"hb": 13.2}, title="Blood count")
    lease = add_record(client, a, "tenancy.lease", {"rent": 900})
    assert client.put(f"/api/v1/records/{labs}", json={"content": {"hb": 13.9}}, headers=a.auth).status_code == 200
    granted = grant(client, a, cast.clinic, clock)
    assert client.get(f"/api/v1/records/{labs}?purpose=treatment", headers=cast.clinic.auth).status_code == 200
    request = client.post(
        "/api/v1/access-requests",
        headers=cast.landlord.auth,
        json={
            "subject_id": a.id,
            "categories": ["tenancy.lease"],
            "purpose": "tenancy-screening",
            "reason": "Flat 4B application",
        },
    )
    assert request.status_code == 201, request.get_json()
    emergency = client.post(
        f"/api/v1/subjects/{a.id}/break-glass", headers=cast.clinic.auth, json={"reason": "Unconscious on arrival"}
    )
    assert emergency.status_code in (200, 201), emergency.get_json()
    mine = client.post(
        "/api/v1/delegations", headers=a.auth, json={"delegate_id": t.id, "expires_at": clock.at(days=30)}
    )
    theirs = client.post(
        "/api/v1/delegations", headers=t.auth, json={"delegate_id": a.id, "expires_at": clock.at(days=30)}
    )
    assert mine.status_code == 201 and theirs.status_code == 201, (mine.get_json(), theirs.get_json())
    tomasz_record = add_record(client, t, "health.allergies", {"peanuts": True})
    return {
        "labs": labs,
        "lease": lease,
        "grant": granted["id"],
        "request": request.get_json()["id"],
        "theirs": theirs.get_json()["id"],
        "tomasz_record": tomasz_record,
    }


def test_a_copy_taken_before_the_erasure_opens_nothing_of_the_resident(client, cast, story, vault_, copies, settings):
    amina = cast.amina
    before = copies()
    attempts, opened = open_everything(vault_.keys, before, amina.id)
    # Control: the harness opens everything in a copy while the resident exists
    # (the master-key-alone and wrong-scheme attempts fail by design: 1 per key, 1 name).
    assert attempts >= 10 and opened == attempts - 2

    response = client.post(f"/api/v1/subjects/{amina.id}/erasure", json=CONFIRM, headers=amina.auth)
    assert response.status_code == 200, response.get_json()

    attempts, opened = open_everything(vault_.keys, before, amina.id)
    assert attempts >= 10 and opened == 0
    # The live database holds nothing of hers to try.
    assert open_everything(vault_.keys, settings.database_url, amina.id) == (2, 0)  # only the erased name, twice

    # Restoring that copy as the database: the vault starts, lists Amina as a resident whose secret
    # is gone, opens nothing of hers, and everything of Tomasz.
    restored = Vault.open(settings.__class__(home=settings.home, database_url=before, master_key=settings.master_key))
    try:
        with restored.transaction() as session:
            with pytest.raises(RecordUnreadable):
                records.read_record(
                    session, restored.keys, Caller(amina.id, "resident"), story["labs"], now=restored.now()
                )
        with restored.transaction() as session:
            content = records.read_record(
                session, restored.keys, Caller(cast.tomasz.id, "resident"), story["tomasz_record"], now=restored.now()
            )
        assert content.content == {"peanuts": True}
        from vault.keys.key_rotation import residents_without_secret

        assert residents_without_secret(restored) == [amina.id]
    finally:
        restored.close()


def test_erasure_receipt_ledger_and_what_is_left(client, cast, story, vault_):
    amina = cast.amina
    response = client.post(f"/api/v1/subjects/{amina.id}/erasure", json=CONFIRM, headers=amina.auth)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert set(body) == {
        "erasure_id",
        "erased_at",
        "receipt",
        "subject_commitment",
        "commitment_nonce",
        "events_erased",
        "records_deleted",
        "subject_keys_destroyed",
    }
    assert body["records_deleted"] == 2 and body["subject_keys_destroyed"] == 1 and body["events_erased"] >= 8
    assert amina.id not in json.dumps(body)
    # Only the resident, holding the nonce, can open the commitment to her id.
    assert (
        erasure.subject_commitment(bytes.fromhex(body["commitment_nonce"]), amina.id).hex()
        == body["subject_commitment"]
    )

    with vault_.read_transaction() as session:
        entry = session.get(Event, body["receipt"]["leaf_index"])
        assert entry.kind == "subject.erased" and entry.subject_id is None and entry.actor_id == "system"
        assert amina.id not in entry.data and amina.id not in bytes(entry.body).decode()
        assert body["commitment_nonce"] not in entry.data
        erased = session.scalars(select(Event).where(Event.erased_by == entry.ledger_index)).all()
        assert len(erased) == body["events_erased"]
        assert all(
            e.data == "{}"
            and bytes(e.body) == b""
            and bytes(e.salt) == b""
            and e.subject_id is None
            and e.actor_id == "erased"
            for e in erased
        )
        # Her id is left only on another resident's trail, where Tomasz named her (his delegation.granted event);
        # the erasure's own events about that delegation name her no more.
        mentions = [
            e for e in session.scalars(select(Event)) if amina.id in e.data or amina.id in bytes(e.body).decode()
        ]
        assert mentions and all(e.subject_id == cast.tomasz.id for e in mentions)
        assert session.get(Principal, amina.id).erased_at is not None
        for model in (SubjectKey, Record, Grant, AccessRequest, BreakGlass):
            assert session.scalars(select(model).where(model.subject_id == amina.id)).first() is None
        from vault.storage.models import Delegation

        assert session.get(Delegation, story["theirs"]).revoked_at is not None
    assert vault_.keys.secrets.get(amina.id) is None

    # The others see her data gone, with the answer an unknown id gets.
    assert_problem(client.get(f"/api/v1/records/{story['labs']}?purpose=treatment", headers=cast.clinic.auth), 404)
    assert_problem(client.get(f"/api/v1/access-requests/{story['request']}", headers=cast.landlord.auth), 404)
    assert_problem(client.get(f"/api/v1/consents/{story['grant']}", headers=cast.clinic.auth), 404)
    listed = client.get("/api/v1/me", headers=cast.admin.auth)
    assert listed.status_code == 200
    # Her tokens are revoked: a second erasure (or anything else) is unauthenticated.
    assert_problem(client.post(f"/api/v1/subjects/{amina.id}/erasure", json=CONFIRM, headers=amina.auth), 401)
    assert_problem(client.get("/api/v1/me", headers=amina.auth), 401)
    # Tomasz is untouched.
    assert client.get(f"/api/v1/records/{story['tomasz_record']}", headers=cast.tomasz.auth).status_code == 200


def test_verify_passes_after_erasure_and_still_catches_tampering(client, cast, story, vault_):
    response = client.post(f"/api/v1/subjects/{cast.amina.id}/erasure", json=CONFIRM, headers=cast.amina.auth)
    assert response.status_code == 200
    erasure_index = response.get_json()["receipt"]["leaf_index"]
    with vault_.read_transaction() as session:
        report = verify(session)
        erased = sorted(session.scalars(select(Event.ledger_index).where(Event.erased_by.is_not(None))))
        kept = sorted(
            session.scalars(
                select(Event.ledger_index).where(Event.erased_by.is_(None), Event.ledger_index < erasure_index)
            )
        )
    assert report.size == erasure_index + 1 and erased and kept
    assert report.erased == len(erased)

    def tampered(statement: str, **params) -> str:
        with vault_.sessions.begin() as session:
            session.execute(text(statement), params)
            with pytest.raises(LedgerIntegrityError) as caught:
                verify(session)
            session.rollback()
        return str(caught.value)

    # A surviving entry changed: caught as before.
    assert f"Ledger entry {kept[-1]}" in tampered(
        "UPDATE events SET data = :d WHERE ledger_index = :i", d='{"x":1}', i=kept[-1]
    )
    # A surviving entry blanked and passed off as erased: its erasure's digest does not cover it.
    assert "not the ones it erased" in tampered(
        "UPDATE events SET erased_by = :e, data = '{}', body = :b, salt = :b, actor_id = 'erased', subject_id = NULL "
        "WHERE ledger_index = :i",
        e=erasure_index,
        b=b"",
        i=kept[-1],
    )
    # An erased entry's kept kind rewritten.
    assert "not the ones it erased" in tampered(
        "UPDATE events SET kind = 'consent.revoked' WHERE ledger_index = :i", i=erased[0]
    )
    # Something written back into an erased entry.
    assert "still holds data" in tampered(
        "UPDATE events SET data = :d WHERE ledger_index = :i", d='{"record_id":"r-x"}', i=erased[0]
    )
    # An erased entry's leaf replaced.
    assert "Ledger entry" in tampered(
        "UPDATE ledger_nodes SET hash = :h WHERE level = 0 AND idx = :i", h=b"\x00" * 32, i=erased[0]
    )
    # And untouched, it still verifies.
    with vault_.read_transaction() as session:
        assert verify(session).size == report.size


@pytest.mark.parametrize("who", ["tomasz", "clinic", "landlord", "compliance", "admin", "witness"])
def test_only_the_resident_erases_and_others_get_the_unknown_answer(client, cast, story, who):
    caller = getattr(cast, who)
    foreign = client.post(f"/api/v1/subjects/{cast.amina.id}/erasure", json=CONFIRM, headers=caller.auth)
    unknown = client.post("/api/v1/subjects/p-aaaaaaaaaaaaaaaaaaaaaaaaaa/erasure", json=CONFIRM, headers=caller.auth)
    assert assert_problem(foreign, 404) == assert_problem(unknown, 404)
    assert client.get(f"/api/v1/records/{story['labs']}", headers=cast.amina.auth).status_code == 200


def test_erasure_input_is_checked_before_anything(client, cast, story):
    a = cast.amina
    url = f"/api/v1/subjects/{a.id}/erasure"
    for body in (
        None,
        {},
        {"confirm": False},
        {"confirm": "yes"},
        {"confirm": 1},
        {"confirm": "true"},
        {"confirm": None},
        {"confirm": True, "extra": 1},
        [True],
    ):
        assert_problem(client.post(url, json=body, headers=a.auth), 400)
    assert_problem(client.post(url, data="confirm", headers={**a.auth, "Content-Type": "text/plain"}), 415)
    assert_problem(client.post(url, json=CONFIRM), 401)
    for bad in ("..", "x" * 500, "p-%00", "p-AAAAAAAA"):
        assert_problem(client.post(f"/api/v1/subjects/{bad}/erasure", json=CONFIRM, headers=a.auth), 404)
    assert client.get(f"/api/v1/records/{story['labs']}", headers=a.auth).status_code == 200  # nothing happened


def test_cli_erasure_by_an_operator_and_twice(client, cast, story, settings, vault_):
    runner = CliRunner()
    env = {"CIVICVAULT_DATABASE_URL": settings.database_url, "CIVICVAULT_MASTER_KEY": settings.master_key}
    args = ["erase", "--subject", cast.amina.id, "--home", str(settings.home)]
    refused = runner.invoke(cli, args, env=env, input="n\n")
    assert refused.exit_code == 1 and vault_.keys.secrets.get(cast.amina.id) is not None
    done = runner.invoke(cli, [*args, "--yes"], env=env)
    assert done.exit_code == 0, done.output
    receipt = json.loads(done.stdout)
    assert receipt["records_deleted"] == 2
    with vault_.read_transaction() as session:
        assert json.loads(session.get(Event, receipt["leaf_index"]).data)["requested_by"] == "operator"
    again = runner.invoke(cli, [*args, "--yes"], env=env)
    assert again.exit_code == 1 and "already been erased" in again.stderr and "Traceback" not in again.output
    for other in (cast.clinic.id, "p-aaaaaaaaaaaaaaaaaaaaaaaaaa"):
        wrong = runner.invoke(cli, ["erase", "--subject", other, "--yes", "--home", str(settings.home)], env=env)
        assert wrong.exit_code == 1 and "No such resource" in wrong.stderr
    assert (
        runner.invoke(cli, ["init", "--home", str(settings.home)], env=env).exit_code == 0
    )  # the ledger key verify needs
    verified = runner.invoke(cli, ["verify", "--home", str(settings.home)], env=env)
    assert verified.exit_code == 0, verified.output
    assert "ledger intact" in verified.stdout
    assert f"{receipt['events_erased']} entries erased with their subject" in verified.stdout


def test_an_interrupted_erasure_is_finished_by_running_it_again(client, cast, story, vault_, monkeypatch):
    """The secret is destroyed first; if the rest fails, the data is already unreadable and a rerun completes."""
    real = erasure.emit

    def failing(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(erasure, "emit", failing)
    with pytest.raises(RuntimeError):
        erasure.erase(vault_, Caller(cast.amina.id, "resident"), cast.amina.id)
    monkeypatch.setattr(erasure, "emit", real)
    assert vault_.keys.secrets.get(cast.amina.id) is None
    with vault_.read_transaction() as session:
        assert session.get(Principal, cast.amina.id).erased_at is None  # rolled back ...
    response = client.get(f"/api/v1/records/{story['labs']}", headers=cast.amina.auth)
    assert response.status_code == 500 and "integrity check" in response.get_json()["detail"]  # ... but nothing opens
    receipt = erasure.erase(vault_, Caller(cast.amina.id, "resident"), cast.amina.id)
    assert receipt.records_deleted == 2
    with vault_.read_transaction() as session:
        verify(session)


def test_two_erasures_at_once_erase_once(client, cast, story, vault_, settings):
    """Two operators (or a retrying client) erase the same resident at the same moment."""
    import threading

    from vault.core.errors import Conflict

    second = Vault.open(settings)
    results, barrier = [], threading.Barrier(2)

    def run(vault):
        barrier.wait()
        try:
            results.append(erasure.erase(vault, None, cast.amina.id))
        except Conflict as exc:
            results.append(exc)

    threads = [threading.Thread(target=run, args=(v,)) for v in (vault_, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    second.close()
    receipts = [r for r in results if isinstance(r, erasure.ErasureReceipt)]
    assert len(receipts) == 1 and len(results) == 2
    assert "already been erased" in str(next(r for r in results if not isinstance(r, erasure.ErasureReceipt)))
    with vault_.read_transaction() as session:
        assert len(session.scalars(select(Event).where(Event.kind == "subject.erased")).all()) == 1
        assert verify(session).erased == receipts[0].events_erased


def test_compliance_views_show_erased_entries_as_erased(client, cast, story, vault_, clock):
    amina = cast.amina
    before = client.get(f"/api/v1/audit/events?subject_id={amina.id}", headers=cast.compliance.auth).get_json()
    assert before["total"] >= 8
    receipt = client.post(f"/api/v1/subjects/{amina.id}/erasure", json=CONFIRM, headers=amina.auth).get_json()[
        "receipt"
    ]
    # Nothing is found under her id any more, by any filter.
    after = client.get(f"/api/v1/audit/events?subject_id={amina.id}", headers=cast.compliance.auth).get_json()
    assert after["total"] == 0
    for query in ("outcome=permitted", "purpose=treatment", "category=health.labs"):
        page = client.get(f"/api/v1/audit/events?{query}", headers=cast.compliance.auth).get_json()
        assert all(
            item["ledger_index"] not in {i["ledger_index"] for i in before["items"]} for item in page["items"]
        ), query
    # The erased entries still stand in the trail, as erased, each with its leaf.
    everything = client.get("/api/v1/audit/events?limit=1000", headers=cast.compliance.auth).get_json()["items"]
    erased = [item for item in everything if item["ledger_index"] in {i["ledger_index"] for i in before["items"]}]
    assert len(erased) == len(before["items"])
    assert all(
        item["erased"] and item["data"] is None and item["subject_id"] is None and item["leaf_hash"] for item in erased
    )
    assert all(amina.id not in json.dumps(item) for item in erased)
    # The erasure itself is a line, and the flags do not trip over the erased entries.
    assert any(
        item["ledger_index"] == receipt["leaf_index"] and item["kind"] == "subject.erased" for item in everything
    )
    flags = client.get("/api/v1/audit/flags", headers=cast.compliance.auth)
    assert flags.status_code == 200
    assert all(amina.id not in json.dumps(flag) for flag in flags.get_json()["items"])
