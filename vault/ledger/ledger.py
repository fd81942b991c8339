"""The ledger: every domain event committed to an append-only RFC 9162 Merkle log.

Appending (``append``) happens inside the caller's transaction, so an event
and the action it describes commit or roll back together (fail closed):

1. the event's canonical JSON (``body``) and a fresh 32-byte ``salt`` are
   stored off-chain in ``events``;
2. the log entry is ``0x01 || SHA-256("civicvault-ledger-entry-v1" || 0x00 ||
   salt || body)``: 33 bytes that reveal nothing without the salt and body;
3. its leaf hash (RFC 9162: SHA-256(0x00 || entry)) is stored at level 0 of
   ``ledger_nodes`` with the perfect subtrees it completes.

The index comes from ``UPDATE ledger_head SET size = size + 1 RETURNING
size``: the row lock serialises appenders, so indices are unique and
gap-free under concurrent writers on SQLite and PostgreSQL (a rolled-back
append gives its number back). Appending costs O(1) amortised row writes;
the root and every proof need O(log n) primary-key reads.

The event row also gets its compliance search columns (``outcome``,
``purpose``, ``event_categories``), derived from its data by
``vault.audit_index``; they are not part of the entry.
docs/ledger-format.md has the exact bytes.
"""

import hashlib
import json
import os
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Engine, Table, insert, update
from sqlalchemy.exc import DataError, DBAPIError
from sqlalchemy.orm import Session

from crypto import merkle
from vault.core.clock import rfc3339
from vault.core.errors import InvalidInput, LedgerIntegrityError, LedgerUnavailable
from vault.storage import audit_index
from vault.storage.models import Event, EventCategory, LedgerHead, LedgerNode

ENTRY_VERSION = 1
ENTRY_DOMAIN = b"civicvault-ledger-entry-v1"
BODY_VERSION = 1
SALT_SIZE = 32


@dataclass(frozen=True)
class Receipt:
    leaf_index: int
    leaf_hash: str  # lowercase hex


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


_EVENTS, _NODES, _HEAD = (cast(Table, model.__table__) for model in (Event, LedgerNode, LedgerHead))


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
    """Commit one event to the log in the session's transaction.

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


def append_many(session: Session, events: Sequence[Mapping[str, Any]]) -> list[Receipt]:
    """Commit several events to the log, in order, in the session's transaction.

    Each event is a mapping with the keyword arguments of ``append``. The
    statements do not grow with the number of events: one ``UPDATE`` reserves
    the indices, one ``SELECT`` reads the peaks (the perfect subtrees left of
    the first new leaf, one per set bit of the old size), and one ``INSERT``
    into each table writes the events, their leaves and the nodes they
    complete, which are computed in memory from the peaks.

    Raises ``LedgerUnavailable`` when the database refuses the append (the
    caller's transaction then rolls back: fail closed).
    """
    count = len(events)
    if count == 0:
        return []
    # The head row locked and updated, the rows inserted: when the database refuses any of it
    # (a constraint, a trigger, a missing table or row, a lost connection), the event cannot be
    # recorded, and neither can the action it describes. Not a conflict to retry.
    driver = session.get_bind().dialect.loaded_dbapi  # StoredNodes reads through the driver itself
    try:
        return _append_many(session, events)
    except (DataError, driver.DataError):
        raise  # a value the database cannot store: the request's fault, not the ledger's
    except (DBAPIError, driver.Error) as exc:
        raise LedgerUnavailable() from exc


def _append_many(session: Session, events: Sequence[Mapping[str, Any]]) -> list[Receipt]:
    count = len(events)
    size = session.execute(
        update(_HEAD).where(_HEAD.c.id == 1).values(size=_HEAD.c.size + count).returning(_HEAD.c.size)
    ).scalar()
    if size is None:  # the head row is gone
        raise LedgerUnavailable()
    start = size - count
    stored = StoredNodes(session)
    peak_keys = merkle.perfect_subtrees(0, start) if start else []
    stored.prefetch(peak_keys)
    peaks = [stored.get(level, index) for level, index in peak_keys]  # largest (leftmost) first: a stack
    event_rows: list[dict[str, Any]] = []
    node_rows: list[dict[str, Any]] = []
    category_rows: list[dict[str, Any]] = []
    receipts: list[Receipt] = []
    for index, event in enumerate(events, start):
        salt = os.urandom(SALT_SIZE)
        body = body_from_columns(
            kind=event["kind"],
            occurred_at=rfc3339(event["occurred_at"]),
            actor_id=event["actor_id"],
            subject_id=event["subject_id"],
            data_json=event["data_json"],
        )
        leaf = leaf_hash_of(salt, body)
        data = event["data"] if "data" in event else json.loads(event["data_json"])
        event_rows.append(
            {
                "ledger_index": index,
                "kind": event["kind"],
                "occurred_at": event["occurred_at"],
                "actor_id": event["actor_id"],
                "subject_id": event["subject_id"],
                "data": event["data_json"],
                "salt": salt,
                "body": body,
                **audit_index.columns_of(event["kind"], data),
            }
        )
        # Compliance search: the categories the event names (not part of the entry).
        category_rows.extend({"ledger_index": index, "category": c} for c in audit_index.categories_of(data))
        node_rows.append({"level": 0, "idx": index, "hash": leaf})
        # The leaf completes one perfect subtree per trailing one bit of its index.
        node, level, position = leaf, 0, index
        while position & 1:
            node = merkle.node_hash(peaks.pop(), node)
            level, position = level + 1, position >> 1
            node_rows.append({"level": level, "idx": position, "hash": node})
        peaks.append(node)
        receipts.append(Receipt(leaf_index=index, leaf_hash=leaf.hex()))
    session.execute(insert(_EVENTS), event_rows)
    session.execute(insert(_NODES), node_rows)
    if category_rows:
        session.execute(insert(cast(Table, EventCategory.__table__)), category_rows)
    return receipts


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
