"""The sequencer: pending events get their ledger indices, in batches, one sequencer at a time.

An action's transaction stores its event as *pending* (``ledger.append_many``:
one insert into ``ledger_pending``, no shared row touched), so actions never
wait for each other on the ledger. Sequencing moves pending events into the
log: under the sequencer lock (a transaction-scoped advisory lock on
PostgreSQL, the write lock on SQLite) it takes the oldest pending events,
gives them the next indices, writes the tree nodes they complete, deletes
them from the queue and moves the head, in one transaction: one commit (one
fsync) for the whole batch. Whoever holds the lock is the sequencer for that
batch; a holder that dies loses the lock with its connection, and the next
one carries on from the committed head (there is no lease to expire).

Who sequences (``CIVICVAULT_SEQUENCER``):

- ``server`` (the default): every process that commits events sequences
  them. After its commit, a request waits for its receipts (``settle``); the
  first waiting thread of the process runs a batch for everyone pending,
  the others find theirs done (group commit). A background loop in each
  server process (``run``) also sequences what nobody waits for, such as the
  events of a process that died between its commit and its batch.
- ``external``: only ``civicvault sequencer`` (the same ``run`` loop)
  sequences; requests wait for it, polling for their index.

Either way a request waits at most ``CIVICVAULT_LEDGER_RECEIPT_WAIT_MS`` for
its index. A receipt still pending then is sent as it is (its leaf hash, no
index): the event is committed, and ``GET /api/v1/ledger/entries/{leaf_hash}``
gives the index and an inclusion proof once it is sequenced.
docs/ledger-format.md, "Sequencing", has the rules.
"""

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.core.config import SequencerSettings
from vault.ledger import ledger
from vault.ledger.ledger import LedgerState, Receipt
from vault.storage.models import PendingEvent

log = logging.getLogger("civicvault.sequencer")

SessionFactory = Callable[[], AbstractContextManager[Session]]


class Sequencer:
    """One process's sequencer and the receipts its requests wait for.

    ``write`` opens a write transaction (committed when its block ends) and
    ``read`` a read-only one; the vault gives its own (``vault.runtime``).
    """

    def __init__(
        self,
        *,
        write: SessionFactory,
        read: SessionFactory,
        settings: SequencerSettings,
        state: LedgerState,
        postgres: bool = False,
    ) -> None:
        self.write = write
        self.read = read
        self.settings = settings
        self.state = state
        self._step_lock = threading.Lock()  # one batch at a time in this process
        self._guard = threading.Lock()  # guards _waiting
        self._done = threading.Condition(self._guard)  # notified whenever receipts get their indices
        self._waiting: dict[str, list[Receipt]] = {}
        self._postgres = postgres  # whether the lock is PostgreSQL's advisory lock (tried, not queued for)
        self._nudge = threading.Event()  # set by ``settle`` when it leaves receipts pending: wakes ``run``

    @property
    def sequences(self) -> bool:
        """Whether this process sequences (``server``) or waits for ``civicvault sequencer`` (``external``)."""
        return self.settings.mode == "server"

    # --- sequencing -----------------------------------------------------------------------------

    def step(self) -> dict[str, int]:
        """Sequence one batch of pending events and commit it; leaf hash (hex) -> index of those sequenced."""
        with self._step_lock:
            return self._step() or {}

    def _step(self, *, wait: bool = True) -> dict[str, int] | None:
        """One batch; ``None`` when ``wait`` is off and another process is sequencing right now."""
        with self.write() as session:
            if not ledger.lock_sequencer(session, wait=wait):
                return None
            indices = ledger.sequence_pending(session, limit=self.settings.batch)
            remaining = ledger.backlog(session) if len(indices) >= self.settings.batch else 0
        self.state.note_backlog(remaining)
        self._resolve(indices)
        return indices

    def drain(self) -> int:
        """Sequence every pending event; how many were sequenced."""
        total = 0
        while indices := self.step():
            total += len(indices)
        return total

    def run(self, stop: threading.Event, *, interval: float, idle: float | None = None) -> None:
        """Sequence whatever is pending until ``stop`` is set: look again ``interval`` seconds after finding
        work, ``idle`` seconds (default: ``interval``) after finding none.

        A request of this process whose receipts ``settle`` leaves pending
        (it does not wait, or waited in vain) wakes the loop at once, so a
        long ``idle`` delays only events nobody here knows of (of a process
        that died before its batch, of a command run beside the server), and
        an idle server does not query its database many times a second. A
        failed batch (the database down, a changed pending row) is logged
        and tried again after a pause; the events stay pending meanwhile.
        """
        pause = interval
        while not stop.is_set():
            self._nudge.clear()
            try:
                found = self._anything_pending()
                if found:
                    self.drain()
                pause = interval if found or idle is None else idle
            except Exception as exc:  # keep the loop alive: the next round may succeed
                log.error("sequencing failed (%s); retrying", type(exc).__name__)
                pause = min(max(pause * 2, 0.5), 30.0)
            self._pause(stop, pause)

    def _pause(self, stop: threading.Event, seconds: float) -> None:
        """Wait ``seconds``, or less if nudged or stopped (``stop`` is looked at every 0.1 s)."""
        deadline = time.monotonic() + seconds
        while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
            if self._nudge.wait(min(left, 0.1)):
                return

    def _anything_pending(self) -> bool:
        with self.read() as session:
            return session.execute(select(PendingEvent.id).limit(1)).first() is not None

    # --- waiting for receipts ------------------------------------------------------------------

    def settle(self, receipts: Iterable[Receipt]) -> None:
        """Fill in the indices of ``receipts`` once sequenced, waiting at most the configured time.

        Called after the transaction that emitted them committed (so their
        events are durable whatever happens here). Never raises: a receipt that
        is not sequenced in time, or a sequencing failure, leaves it pending,
        to be resolved later by its leaf hash.
        """
        pending = [r for r in receipts if r.leaf_index is None]
        if not pending:
            return
        deadline = time.monotonic() + self.settings.receipt_wait_ms / 1000
        with self._registered(pending):
            try:
                if self.sequences:
                    self._sequence_until(pending, deadline)
                else:
                    self._poll_until(pending, deadline)
            except Exception as exc:
                log.error("receipts left pending: sequencing failed (%s)", type(exc).__name__)
        if self.sequences and any(r.leaf_index is None for r in pending):
            self._nudge.set()  # the background loop (``run``) takes them

    @contextlib.contextmanager
    def _registered(self, receipts: list[Receipt]) -> Iterator[None]:
        with self._guard:
            for receipt in receipts:
                self._waiting.setdefault(receipt.leaf_hash, []).append(receipt)
        try:
            yield
        finally:
            with self._guard:
                for receipt in receipts:
                    waiting = self._waiting.get(receipt.leaf_hash)
                    if waiting is not None:
                        with contextlib.suppress(ValueError):
                            waiting.remove(receipt)
                        if not waiting:
                            del self._waiting[receipt.leaf_hash]

    def _resolve(self, indices: dict[str, int]) -> None:
        if not indices:
            return
        with self._guard:
            for leaf_hash, index in indices.items():
                for receipt in self._waiting.get(leaf_hash, ()):
                    receipt.leaf_index = index
            self._done.notify_all()

    def _sequence_until(self, pending: list[Receipt], deadline: float) -> None:
        """Run batches (or find that others ran them) until ``pending`` all have their indices.

        A thread runs a batch only when no other thread of this process is
        running one; otherwise it waits to be told that receipts were filled
        in (the running batch, or the background loop's, most likely holds its
        events). On PostgreSQL the sequencer lock is only tried: when another
        process holds it, it is sequencing now, quite likely these very
        events, so this one looks them up shortly after rather than queueing
        for the lock only to find nothing left to do. On SQLite every writer
        queues anyway (``WriterQueue``), and a batch with nothing in it costs
        no fsync.
        """

        def done() -> bool:
            return all(r.leaf_index is not None for r in pending)

        wait = not self._postgres
        look_after = 0.001  # doubles up to 16 ms while another process sequences: each look is a query
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if not self._step_lock.acquire(blocking=False):
                with self._done:  # another thread's batch is running: it may well be ours
                    self._done.wait_for(done, timeout=min(remaining, 0.005))
                continue
            try:
                if done():
                    return
                indices = self._step(wait=wait)
                if done():
                    return
                if indices is not None:
                    # This process held the lock and they were not in its batch: another process
                    # sequenced them first (or the batch was full: the loop runs another).
                    self._look_up([r for r in pending if r.leaf_index is None])
                    continue
            finally:
                self._step_lock.release()
            # Another process is sequencing: give it a moment, then look.
            with self._done:
                self._done.wait_for(done, timeout=min(look_after, max(0.0, deadline - time.monotonic())))
            look_after = min(look_after * 2, 0.016)
            self._look_up([r for r in pending if r.leaf_index is None])

    def _poll_until(self, pending: list[Receipt], deadline: float) -> None:
        pause = 0.001
        while True:
            self._look_up([r for r in pending if r.leaf_index is None])
            if all(r.leaf_index is not None for r in pending):
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, 0.05)

    def _look_up(self, receipts: list[Receipt]) -> None:
        if not receipts:
            return
        with self.read() as session:
            found = ledger.index_of(session, [r.leaf_hash for r in receipts])
        for receipt in receipts:
            if receipt.leaf_hash in found:
                receipt.leaf_index = found[receipt.leaf_hash]
