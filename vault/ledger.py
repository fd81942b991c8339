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
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from crypto import merkle
from vault.clock import rfc3339
from vault.errors import InvalidInput, LedgerIntegrityError
from vault import audit_index
from vault.models import Event, EventCategory, LedgerHead, LedgerNode

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
    document = {"v": BODY_VERSION, "kind": kind, "occurred_at": rfc3339(occurred_at), "actor_id": actor_id,
                "subject_id": subject_id, "data": data}
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def commitment(salt: bytes, body: bytes) -> bytes:
    return hashlib.sha256(ENTRY_DOMAIN + b"\x00" + salt + body).digest()


def entry_bytes(salt: bytes, body: bytes) -> bytes:
    """The RFC 9162 leaf input: a version byte and the commitment."""
    return bytes([ENTRY_VERSION]) + commitment(salt, body)


def leaf_hash_of(salt: bytes, body: bytes) -> bytes:
    return merkle.leaf_hash(entry_bytes(salt, body))


def _node(session: Session, level: int, index: int) -> bytes:
    row = session.get(LedgerNode, (level, index))
    if row is None:
        raise LedgerIntegrityError(f"Ledger node (level {level}, index {index}) is missing.")
    return row.hash


def append(session: Session, *, kind: str, occurred_at: datetime, actor_id: str, subject_id: str | None, data: dict, data_json: str) -> Receipt:
    """Commit one event to the log in the session's transaction."""
    size = session.execute(
        update(LedgerHead).where(LedgerHead.id == 1).values(size=LedgerHead.size + 1).returning(LedgerHead.size)
        .execution_options(synchronize_session=False)
    ).scalar()
    if size is None:
        raise LedgerIntegrityError("The ledger head is missing: the database is not initialised.")
    index = size - 1
    salt = os.urandom(SALT_SIZE)
    body = canonical_body(kind=kind, occurred_at=occurred_at, actor_id=actor_id, subject_id=subject_id, data=data)
    leaf = leaf_hash_of(salt, body)
    session.add(Event(ledger_index=index, kind=kind, occurred_at=occurred_at, actor_id=actor_id, subject_id=subject_id,
                      data=data_json, salt=salt, body=body, **audit_index.columns_of(kind, data)))
    # Store the leaf and every perfect subtree it completes: while the node is
    # a right child, combine it with its stored left sibling one level up.
    session.add(LedgerNode(level=0, index=index, hash=leaf))
    node, level, position = leaf, 0, index
    while position & 1:
        node = merkle.node_hash(_node(session, level, position - 1), node)
        level, position = level + 1, position >> 1
        session.add(LedgerNode(level=level, index=position, hash=node))
    session.flush()
    # Compliance search: the categories the event names, once its row exists (they
    # are written with the next flush, in the same transaction).
    session.add_all(EventCategory(ledger_index=index, category=c) for c in audit_index.categories_of(data))
    return Receipt(leaf_index=index, leaf_hash=leaf.hex())


def size(session: Session) -> int:
    head = session.get(LedgerHead, 1)
    if head is None:
        raise LedgerIntegrityError("The ledger head is missing: the database is not initialised.")
    return head.size


def subtree_hasher(session: Session):
    """``subtree_hash(start, end)`` over the stored perfect subtrees, for proof generation."""
    return lambda start, end: merkle.range_hash(start, end, lambda level, index: _node(session, level, index))


def root(session: Session, tree_size: int) -> bytes:
    return subtree_hasher(session)(0, tree_size) if tree_size else merkle.EMPTY_ROOT


def _check_size(session: Session, tree_size: int | None) -> int:
    current = size(session)
    if tree_size is None:
        return current
    if not 1 <= tree_size <= current:
        raise InvalidInput(f"tree_size must be between 1 and the ledger's size, {current}.")
    return tree_size


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
    subtree = subtree_hasher(session)
    path = merkle.inclusion_proof(leaf_index, tree_size, subtree)
    return InclusionProof(
        leaf_index=leaf_index, tree_size=tree_size, leaf_hash=_node(session, 0, leaf_index).hex(),
        audit_path=[h.hex() for h in path], root_hash=subtree(0, tree_size).hex(),
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
    subtree = subtree_hasher(session)
    path = merkle.consistency_proof(first, second, subtree)
    return ConsistencyProof(
        first=first, second=second, first_root=subtree(0, first).hex(), second_root=subtree(0, second).hex(),
        consistency_path=[h.hex() for h in path],
    )


def receipt_for(session: Session, index: int) -> Receipt:
    return Receipt(leaf_index=index, leaf_hash=_node(session, 0, index).hex())
