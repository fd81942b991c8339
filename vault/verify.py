"""``civicvault verify``: recompute the ledger from its rows and name the first bad entry.

Checks, streaming the rows in index order (memory does not grow with the
number of entries):

1. indices run 0, 1, 2, ... up to the ledger's size, with no gap, duplicate
   or extra entry;
2. each entry's leaf, recomputed from its stored salt and body, equals the
   stored leaf hash, and its query columns (kind, time, actor, subject, data)
   say what its body says;
3. every stored interior node equals the hash of its two children, and no
   node lies beyond the ledger's size;
4. the root recomputed from the leaves equals the root served from the
   stored nodes;
5. every record version and every grant has the event that created it;
   entries erased with their subject (``vault.erasure``) are checked
   structurally, and against the digest their erasure event holds;
6. every signed checkpoint: its signature, a size within the ledger (a
   truncated tail is caught here), and its root equal to the ledger's root
   at that size (so all checkpoints are consistent with each other).

The first failure raises ``LedgerIntegrityError`` naming the entry.
"""

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from crypto import merkle
from vault import checkpoints, erasure, ledger
from vault.clock import rfc3339
from vault.errors import LedgerIntegrityError
from vault.models import Event, Grant, LedgerNode, RecordVersion

BATCH = 2000


@dataclass(frozen=True)
class Report:
    size: int
    root: str
    nodes: int
    checkpoints: int
    erased: int = 0  # entries whose payload an erasure destroyed (vault/erasure.py)


def _fail(index: int | None, problem: str) -> LedgerIntegrityError:
    where = f"Ledger entry {index}" if index is not None else "The ledger"
    return LedgerIntegrityError(f"{where}: {problem}")


def _check_columns(event: Event) -> None:
    try:
        body = json.loads(bytes(event.body).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _fail(event.ledger_index, "its stored body is not JSON.") from None
    expected = {"v": ledger.BODY_VERSION, "kind": event.kind, "occurred_at": rfc3339(event.occurred_at), "actor_id": event.actor_id,
                "subject_id": event.subject_id, "data": json.loads(event.data)}
    if body != expected:
        differing = sorted(k for k in set(body) | set(expected) if body.get(k) != expected.get(k))
        raise _fail(event.ledger_index, f"its columns do not match its body ({', '.join(differing)}).")


def _leaves(session: Session, size: int, progress: Callable[[int], None]) -> Iterator[bytes]:
    rows = session.execute(
        select(Event, LedgerNode.hash)
        .outerjoin(LedgerNode, and_(LedgerNode.level == 0, LedgerNode.index == Event.ledger_index))
        .order_by(Event.ledger_index)
        .execution_options(yield_per=BATCH)
    )
    expected = 0
    for event, stored in rows:
        if event.ledger_index != expected:
            raise _fail(expected, "is missing (the next stored entry is %d)." % event.ledger_index
                        if event.ledger_index > expected else "appears twice.")
        if expected >= size:
            raise _fail(expected, f"lies beyond the ledger's size, {size}.")
        if stored is None:
            raise _fail(expected, "has no stored leaf hash.")
        if erasure.is_erased(event):  # payload destroyed by an erasure: checked structurally (vault/erasure.py)
            leaf = erasure.check_erased_entry(event, bytes(stored), size=size)
        else:
            leaf = ledger.leaf_hash_of(bytes(event.salt), bytes(event.body))
            if leaf != bytes(stored):
                raise _fail(expected, f"its event does not match its leaf: recomputed {leaf.hex()}, stored {bytes(stored).hex()}.")
            _check_columns(event)
        session.expunge(event)
        expected += 1
        if expected % BATCH == 0:
            progress(BATCH)
        yield leaf
    if expected != size:
        raise _fail(expected, f"is missing: the ledger's size is {size} but only {expected} entries are stored.")
    progress(expected % BATCH)


def _check_nodes(session: Session, size: int) -> int:
    """Every interior node equals the hash of its children; nothing lies beyond the size."""
    checked = 0
    level = 1
    while True:
        width = 1 << level
        parents = session.execute(
            select(LedgerNode.index, LedgerNode.hash).where(LedgerNode.level == level).order_by(LedgerNode.index)
            .execution_options(yield_per=BATCH)
        )
        children = session.execute(
            select(LedgerNode.index, LedgerNode.hash).where(LedgerNode.level == level - 1).order_by(LedgerNode.index)
            .execution_options(yield_per=BATCH)
        )
        pending = iter(children)
        expected = 0
        for index, stored in parents:
            if index != expected:
                raise _fail(expected * width, f"the node at level {level}, index {expected} is missing or misplaced.")
            left, right = next(pending, None), next(pending, None)
            if left is None or right is None or left[0] != 2 * index or right[0] != 2 * index + 1:
                raise _fail(2 * index * (width // 2), f"the children of node (level {level}, index {index}) are missing.")
            if merkle.node_hash(bytes(left[1]), bytes(right[1])) != bytes(stored):
                raise _fail(index * width, f"node (level {level}, index {index}) does not match its children.")
            expected += 1
            checked += 1
        if expected != size >> level:
            raise _fail(expected * width, f"level {level} holds {expected} nodes, the size {size} needs {size >> level}.")
        if expected == 0:
            break
        level += 1
    beyond = session.scalar(select(LedgerNode.level).where(LedgerNode.level == 0, LedgerNode.index >= size).limit(1))
    if beyond is not None:
        raise _fail(size, f"a leaf is stored beyond the ledger's size, {size}.")
    return checked


def _check_links(session: Session) -> None:
    """Every record version and grant has the event that made it."""
    written, granted = set(), set()
    rows = session.execute(
        select(Event.ledger_index, Event.kind, Event.data)
        .where(Event.kind.in_(("record.created", "record.version-added", "consent.granted")), Event.erased_by.is_(None))
        .execution_options(yield_per=BATCH)
    )
    for _, kind, data in rows:
        fields = json.loads(data)
        if kind == "consent.granted":
            granted.add(fields["grant_id"])
        else:
            written.add((fields["record_id"], fields["version"]))
    for record_id, version in session.execute(select(RecordVersion.record_id, RecordVersion.version).execution_options(yield_per=BATCH)):
        if (record_id, version) not in written:
            raise _fail(None, f"record {record_id} version {version} has no record event in the ledger.")
    for (grant_id,) in session.execute(select(Grant.id).execution_options(yield_per=BATCH)):
        if grant_id not in granted:
            raise _fail(None, f"grant {grant_id} has no consent.granted event in the ledger.")


def verify(session: Session, *, public_key: bytes | None = None, progress: Callable[[int], None] = lambda n: None) -> Report:
    """Check the whole ledger; raise ``LedgerIntegrityError`` at the first fault.

    With the node's ``public_key``, every signed checkpoint is checked too.
    """
    size = ledger.size(session)
    count, root = merkle.root_of_stream(_leaves(session, size, progress))
    nodes = _check_nodes(session, size)
    served = ledger.root(session, size)
    if served != root:
        raise _fail(None, f"the root served from stored nodes ({served.hex()}) differs from the recomputed root ({root.hex()}).")
    _check_links(session)
    erased = erasure.check_erasures(session)
    signed = checkpoints.verify_all(session, public_key=public_key, ledger_size=size) if public_key is not None else 0
    return Report(size=count, root=root.hex(), nodes=nodes, checkpoints=signed, erased=erased)
