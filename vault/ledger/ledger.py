"""The ledger: every domain event committed to an append-only RFC 9162 Merkle log.

Appending (``append``) happens inside the caller's transaction, so an event
and the action it describes commit or roll back together (fail closed):

1. the event's canonical JSON (``body``) and a fresh 32-byte ``salt`` are
   computed, and with them its log entry, ``0x01 || SHA-256(
   "civicvault-ledger-entry-v1" || 0x00 || salt || body)``: 33 bytes that
   reveal nothing without the salt and body, and the entry's leaf hash
   (RFC 9162: SHA-256(0x00 || entry)), which names it from then on;
2. the event is stored as pending (``ledger_pending``), touching no row that
   other actions touch, so actions do not wait for each other;
3. one sequencer at a time (``lock_sequencer``: PostgreSQL's advisory lock,
   SQLite's write lock) gives pending events the next indices in batches
   (``sequence_pending``): moves them into ``events``, stores their leaves
   at level 0 of ``ledger_nodes`` with the perfect subtrees they complete,
   and moves ``ledger_head``; indices are unique and gap-free.
   ``vault.ledger.sequencer`` decides who runs the batches and fills the
   receipts in; on SQLite the action's own transaction does (``append_many``).

Appending costs O(1) amortised row writes; the root and every proof need
O(log n) primary-key reads. The event row also gets its compliance search
columns (``outcome``, ``purpose``, ``event_categories``), derived from its
data by ``vault.audit_index``; they are not part of the entry.
docs/ledger-format.md has the exact bytes (sections 1-3) and the sequencing
rules (section 10).
"""

import hashlib
import json
import os
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Engine, Table, func, select, text
from sqlalchemy.exc import DataError, DBAPIError
from sqlalchemy.orm import Session

from crypto import merkle
from vault.core.clock import rfc3339
from vault.core.errors import InvalidInput, LedgerBusy, LedgerIntegrityError, LedgerUnavailable, NotFound
from vault.storage import audit_index
from vault.storage.models import Event, PendingEvent

ENTRY_VERSION = 1
ENTRY_DOMAIN = b"civicvault-ledger-entry-v1"
BODY_VERSION = 1
SALT_SIZE = 32


class Receipt:
    """What an event's emitter gets back: the entry's leaf hash, and its index once sequenced.

    A pending event's receipt is filled in place when the sequencer has given
    it an index (``Vault.transaction`` waits a bounded time for that after the
    commit, so a response normally carries both).
    """

    __slots__ = ("leaf_hash", "leaf_index")

    def __init__(self, *, leaf_hash: str, leaf_index: int | None = None) -> None:
        self.leaf_hash = leaf_hash  # lowercase hex
        self.leaf_index = leaf_index

    @property
    def sequenced(self) -> bool:
        return self.leaf_index is not None

    @property
    def status(self) -> str:
        return "pending" if self.leaf_index is None else "sequenced"

    def as_dict(self) -> dict[str, Any]:
        return {"leaf_index": self.leaf_index, "leaf_hash": self.leaf_hash, "status": self.status}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Receipt) and (self.leaf_hash, self.leaf_index) == (other.leaf_hash, other.leaf_index)

    def __hash__(self) -> int:
        return hash(self.leaf_hash)

    def __repr__(self) -> str:
        return f"Receipt(leaf_index={self.leaf_index!r}, leaf_hash={self.leaf_hash!r})"


def canonical_body(*, kind: str, occurred_at: datetime, actor_id: str, subject_id: str | None, data: dict) -> bytes:
    """The event as canonical JSON: sorted keys, no white space, UTF-8."""
    document = {
        "v": BODY_VERSION,
        "kind": kind,
        "occurred_at": rfc3339(occurred_at),
        "actor_id": actor_id,
        "subject_id": subject_id,
        "data": data,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


_quote = json.encoder.encode_basestring  # what json.dumps(ensure_ascii=False) writes for a str, in C


def body_from_columns(*, kind: str, occurred_at: str, actor_id: str, subject_id: str | None, data_json: str) -> bytes:
    """``canonical_body`` from the event's columns: ``occurred_at`` as RFC 3339 text (``rfc3339``), ``data_json``
    its data as canonical JSON (``vault.events.encode``).

    The same bytes by string formatting, several times faster than
    ``json.dumps`` of the document: its keys are fixed and sorted, and
    ``data_json`` is canonical already. Appending and verifying both use it;
    a test holds it equal to ``canonical_body``.
    """
    subject = "null" if subject_id is None else _quote(subject_id)
    return (
        f'{{"actor_id":{_quote(actor_id)},"data":{data_json},"kind":{_quote(kind)},"occurred_at":"{occurred_at}",'
        f'"subject_id":{subject},"v":{BODY_VERSION}}}'
    ).encode()


def commitment(salt: bytes, body: bytes) -> bytes:
    return hashlib.sha256(ENTRY_DOMAIN + b"\x00" + salt + body).digest()


def entry_bytes(salt: bytes, body: bytes) -> bytes:
    """The RFC 9162 leaf input: a version byte and the commitment."""
    return bytes([ENTRY_VERSION]) + commitment(salt, body)


def leaf_hash_of(salt: bytes, body: bytes) -> bytes:
    return merkle.leaf_hash(entry_bytes(salt, body))


def _cursor(session: Session):
    """A DB-API cursor in the session's transaction, and the driver's parameter mark.

    The proof path reads a handful of rows per request; through the driver
    directly it runs several times faster than through SQLAlchemy's
    statement machinery, and the SQL is plain enough for both databases.
    """
    connection = session.connection()
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    return connection.connection.cursor(), mark


# Proofs share, within a process, the nodes at level SHARED_LEVEL and above:
# every proof needs a few of them, they are few (one per 2^SHARED_LEVEL
# entries), and a stored node never changes once its subtree is complete, so a
# proof then reads only its lowest levels and costs the same at any size. Only
# read-only callers (the proof endpoints) use it: a node read inside a write
# transaction could still be rolled back. A database rewritten behind the
# process's back is found by ``civicvault verify``, which never uses it.
SHARED_LEVEL = 6
SHARED_MAX = 1 << 17
_shared_by_pool: "weakref.WeakKeyDictionary[object, dict[tuple[int, int], bytes]]" = weakref.WeakKeyDictionary()


def _upper_nodes(session: Session) -> dict[tuple[int, int], bytes]:
    pool = cast(Engine, session.get_bind()).pool  # one per database, shared by the engine and its read-only variant
    shared = _shared_by_pool.get(pool)
    if shared is None:
        shared = _shared_by_pool[pool] = {}
    return shared


class StoredNodes:
    """The stored node hashes a computation needs, read in one statement where possible.

    ``prefetch`` reads a set of ``(level, index)`` pairs with one ``SELECT``
    (``(level = ? AND idx = ?) OR ...``, which both databases answer from the
    primary key; a row-value ``IN`` is not served by SQLite's index);
    ``get`` serves from what was read and reads one pair on a miss. Nodes never
    change once written, so what was read stays valid for the transaction.
    """

    CHUNK = 200  # pairs per statement, well under SQLite's bound-parameter limit

    def __init__(self, session: Session, *, shared: bool = False):
        self.session = session
        self.known: dict[tuple[int, int], bytes] = {}
        self.shared = _upper_nodes(session) if shared else None

    def prefetch(self, keys) -> None:
        known, shared = self.known, self.shared
        missing: set[tuple[int, int]] = set()
        for key in keys:
            if key in known:
                continue
            if shared is not None and key[0] >= SHARED_LEVEL and key in shared:
                known[key] = shared[key]
            else:
                missing.add(key)
        if not missing:
            return
        ordered = sorted(missing)
        cursor, mark = _cursor(self.session)
        try:
            for start in range(0, len(ordered), self.CHUNK):
                chunk = ordered[start : start + self.CHUNK]
                where = " OR ".join([f"(level = {mark} AND idx = {mark})"] * len(chunk))
                cursor.execute(
                    f"SELECT level, idx, hash FROM ledger_nodes WHERE {where}", tuple(v for key in chunk for v in key)
                )
                for level, index, digest in cursor.fetchall():
                    self.known[(level, index)] = bytes(digest)
        finally:
            cursor.close()
        if self.shared is not None:
            if len(self.shared) > SHARED_MAX:
                self.shared.clear()
            self.shared.update(
                (key, self.known[key]) for key in missing if key[0] >= SHARED_LEVEL and key in self.known
            )

    def prefetch_ranges(self, ranges) -> None:
        """Read every perfect subtree that the subtree ranges ``[start, end)`` are made of."""
        self.prefetch(key for start, end in ranges if end > start for key in _pieces(start, end))

    def ranges(self, ranges: list[tuple[int, int]]) -> list[bytes]:
        """The hashes of subtree ranges, every stored node they need read in one go."""
        pieces = [_pieces(start, end) for start, end in ranges]
        self.prefetch(key for piece in pieces for key in piece)
        hashes = []
        for piece in pieces:
            node = self.get(*piece[-1])
            for key in reversed(piece[:-1]):
                node = merkle.node_hash(self.get(*key), node)
            hashes.append(node)
        return hashes

    def get(self, level: int, index: int) -> bytes:
        key = (level, index)
        if key not in self.known:
            self.prefetch((key,))
            if key not in self.known:
                raise LedgerIntegrityError(f"Ledger node (level {level}, index {index}) is missing.")
        return self.known[key]

    def subtree_hash(self, start: int, end: int) -> bytes:
        return merkle.range_hash(start, end, self.get)


_EVENTS, _PENDING = (cast(Table, model.__table__) for model in (Event, PendingEvent))

# Where a vault puts its ledger state for the services' sessions (``Vault.transaction``):
# the receipts emitted in the transaction, and the back-pressure gauge.
STATE = "civicvault.ledger"
# Marks a session whose transaction is one of a batch (vault.ledger.group_commit): the batch sequences its
# events when it commits, so the session's appends stay pending even where appends are otherwise inline.
GROUPED = "civicvault.grouped"


class LedgerState:
    """Per-vault (per-process) ledger state that sessions carry in ``session.info[STATE]``.

    ``backlog`` is an estimate of the pending events, refreshed from the
    database at most every ``BACKLOG_TTL`` seconds; appends are refused once it
    passes ``max_pending`` (back-pressure: ``LedgerBusy``).
    """

    BACKLOG_TTL = 0.5

    def __init__(self, *, max_pending: int = 100_000, inline: bool = False) -> None:
        self.max_pending = max_pending
        # SQLite with the servers sequencing: every write transaction holds the write lock, which is the
        # sequencer lock, so the action's own transaction sequences (``append_many``).
        self.inline = inline
        self.backlog = 0
        self.backlog_checked = float("-inf")
        self.lock = threading.Lock()

    def note_backlog(self, count: int) -> None:
        self.backlog, self.backlog_checked = count, time.monotonic()


def receipts_of(session: Session) -> list[Receipt]:
    """The receipts of the events emitted in the session's transaction (``Vault.transaction`` settles them)."""
    found: list[Receipt] = session.info.setdefault("civicvault.receipts", [])
    return found


def backlog(session: Session) -> int:
    """An upper bound on the pending events: the span of the queue's ids (two index reads, at any size)."""
    low, high = session.execute(select(func.min(_PENDING.c.id), func.max(_PENDING.c.id))).one()
    return 0 if low is None or high is None else cast(int, high) - cast(int, low) + 1


def _check_backlog(session: Session) -> None:
    state: LedgerState | None = session.info.get(STATE)
    if state is None:
        return
    if time.monotonic() - state.backlog_checked > state.BACKLOG_TTL:
        state.note_backlog(backlog(session))
    if state.backlog >= state.max_pending:
        raise LedgerBusy()


def prepare(event: Mapping[str, Any]) -> dict[str, Any]:
    """The stored form of an event: its salt, canonical body, leaf hash and search columns."""
    salt = os.urandom(SALT_SIZE)
    body = body_from_columns(
        kind=event["kind"],
        occurred_at=rfc3339(event["occurred_at"]),
        actor_id=event["actor_id"],
        subject_id=event["subject_id"],
        data_json=event["data_json"],
    )
    data = event["data"] if "data" in event else json.loads(event["data_json"])
    return {
        "leaf_hash": leaf_hash_of(salt, body),
        "kind": event["kind"],
        "occurred_at": event["occurred_at"],
        "actor_id": event["actor_id"],
        "subject_id": event["subject_id"],
        "data": event["data_json"],
        "salt": salt,
        "body": body,
        **audit_index.columns_of(event["kind"], data),
        "categories": " ".join(audit_index.categories_of(data)),
    }


def append(
    session: Session,
    *,
    kind: str,
    occurred_at: datetime,
    actor_id: str,
    subject_id: str | None,
    data_json: str,
    data: Mapping[str, Any] | None = None,
) -> Receipt:
    """Commit one event to the log in the session's transaction, as pending (``append_many``).

    ``data_json`` is the event's data as canonical JSON (``events.encode``);
    ``data``, if given, the same data as a mapping (spares parsing it again
    for the search columns).
    """
    event = {
        "kind": kind,
        "occurred_at": occurred_at,
        "actor_id": actor_id,
        "subject_id": subject_id,
        "data_json": data_json,
    }
    if data is not None:
        event["data"] = data
    return append_many(session, [event])[0]


def _refusing_driver_errors(session: Session, work):
    # When the database refuses any of it (a constraint, a trigger, a missing table or row, a lost
    # connection), the event cannot be recorded, and neither can the action it describes.
    # Not a conflict to retry.
    driver = session.get_bind().dialect.loaded_dbapi  # StoredNodes reads through the driver itself
    try:
        return work()
    except (DataError, driver.DataError):
        raise  # a value the database cannot store: the request's fault, not the ledger's
    except (DBAPIError, driver.Error) as exc:
        raise LedgerUnavailable() from exc


def append_many(session: Session, events: Sequence[Mapping[str, Any]]) -> list[Receipt]:
    """Store events, in order, as pending in the session's transaction; the sequencer gives them indices.

    One ``INSERT`` into ``ledger_pending``, no shared row touched, so actions
    do not wait for each other. The receipts name each entry by its leaf hash;
    their ``leaf_index`` is filled in once sequenced (``Vault.transaction``
    waits a bounded time for it after the commit). Raises ``LedgerBusy`` when
    the backlog is over its limit and ``LedgerUnavailable`` when the database
    refuses the insert (the caller's transaction then rolls back: fail closed).

    On SQLite with the servers sequencing (``LedgerState.inline``) the
    transaction already holds the sequencer lock (SQLite's write lock, taken
    at ``BEGIN IMMEDIATE``). A writer in a shared transaction
    (``vault.ledger.group_commit``, every SQLite file) leaves its events
    pending and the batch sequences them before its commit; one outside a
    batch (an in-memory database) sequences them itself
    (``append_sequenced``), in one commit, with their indices.
    """
    if not events:
        return []
    state: LedgerState | None = session.info.get(STATE)
    if state is not None and state.inline and not session.info.get(GROUPED):
        return append_sequenced(session, events)

    def work() -> list[Receipt]:
        _check_backlog(session)
        return [Receipt(leaf_hash=leaf.hex()) for leaf in _insert_pending(session, events)]

    receipts: list[Receipt] = _refusing_driver_errors(session, work)
    receipts_of(session).extend(receipts)
    return receipts


_PENDING_COLUMNS = (
    "leaf_hash",
    "kind",
    "occurred_at",
    "actor_id",
    "subject_id",
    "data",
    "salt",
    "body",
    "outcome",
    "purpose",
    "categories",
    "queued_at",
)
# Columns an event keeps when it moves from ledger_pending to events (with its ledger_index).
_MOVED_COLUMNS = _PENDING_COLUMNS[:10]  # leaf_hash .. purpose


def _db_time(dialect: str, value: datetime) -> object:
    """A time as ``UTCDateTime`` stores it: aware UTC for PostgreSQL, SQLAlchemy's naive UTC text for SQLite."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the database")
    if dialect != "sqlite":
        return value
    v = value.astimezone(UTC)
    return f"{v.year:04d}-{v.month:02d}-{v.day:02d} {v.hour:02d}:{v.minute:02d}:{v.second:02d}.{v.microsecond:06d}"


def _insert_pending(session: Session, events: Sequence[Mapping[str, Any]]) -> list[bytes]:
    """Insert the events into ``ledger_pending`` (one statement, on the driver: the request path's one write
    to the ledger); their leaf hashes, in order."""
    dialect = session.get_bind().dialect.name
    queued_at = _db_time(dialect, datetime.now(UTC))
    rows = []
    leaves = []
    for event in events:
        row = prepare(event)
        row["occurred_at"] = _db_time(dialect, row["occurred_at"])
        row["queued_at"] = queued_at
        rows.append(tuple(row[c] for c in _PENDING_COLUMNS))
        leaves.append(row["leaf_hash"])
    cursor, mark = _cursor(session)
    try:
        cursor.executemany(
            f"INSERT INTO ledger_pending ({', '.join(_PENDING_COLUMNS)}) "
            f"VALUES ({', '.join([mark] * len(_PENDING_COLUMNS))})",
            rows,
        )
    finally:
        cursor.close()
    return leaves


def lock_sequencer(session: Session, *, wait: bool = True) -> bool:
    """Become the one sequencer of this database until the transaction ends; False if ``wait`` is off and
    another holds it.

    PostgreSQL: a transaction-scoped advisory lock (keyed by the schema, so
    that vaults in other schemas of the same database do not wait for each
    other), released by commit, rollback or a lost connection. SQLite: the
    write lock, which every write transaction takes at ``BEGIN IMMEDIATE``
    (always held here).
    """
    if session.get_bind().dialect.name != "postgresql":
        return True
    if wait:
        session.execute(text("SELECT pg_advisory_xact_lock(:key, hashtext(current_schema()))"), {"key": LOCK_KEY})
        return True
    taken = session.execute(
        text("SELECT pg_try_advisory_xact_lock(:key, hashtext(current_schema()))"), {"key": LOCK_KEY}
    ).scalar()
    return bool(taken)


LOCK_KEY = 790300  # the advisory lock's first key (docs/ledger-format.md section 10); the second is the schema


def sequence_pending(session: Session, *, limit: int) -> dict[str, int]:
    """Give up to ``limit`` pending events (oldest first) the next indices; the caller holds the sequencer lock.

    Returns leaf hash (hex) -> index for the events sequenced. The leaf hash of
    each is recomputed from its salt and body before it enters the tree: a
    pending row changed since it was queued stops the sequencer
    (``LedgerIntegrityError``) rather than putting a wrong leaf in the log.
    The events move inside the database (``INSERT INTO events ... SELECT
    ... FROM ledger_pending``); only what the tree and the check need comes
    to Python. Statements go through the driver: this runs once per batch on
    every write path, where SQLAlchemy's statement machinery cost more than
    the statements.
    """

    def work() -> dict[str, int]:
        cursor, mark = _cursor(session)
        try:
            cursor.execute(
                "SELECT (SELECT size FROM ledger_head WHERE id = 1), id, leaf_hash, salt, body, categories "
                f"FROM ledger_pending ORDER BY id LIMIT {int(limit)}"
            )
            rows = cursor.fetchall()
            if not rows:
                return {}
            start = rows[0][0]
            if start is None:  # the head row is gone
                raise LedgerUnavailable()
            for _, queue_id, leaf, salt, body, _ in rows:
                if leaf_hash_of(bytes(salt), bytes(body)) != bytes(leaf):
                    raise LedgerIntegrityError(f"Pending event {queue_id} does not match its leaf hash.")
            ids = [row[1] for row in rows]
            marks = ", ".join([mark] * len(ids))
            moved = ", ".join(_MOVED_COLUMNS)
            cursor.execute(
                f"INSERT INTO events (ledger_index, {moved}) "
                f"SELECT {int(start) - 1} + ROW_NUMBER() OVER (ORDER BY id), {moved} "
                f"FROM ledger_pending WHERE id IN ({marks})",
                ids,
            )
            indices = _write_tree(
                session,
                cursor,
                mark,
                start=int(start),
                leaves=[bytes(row[2]) for row in rows],
                categories=[row[5].split() for row in rows],
            )
            cursor.execute(f"DELETE FROM ledger_pending WHERE id IN ({marks})", ids)
            return indices
        finally:
            cursor.close()

    result: dict[str, int] = _refusing_driver_errors(session, work)
    return result


def _write_tree(session: Session, cursor, mark: str, *, start: int, leaves: list[bytes], categories) -> dict[str, int]:
    """The leaves ``start ..``, the interior nodes they complete and their search categories; then the head.

    The peaks (the perfect subtrees left of the first new leaf, one per set bit
    of ``start``) are read with one ``SELECT``; the new nodes are computed in
    memory from them and written with one statement per table.
    """
    stored = StoredNodes(session)
    peak_keys = merkle.perfect_subtrees(0, start) if start else []
    stored.prefetch(peak_keys)
    peaks = [stored.get(level, index) for level, index in peak_keys]  # largest (leftmost) first: a stack
    node_rows: list[tuple[int, int, bytes]] = []
    category_rows: list[tuple[int, str]] = []
    indices: dict[str, int] = {}
    for index, (leaf, named) in enumerate(zip(leaves, categories, strict=True), start):
        category_rows.extend((index, category) for category in named)
        node_rows.append((0, index, leaf))
        # The leaf completes one perfect subtree per trailing one bit of its index.
        node, level, position = leaf, 0, index
        while position & 1:
            node = merkle.node_hash(peaks.pop(), node)
            level, position = level + 1, position >> 1
            node_rows.append((level, position, node))
        peaks.append(node)
        indices[leaf.hex()] = index
    cursor.executemany(f"INSERT INTO ledger_nodes (level, idx, hash) VALUES ({mark}, {mark}, {mark})", node_rows)
    if category_rows:
        cursor.executemany(
            f"INSERT INTO event_categories (ledger_index, category) VALUES ({mark}, {mark})", category_rows
        )
    end = start + len(leaves)
    cursor.execute(f"UPDATE ledger_head SET size = {mark} WHERE id = 1 AND size = {mark}", (end, start))
    if cursor.rowcount != 1:
        raise LedgerIntegrityError("The ledger head moved while this sequencer held the lock.")
    return indices


def append_sequenced(session: Session, events: Sequence[Mapping[str, Any]]) -> list[Receipt]:
    """Commit events with their indices now: sequence what is pending, then these, in the session's transaction.

    For the few actions that need their own index before they commit (an
    erasure names it in the entries it blanks; a review stores it), and for
    every write on SQLite with the servers sequencing (``LedgerState.inline``:
    the write lock is the sequencer lock there). It holds the sequencer lock
    until the transaction ends.
    """
    if not events:
        return []

    def work() -> list[Receipt]:
        leaves = _insert_pending(session, events)
        found = sequence_now(session)
        return [Receipt(leaf_hash=leaf.hex(), leaf_index=found[leaf.hex()]) for leaf in leaves]

    receipts: list[Receipt] = _refusing_driver_errors(session, work)
    return receipts


def sequence_now(session: Session) -> dict[str, int]:
    """Take the sequencer lock and sequence every pending event, this transaction's own included.

    Returns leaf hash (hex) -> index of those sequenced. The lock is held
    until the transaction ends, so nothing is sequenced between this and the
    transaction's later appends (``append_sequenced``).
    """
    found: dict[str, int] = {}

    def work() -> None:
        lock_sequencer(session)
        while batch := sequence_pending(session, limit=10_000):
            found.update(batch)

    _refusing_driver_errors(session, work)
    return found


def index_of(session: Session, leaf_hashes: Sequence[str]) -> dict[str, int]:
    """Leaf hash (hex) -> index, for those of ``leaf_hashes`` that are sequenced."""
    if not leaf_hashes:
        return {}
    rows = session.execute(
        select(_EVENTS.c.leaf_hash, _EVENTS.c.ledger_index).where(
            _EVENTS.c.leaf_hash.in_([bytes.fromhex(h) for h in leaf_hashes])
        )
    ).all()
    return {bytes(row[0]).hex(): int(row[1]) for row in rows}


def size(session: Session) -> int:
    cursor, _ = _cursor(session)
    try:
        cursor.execute("SELECT size FROM ledger_head WHERE id = 1")
        row = cursor.fetchone()
    finally:
        cursor.close()
    head = None if row is None else row[0]
    if head is None:
        raise LedgerIntegrityError("The ledger head is missing: the database is not initialised.")
    return head


def subtree_hasher(session: Session):
    """``subtree_hash(start, end)`` over the stored perfect subtrees, for proof generation.

    Each call reads only the nodes it has not read before; callers that know
    their ranges up front can ``prefetch_ranges`` on a ``StoredNodes`` instead.
    """
    return StoredNodes(session).subtree_hash


def root(session: Session, tree_size: int) -> bytes:
    if not tree_size:
        return merkle.EMPTY_ROOT
    stored = StoredNodes(session)
    stored.prefetch(merkle.perfect_subtrees(0, tree_size))
    return stored.subtree_hash(0, tree_size)


def _check_size(session: Session, tree_size: int | None) -> int:
    current = size(session)
    if tree_size is None:
        return current
    if not 1 <= tree_size <= current:
        raise InvalidInput(f"tree_size must be between 1 and the ledger's size, {current}.")
    return tree_size


def _pieces(start: int, end: int) -> tuple[tuple[int, int], ...]:
    """``merkle.perfect_subtrees``, with a fast path for the perfect ranges that most proof hashes are."""
    width = end - start
    if width > 0 and width & (width - 1) == 0 and start % width == 0:
        level = width.bit_length() - 1
        return ((level, start >> level),)
    return tuple(merkle.perfect_subtrees(start, end))


@dataclass(frozen=True)
class InclusionProof:
    leaf_index: int
    tree_size: int
    leaf_hash: str
    audit_path: list[str]
    root_hash: str


def inclusion(session: Session, *, leaf_index: int, tree_size: int | None = None) -> InclusionProof:
    tree_size = _check_size(session, tree_size)
    if not 0 <= leaf_index < tree_size:
        raise InvalidInput(f"leaf_index must be between 0 and {tree_size - 1}.")
    leaf, root, *path = StoredNodes(session, shared=True).ranges(
        [(leaf_index, leaf_index + 1), (0, tree_size), *merkle.inclusion_proof_ranges(leaf_index, tree_size)]
    )
    return InclusionProof(
        leaf_index=leaf_index,
        tree_size=tree_size,
        leaf_hash=leaf.hex(),
        audit_path=[h.hex() for h in path],
        root_hash=root.hex(),
    )


@dataclass(frozen=True)
class ConsistencyProof:
    first: int
    second: int
    first_root: str
    second_root: str
    consistency_path: list[str]


def consistency(session: Session, *, first: int, second: int | None = None) -> ConsistencyProof:
    second = _check_size(session, second)
    if not 1 <= first <= second:
        raise InvalidInput(f"first must be between 1 and second ({second}).")
    first_root, second_root, *path = StoredNodes(session, shared=True).ranges(
        [(0, first), (0, second), *merkle.consistency_proof_ranges(first, second)]
    )
    return ConsistencyProof(
        first=first,
        second=second,
        first_root=first_root.hex(),
        second_root=second_root.hex(),
        consistency_path=[h.hex() for h in path],
    )


def receipt_for(session: Session, index: int) -> Receipt:
    return Receipt(leaf_index=index, leaf_hash=StoredNodes(session).get(0, index).hex())


@dataclass(frozen=True)
class Entry:
    """Where an event's entry stands, found by its leaf hash: pending, or sequenced with an inclusion proof."""

    leaf_hash: str
    status: str  # "pending" | "sequenced"
    leaf_index: int | None
    queued_at: datetime | None  # pending: when its action committed it
    inclusion: InclusionProof | None  # sequenced: in the tree of the current size


def entry(session: Session, leaf_hash: str) -> Entry:
    """The entry whose leaf hash is ``leaf_hash`` (64 lowercase hex digits); ``NotFound`` if there is none."""
    if len(leaf_hash) != 64 or any(c not in "0123456789abcdef" for c in leaf_hash):
        raise InvalidInput("leaf_hash must be 64 lowercase hex digits.")
    found = index_of(session, [leaf_hash])
    if leaf_hash in found:
        index = found[leaf_hash]
        return Entry(
            leaf_hash=leaf_hash,
            status="sequenced",
            leaf_index=index,
            queued_at=None,
            inclusion=inclusion(session, leaf_index=index),
        )
    queued = session.execute(
        select(_PENDING.c.queued_at).where(_PENDING.c.leaf_hash == bytes.fromhex(leaf_hash))
    ).scalar()
    if queued is None:
        raise NotFound()
    return Entry(leaf_hash=leaf_hash, status="pending", leaf_index=None, queued_at=queued, inclusion=None)


@dataclass(frozen=True)
class Backlog:
    """The sequencer's queue: how many events wait (at most), and for how long the oldest has."""

    pending: int
    oldest_seconds: float | None


def pending_backlog(session: Session, *, now: datetime) -> Backlog:
    count = backlog(session)
    if not count:
        return Backlog(pending=0, oldest_seconds=None)
    oldest = session.execute(select(_PENDING.c.queued_at).order_by(_PENDING.c.id).limit(1)).scalar()
    age = None if oldest is None else max(0.0, (now - oldest).total_seconds())
    return Backlog(pending=count, oldest_seconds=age)
