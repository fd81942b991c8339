"""Pending events and the sequencer (vault/ledger/sequencer.py, docs/ledger-format.md section 10).

On SQLite and PostgreSQL: events are committed as pending and sequenced in
batches, gap-free and once each, under concurrent writers and concurrent
sequencers; receipts resolve; a sequencer that dies holding the lock loses
it; back-pressure refuses actions past the limit; a tampered pending row
stops the sequencer rather than entering the log.
"""

import dataclasses
import os
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text, update

from crypto import merkle
from vault.core.config import SequencerSettings
from vault.core.errors import LedgerBusy, LedgerIntegrityError
from vault.ledger import ledger
from vault.ledger.events import DomainEvent, emit
from vault.runtime import Vault
from vault.storage.models import Event, LedgerNode, PendingEvent
from vault.verification.verify import verify

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def event(n: int = 0, subject: str = "p-subject") -> DomainEvent:
    return DomainEvent(
        kind="access.permitted",
        occurred_at=T0 + timedelta(milliseconds=n),
        actor_id="p-clinic",
        subject_id=subject,
        data={"record_id": f"r-{n}", "category": "health.allergies", "purpose": "treatment", "basis": "grant"},
    )


def open_with(settings, **sequencer) -> Vault:
    return Vault.open(dataclasses.replace(settings, sequencer=SequencerSettings(**sequencer)))


def counts(vault: Vault) -> tuple[int, int, int]:
    """(ledger size, sequenced events, pending events)."""
    with vault.read_transaction() as session:
        return (
            ledger.size(session),
            session.scalar(select(func.count()).select_from(Event)),
            session.scalar(select(func.count()).select_from(PendingEvent)),
        )


def proves(vault: Vault, receipt: ledger.Receipt) -> bool:
    with vault.read_transaction() as session:
        proof = ledger.inclusion(session, leaf_index=receipt.leaf_index)
    merkle.verify_inclusion(
        proof.leaf_index,
        proof.tree_size,
        bytes.fromhex(receipt.leaf_hash),
        [bytes.fromhex(h) for h in proof.audit_path],
        bytes.fromhex(proof.root_hash),
    )
    return proof.leaf_hash == receipt.leaf_hash


def test_an_event_is_pending_in_its_transaction_and_sequenced_when_the_response_is_due(vault_):
    """Pending in the action's transaction (no shared row touched), sequenced before the response. PostgreSQL:
    after the commit, by the waiting request. SQLite: by the batch's commit (vault.ledger.group_commit), which
    holds the write lock, the sequencer lock there, so the receipt has its index when the transaction returns."""
    with vault_.transaction() as session:
        receipt = emit(session, event())
        assert receipt.leaf_index is None and receipt.status == "pending"
        assert ledger.size(session) == 0
        assert session.scalar(select(func.count()).select_from(PendingEvent)) == 1
    assert receipt.leaf_index == 0 and receipt.status == "sequenced"
    assert counts(vault_) == (1, 1, 0)
    assert proves(vault_, receipt)
    with vault_.read_transaction() as session:
        assert ledger.entry(session, receipt.leaf_hash).leaf_index == 0


def test_a_pending_event_waits_in_the_queue_until_a_sequencer_runs(settings):
    vault = open_with(settings, mode="external", receipt_wait_ms=0)
    try:
        with vault.transaction() as session:
            receipt = emit(session, event())
            assert receipt.leaf_index is None and ledger.size(session) == 0
        assert receipt.leaf_index is None and counts(vault) == (0, 0, 1)
        vault.sequencer.drain()
        assert counts(vault) == (1, 1, 0)
        with vault.read_transaction() as session:
            assert ledger.entry(session, receipt.leaf_hash).leaf_index == 0
    finally:
        vault.close()


def test_a_rolled_back_action_leaves_no_pending_event(vault_):
    with pytest.raises(RuntimeError), vault_.transaction() as session:
        emit(session, event())
        raise RuntimeError("the action failed")
    assert counts(vault_) == (0, 0, 0)


@pytest.mark.parametrize("writers, each", [(16, 12)])
def test_concurrent_writers_get_unique_gap_free_indices_and_every_receipt_resolves(vault_, writers, each):
    receipts: list[ledger.Receipt] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def write(w: int) -> None:
        try:
            for i in range(each):
                with vault_.transaction() as session:
                    receipt = emit(session, event(w * 1000 + i))
                with lock:
                    receipts.append(receipt)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    total = writers * each
    assert sorted(r.leaf_index for r in receipts) == list(range(total))
    assert len({r.leaf_hash for r in receipts}) == total
    assert counts(vault_) == (total, total, 0)
    with vault_.read_transaction() as session:
        assert verify(session).size == total


def test_two_sequencing_vaults_on_one_database_take_turns(settings):
    """Two vaults (as two server processes) sequencing the same queue: each event once, no gap."""
    one, two = open_with(settings), open_with(settings)
    try:
        external = open_with(settings, mode="external", receipt_wait_ms=0)
        with external.transaction() as session:
            for n in range(300):
                emit(session, event(n))
        external.close()
        done = []
        threads = [threading.Thread(target=lambda v=v: done.append(v.sequencer.drain())) for v in (one, two)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(done) == 300
        assert counts(one) == (300, 300, 0)
        with one.read_transaction() as session:
            indices = session.scalars(select(Event.ledger_index).order_by(Event.ledger_index)).all()
            assert indices == list(range(300))
            verify(session)
    finally:
        one.close()
        two.close()


def test_with_an_external_sequencer_receipts_stay_pending_until_it_runs(settings):
    vault = open_with(settings, mode="external", receipt_wait_ms=30)
    try:
        began = time.monotonic()
        with vault.transaction() as session:
            receipt = emit(session, event())
        assert time.monotonic() - began < 2  # the bounded wait, not forever
        assert receipt.leaf_index is None
        with vault.read_transaction() as session:
            entry = ledger.entry(session, receipt.leaf_hash)
            assert (entry.status, entry.leaf_index, entry.inclusion) == ("pending", None, None)
            assert ledger.pending_backlog(session, now=datetime.now(UTC)).pending == 1
            verify(session)  # a pending event is checked, and within the bound it is no fault
        assert vault.sequencer.drain() == 1
        with vault.read_transaction() as session:
            entry = ledger.entry(session, receipt.leaf_hash)
        assert (entry.status, entry.leaf_index) == ("sequenced", 0)
        assert entry.inclusion is not None and entry.inclusion.leaf_hash == receipt.leaf_hash
    finally:
        vault.close()


def test_a_waiting_request_is_answered_by_a_sequencer_in_another_process(settings):
    """External mode: the request polls, ``civicvault sequencer``'s loop (here a thread) sequences it."""
    sequencer = open_with(settings)
    waiting = open_with(settings, mode="external", receipt_wait_ms=5000)
    stop = threading.Event()
    loop = threading.Thread(target=sequencer.sequencer.run, args=(stop,), kwargs={"interval": 0.005})
    loop.start()
    try:
        with waiting.transaction() as session:
            receipt = emit(session, event())
        assert receipt.leaf_index == 0
        assert proves(waiting, receipt)
    finally:
        stop.set()
        loop.join()
        sequencer.close()
        waiting.close()


def test_back_pressure_refuses_new_actions_past_the_limit_and_lifts_when_drained(settings):
    vault = open_with(settings, mode="external", receipt_wait_ms=0, max_pending=5)
    try:
        for n in range(5):
            with vault.transaction() as session:
                emit(session, event(n))
        vault.ledger_state.backlog_checked = float("-inf")  # the gauge is re-read at most every 0.5 s
        with pytest.raises(LedgerBusy), vault.transaction() as session:
            emit(session, event(99))
        assert counts(vault) == (0, 0, 5)  # nothing of the refused action
        vault.sequencer.drain()
        vault.ledger_state.backlog_checked = float("-inf")
        with vault.transaction() as session:
            emit(session, event(100))
        assert counts(vault)[2] == 1
    finally:
        vault.close()


def test_a_tampered_pending_event_stops_the_sequencer_and_enters_nothing(settings):
    vault = open_with(settings, mode="external", receipt_wait_ms=0)
    try:
        with vault.transaction() as session:
            emit(session, event(1))
            emit(session, event(2))
        with vault.write_transaction() as session:
            first = session.scalar(select(func.min(PendingEvent.id)))
            session.execute(
                update(PendingEvent).where(PendingEvent.id == first).values(body=b'{"kind":"something else"}')
            )
        with pytest.raises(LedgerIntegrityError, match="does not match its leaf hash"):
            vault.sequencer.step()
        assert counts(vault) == (0, 0, 2)
        with vault.read_transaction() as session, pytest.raises(LedgerIntegrityError, match="Pending event"):
            verify(session)
    finally:
        vault.close()


def test_verify_reports_an_event_pending_past_the_bound(settings):
    vault = open_with(settings, mode="external", receipt_wait_ms=0)
    try:
        with vault.transaction() as session:
            emit(session, event())
        with vault.write_transaction() as session:
            session.execute(update(PendingEvent).values(queued_at=datetime.now(UTC) - timedelta(minutes=5)))
        with vault.read_transaction() as session:
            verify(session)  # no bound given: checked, not timed
            with pytest.raises(LedgerIntegrityError, match="waited .* longer than the bound of 60 s"):
                verify(session, pending_bound=60)
    finally:
        vault.close()


def test_verify_finds_a_pending_event_that_is_also_sequenced(settings):
    vault = open_with(settings, mode="external", receipt_wait_ms=0)
    try:
        with vault.transaction() as session:
            emit(session, event())
        with vault.write_transaction() as session:
            row = session.execute(select(PendingEvent)).scalar_one()
            copy = {c.name: getattr(row, c.key) for c in PendingEvent.__table__.columns if c.name != "id"}
        vault.sequencer.drain()
        with vault.write_transaction() as session:
            session.add(PendingEvent(**copy))
        with vault.read_transaction() as session, pytest.raises(LedgerIntegrityError, match="also a sequenced"):
            verify(session)
    finally:
        vault.close()


def test_verify_finds_an_event_whose_leaf_hash_column_was_changed(vault_):
    with vault_.transaction() as session:
        emit(session, event(1))
        emit(session, event(2))
    with vault_.write_transaction() as session:
        session.execute(update(Event).where(Event.ledger_index == 1).values(leaf_hash=b"\x00" * 32))
    with vault_.read_transaction() as session, pytest.raises(LedgerIntegrityError, match="Ledger entry 1: its leaf"):
        verify(session)


def test_an_erasure_sequences_the_resident_s_pending_events_before_blanking_them(settings, make_actor):
    """Events still pending when a resident is erased are blanked with the rest, not left readable."""
    from vault.core.caller import Caller
    from vault.rights import erasure

    vault = open_with(settings, mode="external", receipt_wait_ms=0)
    try:
        resident = make_actor("resident")  # through the fixture's own (sequencing) vault
        with vault.transaction() as session:
            emit(session, event(1, subject=resident.id))
        assert counts(vault)[2] == 1
        done = erasure.erase(vault, Caller(id=resident.id, role="resident"), resident.id)
        with vault.read_transaction() as session:
            data = session.scalars(select(Event.data).where(Event.erased_by == done.leaf_index)).all()
            assert data and set(data) == {"{}"}
            assert session.scalar(select(func.count()).select_from(PendingEvent)) == 0
            verify(session)
    finally:
        vault.close()


_HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from vault.core.config import Settings
    from vault.ledger import ledger
    from vault.runtime import Vault

    vault = Vault.open(Settings(home=Path(sys.argv[1]), database_url=sys.argv[2], master_key=sys.argv[3]))
    with vault.write_transaction() as session:
        ledger.lock_sequencer(session)
        ledger.sequence_pending(session, limit=10_000)  # a batch written, not committed
        print("holding", flush=True)
        time.sleep(600)
    """
)


def test_a_sequencer_that_dies_holding_the_lock_loses_it_and_another_carries_on(settings):
    """kill -9 of the lock holder mid-batch: its batch rolls back, the next sequencer takes every event once."""
    writer = open_with(settings, mode="external", receipt_wait_ms=0)
    try:
        with writer.transaction() as session:
            receipts = [emit(session, event(n)) for n in range(50)]
        holder = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, str(settings.home), settings.database_url, settings.master_key],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": os.getcwd()},
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
            taken: list[int] = []
            second = threading.Thread(target=lambda: taken.append(writer.sequencer.drain()))
            second.start()
            time.sleep(0.3)
            assert second.is_alive()  # waiting for the lock the holder has
            assert counts(writer) == (0, 0, 50)
            holder.kill()
            holder.wait(timeout=10)
            second.join(timeout=30)
            assert not second.is_alive() and taken == [50]
        finally:
            if holder.poll() is None:
                holder.kill()
        assert counts(writer) == (50, 50, 0)
        with writer.read_transaction() as session:
            found = ledger.index_of(session, [r.leaf_hash for r in receipts])
            assert sorted(found.values()) == list(range(50))
            verify(session)
    finally:
        writer.close()


def test_an_idle_background_loop_is_woken_by_a_request_that_leaves_its_receipt_pending(settings):
    """The server's loop looks for work only every ``idle`` seconds when there is none (an idle server does
    not query its database a hundred times a second), yet a request of its process that does not wait for
    its index wakes it at once."""
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("on SQLite the writers' shared transaction sequences before its commit")
    vault = open_with(settings, receipt_wait_ms=0)
    stop = threading.Event()
    probes = []
    looked = vault.sequencer._anything_pending

    def counted() -> bool:
        probes.append(time.monotonic())
        return looked()

    vault.sequencer._anything_pending = counted
    loop = threading.Thread(target=vault.sequencer.run, args=(stop,), kwargs={"interval": 0.01, "idle": 30.0})
    loop.start()
    try:
        deadline = time.monotonic() + 5
        while not probes and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)
        assert len(probes) == 1  # idle: no second look within 0.3 s
        with vault.transaction() as session:
            receipt = emit(session, event())
        assert receipt.leaf_index is None  # the request did not wait
        deadline = time.monotonic() + 5
        while counts(vault)[2] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert counts(vault) == (1, 1, 0)
        assert time.monotonic() - probes[0] < 5  # well before the 30 s idle pause
    finally:
        stop.set()
        loop.join(5)
        vault.close()


def test_the_sequencer_lock_is_per_schema_on_postgresql(vault_):
    """Vaults in other schemas of the same PostgreSQL database do not wait for each other."""
    with vault_.read_transaction() as session:
        if session.get_bind().dialect.name != "postgresql":
            pytest.skip("PostgreSQL's advisory lock")
        key = session.execute(text("SELECT hashtext(current_schema())")).scalar()
    with vault_.write_transaction() as session:
        ledger.lock_sequencer(session)
        with vault_.engine.connect() as other:
            other.execute(text("SET search_path TO public"))
            assert other.execute(
                text("SELECT pg_try_advisory_xact_lock(:k, hashtext('public'))"), {"k": ledger.LOCK_KEY}
            ).scalar()
            assert not other.execute(
                text("SELECT pg_try_advisory_xact_lock(:k, :s)"), {"k": ledger.LOCK_KEY, "s": key}
            ).scalar()
            other.rollback()


def test_nodes_written_by_batches_equal_those_of_one_at_a_time(settings):
    """Batching changes when nodes are written, never what they are."""
    batched = open_with(settings, mode="external", receipt_wait_ms=0)
    try:
        with batched.transaction() as session:
            for n in range(37):
                emit(session, event(n))
        while batched.sequencer.step():
            pass
        with batched.read_transaction() as session:
            leaves = [
                bytes(h)
                for h in session.scalars(
                    select(LedgerNode.hash).where(LedgerNode.level == 0).order_by(LedgerNode.index)
                )
            ]
            assert ledger.root(session, 37) == merkle.root_from_leaves(leaves)
            verify(session)
    finally:
        batched.close()


@pytest.mark.parametrize(
    "tamper, expected",
    [
        ("actor", "Pending event .*: its columns do not match its body"),
        ("outcome", "Pending event .*: its search columns"),
        ("categories", "Pending event .*: its search categories"),
        ("leaf", "Pending event .*: its event does not match its leaf"),
        ("deleted", "record .* version 1 has no record event in the ledger"),
    ],
)
def test_verify_names_a_tampered_pending_event(settings, make_actor, tamper, expected):
    """The tamper matrix, for events still waiting for the sequencer."""
    from vault.core.caller import Caller
    from vault.records import records

    resident = make_actor("resident")
    vault = open_with(settings, mode="external", receipt_wait_ms=0)
    try:
        with vault.transaction() as session:
            records.create_record(
                session,
                vault.keys,
                Caller(id=resident.id, role="resident"),
                subject_id=resident.id,
                category="health.allergies",
                content={"x": 1},
                now=T0,
            )
        values = {
            "actor": {"actor_id": "p-someone-else"},
            "outcome": {"outcome": "refused"},
            "categories": {"categories": "tenancy.income"},
            "leaf": {"leaf_hash": b"\x07" * 32},
        }
        with vault.write_transaction() as session:
            created = select(PendingEvent.id).where(PendingEvent.kind == "record.created")
            if tamper == "deleted":
                session.execute(PendingEvent.__table__.delete().where(PendingEvent.id.in_(created)))
            else:
                target = "access.permitted" if tamper in ("outcome", "categories") else "record.created"
                chosen = select(PendingEvent.id).where(PendingEvent.kind == target)
                session.execute(update(PendingEvent).where(PendingEvent.id.in_(chosen)).values(**values[tamper]))
        with vault.read_transaction() as session, pytest.raises(LedgerIntegrityError, match=expected):
            verify(session)
    finally:
        vault.close()
