"""SQLite group commit (vault/ledger/group_commit.py): a process's writers share transactions and fsyncs.

Writers that queue while one works join its batch: one commit for all, each
one's work in a savepoint (a failure undoes only its own), nobody returning
before the commit, everybody failing when it fails, and the ledger's indices
gap-free across batches.
"""

import threading
import time

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import func, select, text

from vault.core.errors import LedgerUnavailable
from vault.ledger import ledger
from vault.ledger.events import emit
from vault.runtime import Vault
from vault.storage.models import Event, PendingEvent
from vault.verification.verify import verify

from .test_sequencer import counts, event


@pytest.fixture
def vault_(settings):
    if not settings.database_url.startswith("sqlite"):
        pytest.skip("group commit is SQLite's (PostgreSQL commits concurrently)")
    vault = Vault.open(settings)
    yield vault
    vault.close()


def commits_of(vault: Vault) -> list[int]:
    """A list that grows by one at each commit on the vault's engine."""
    seen: list[int] = []
    sa_event.listen(vault.engine, "commit", lambda _conn: seen.append(1))
    return seen


def wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.001)


def run_batch(vault: Vault, bodies: list) -> list[object]:
    """Run ``bodies`` as writers of one batch: the first works until the others are all waiting for a turn.

    Each body gets the session and returns a value or raises; the results
    (value or exception) come back in order.
    """
    results: list[object] = [None] * len(bodies)
    assert vault.group is not None
    group = vault.group

    def writer(number: int) -> None:
        try:
            with vault.transaction() as session:
                if number == 0:
                    wait_until(lambda: group._waiting == len(bodies) - 1)
                results[number] = bodies[number](session)
        except Exception as exc:  # handed back to the test
            results[number] = exc

    first = threading.Thread(target=writer, args=(0,))
    first.start()
    wait_until(lambda: group._batch is not None)
    others = [threading.Thread(target=writer, args=(n,)) for n in range(1, len(bodies))]
    for thread in others:
        thread.start()
        time.sleep(0.01)  # queue in order
    for thread in (first, *others):
        thread.join(10)
    return results


def test_writers_waiting_together_share_one_commit_and_get_gap_free_indices(vault_):
    commits = commits_of(vault_)
    receipts = run_batch(vault_, [lambda s, n=n: emit(s, event(n)) for n in range(6)])
    assert len(commits) == 1  # six transactions, one fsync
    assert sorted(r.leaf_index for r in receipts) == list(range(6))
    assert all(r.status == "sequenced" for r in receipts)
    assert counts(vault_) == (6, 6, 0)
    with vault_.read_transaction() as session:
        verify(session)


def test_a_failing_writer_undoes_only_its_own_work(vault_):
    def fails(session):
        emit(session, event(99))
        raise ValueError("the action is refused")

    results = run_batch(vault_, [lambda s: emit(s, event(0)), fails, lambda s: emit(s, event(1))])
    assert isinstance(results[1], ValueError)
    assert [r.leaf_index for r in (results[0], results[2])] == [0, 1]
    assert counts(vault_) == (2, 2, 0)  # the failed writer's event is neither sequenced nor pending


def test_no_writer_returns_before_the_batch_is_committed(vault_):
    """The first writer's work is done long before the last one's: it waits for the shared commit, and until
    then a reader cannot see its event (it is not durable, so it is not released)."""
    returned: list[float] = []
    seen_before_return: list[int] = []
    release = threading.Event()
    assert vault_.group is not None
    group = vault_.group

    def first() -> None:
        with vault_.transaction() as session:
            emit(session, event(0))
            wait_until(lambda: group._waiting == 1)
        returned.append(time.monotonic())

    def second() -> None:
        with vault_.transaction() as session:
            emit(session, event(1))
            with vault_.read_transaction() as reader:  # the first writer's work, as another connection sees it
                seen_before_return.append(reader.scalar(select(func.count()).select_from(PendingEvent)))
            release.wait(5)
        returned.append(time.monotonic())

    one = threading.Thread(target=first)
    one.start()
    wait_until(lambda: group._batch is not None)
    two = threading.Thread(target=second)
    two.start()
    wait_until(lambda: seen_before_return)
    time.sleep(0.05)
    assert returned == []  # the first writer's work is done, but it has not returned
    assert seen_before_return == [0]
    release.set()
    one.join(5)
    two.join(5)
    assert len(returned) == 2 and counts(vault_) == (2, 2, 0)


def test_when_the_batch_cannot_commit_every_writer_in_it_fails_and_nothing_is_stored(vault_):
    """A writer that breaks the ledger (its head row gone) leaves the batch unable to sequence: the other
    writers' work goes with it, each of them is told (LedgerUnavailable), and none of it is stored."""
    with vault_.transaction() as session:
        emit(session, event(0))

    def breaks_the_head(session):
        emit(session, event(2))
        session.execute(text("DELETE FROM ledger_head"))

    results = run_batch(vault_, [lambda s: emit(s, event(1)), breaks_the_head, lambda s: emit(s, event(3))])
    assert all(isinstance(r, LedgerUnavailable) for r in results), results
    assert counts(vault_) == (1, 1, 0)
    with vault_.transaction() as session:  # the head row is back with the rollback; the ledger goes on
        receipt = emit(session, event(4))
    assert receipt.leaf_index == 1
    with vault_.read_transaction() as session:
        verify(session)
        assert session.scalar(select(func.count()).select_from(Event)) == 2


def test_many_writers_in_several_processes_worth_of_vaults(settings):
    """Four vaults (as four server processes) with four threads each: every append committed once, the
    indices gap-free, the ledger verified; on SQLite, fewer commits than transactions."""
    vaults = [Vault.open(settings) for _ in range(4)]
    commits = [commits_of(v) for v in vaults]
    receipts: list[ledger.Receipt] = []
    lock = threading.Lock()

    def writer(vault: Vault, number: int) -> None:
        for n in range(25):
            with vault.transaction() as session:
                receipt = emit(session, event(number * 100 + n))
            with lock:
                receipts.append(receipt)

    threads = [threading.Thread(target=writer, args=(vaults[n % 4], n)) for n in range(16)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(r.leaf_index for r in receipts) == list(range(400))
        assert counts(vaults[0]) == (400, 400, 0)
        if settings.database_url.startswith("sqlite"):  # PostgreSQL commits each one, concurrently
            assert sum(len(c) for c in commits) < 400
        with vaults[0].read_transaction() as session:
            verify(session)
    finally:
        for vault in vaults:
            vault.close()
