"""SQLite group commit: a process's write transactions share one database transaction and its fsync.

SQLite lets one transaction write at a time, and on a durable database (WAL,
``synchronous=FULL``) each commit waits for an fsync. With every writer in a
transaction of its own, writers that arrive together still pay an fsync each,
one after another, and each runs the ledger's sequencing statements for its
one event. Here the writers of one process take turns on one connection:

1. The first writer of a *batch* takes the process's turn in the writers'
   queue (``WriterQueue``: the ``flock`` shared with the other processes),
   and opens the batch's transaction (``BEGIN IMMEDIATE``).
2. Each writer's work runs in a ``SAVEPOINT`` of it, in its own ``Session``:
   when the work fails, only its own changes are undone (``ROLLBACK TO``) and
   its exception goes to its caller at once, as before.
3. The writer that finishes while nobody else is waiting for a turn (or
   with the batch full, ``MAX_MEMBERS``) closes the batch: it gives the
   batch's pending ledger events their indices (``ledger.sequence_now``: the
   write lock is the sequencer lock on SQLite), fills in the members'
   receipts, and commits once, for all of them.
4. A member whose work succeeded returns only after that commit. If the
   batch cannot be committed, every member fails with ``LedgerUnavailable``
   and nothing of any of them was stored: no action's result leaves before
   its event is durable, whichever writer committed it.

A member waits at most for the work of the writers that were already queued
behind it (they join while it works), which is what it would have waited for
its turn anyway. Readers (``Vault.read_transaction``) use their own
connections and see a batch only once it is committed.
"""

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from vault.core.errors import LedgerUnavailable
from vault.ledger import ledger
from vault.storage.db import WriterQueue

MAX_MEMBERS = 32


class _Batch:
    """One open database transaction and the members whose work it holds."""

    def __init__(self, connection: Connection, release_turn: Callable[[], object]) -> None:
        self.connection = connection
        self.transaction = connection.begin()  # BEGIN IMMEDIATE (vault.storage.db)
        self.release_turn = release_turn
        self.members = 0  # members whose work succeeded and is in the transaction
        self.receipts: list[ledger.Receipt] = []
        self.done = threading.Event()
        self.error: BaseException | None = None


class GroupCommit:
    """The write transactions of one process on one SQLite database, committed in batches (module docstring).

    ``sequence`` says whether closing a batch sequences its events (the
    servers sequence: ``CIVICVAULT_SEQUENCER=server``); otherwise they stay
    pending for ``civicvault sequencer``.
    """

    def __init__(self, engine: Engine, queue: WriterQueue, *, sequence: bool) -> None:
        self.engine = engine
        self.queue = queue
        self.sequence = sequence
        self._turn = threading.Lock()  # one member at a time works on the batch's connection
        self._count = threading.Lock()
        self._waiting = 0  # writers that asked for the turn and have not got it yet
        self._batch: _Batch | None = None

    @contextlib.contextmanager
    def member(self, info: dict[str, Any]) -> Iterator[Session]:
        """A session for one writer's work, in a savepoint of the current batch; returns once it is committed."""
        with self._count:
            self._waiting += 1
        self._turn.acquire()
        with self._count:
            self._waiting -= 1
        batch: _Batch | None = None
        joined = False
        try:
            batch = self._batch if self._batch is not None else self._open()
            session = Session(bind=batch.connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
            session.info.update(info)
            session.info[ledger.GROUPED] = True
            try:
                with session.begin():  # SAVEPOINT; RELEASE on success, ROLLBACK TO on an exception
                    yield session
                batch.receipts.extend(ledger.receipts_of(session))
                batch.members += 1
                joined = True
            finally:
                session.close()
        finally:
            if batch is not None:
                with self._count:
                    last = self._waiting == 0 or batch.members >= MAX_MEMBERS
                if last:
                    self._batch = None
                    self._close(batch)
            self._turn.release()
        assert batch is not None  # reached only when the work succeeded
        batch.done.wait()
        if batch.error is not None and joined:
            raise LedgerUnavailable() from batch.error

    def _open(self) -> _Batch:
        turn = self.queue.turn()
        turn.__enter__()
        try:
            connection = self.engine.connect()
            try:
                self._batch = _Batch(connection, lambda: turn.__exit__(None, None, None))
            except BaseException:
                connection.close()
                raise
        except BaseException:
            turn.__exit__(None, None, None)
            raise
        return self._batch

    def _close(self, batch: _Batch) -> None:
        """Sequence the batch's events and commit it (or roll it back when nothing in it succeeded)."""
        try:
            if batch.members:
                if self.sequence:
                    self._sequence(batch)
                batch.transaction.commit()
            else:
                batch.transaction.rollback()
        except BaseException as exc:
            batch.error = exc
            for receipt in batch.receipts:
                receipt.leaf_index = None
            with contextlib.suppress(Exception):
                batch.transaction.rollback()
        finally:
            try:
                batch.connection.close()
            finally:
                batch.release_turn()
                batch.done.set()

    def _sequence(self, batch: _Batch) -> None:
        with Session(bind=batch.connection, join_transaction_mode="rollback_only") as session:
            found = ledger.sequence_now(session)
            missing = [r.leaf_hash for r in batch.receipts if r.leaf_hash not in found]
            if missing:  # sequenced earlier in the batch (an erasure's ``append_sequenced`` takes all pending)
                found.update(ledger.index_of(session, missing))
            for receipt in batch.receipts:
                receipt.leaf_index = found.get(receipt.leaf_hash)
