"""``civicvault verify --state FILE``: verify only what is new since the last verify.

A verify (full or incremental) that passes saves what it proved, the ledger's
size and root, in a small JSON state file (``docs/ledger-format.md``,
"Incremental verification"). The next run starts from there:

1. the current ledger must be at least as long as the saved one ("behind"
   otherwise), and the stored peaks of the saved tree must hash to the
   saved root: an old entry rewritten together with its stored nodes, or a
   ledger cut and regrown, changes a peak;
2. only the new entries are read and checked as the full verify checks them
   (leaf from salt and body, query and search columns, erased entries), and
   the interior nodes they complete are recomputed from those peaks and
   compared with the stored ones (``verify._check_range`` with ``prefix``);
   no node lies beyond the new size; then an RFC 9162 consistency proof from
   the saved size to the current one, built from the stored nodes, must
   verify (``crypto.merkle.verify_consistency``) against the saved root and
   the recomputed current root;
3. the erasures at the saved size or later (their digests, and the old
   entries they blanked) and the signed checkpoints over more entries;
4. the caller writes the new state (``write_state``: atomic, mode 0600).

Not checked incrementally (the full ``verify`` does): that every record
version and grant has its event, older checkpoints and anchors.
"""

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from crypto import merkle
from crypto.errors import ProofError
from vault.core.clock import rfc3339
from vault.core.errors import InvalidInput, LedgerIntegrityError
from vault.ledger import checkpoints, ledger
from vault.rights import erasure
from vault.storage.models import Event, LedgerNode
from vault.verification import verify as full

STATE_FORMAT = "civicvault-verify-state-v1"


@dataclass(frozen=True)
class VerifiedState:
    """What a passing verify proved: the ledger ``origin`` had ``tree_size`` entries with ``root_hash``."""

    origin: str
    tree_size: int
    root_hash: bytes
    verified_at: str  # RFC 3339, for people; not checked

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": STATE_FORMAT,
                "origin": self.origin,
                "tree_size": self.tree_size,
                "root_hash": self.root_hash.hex(),
                "verified_at": self.verified_at,
            },
            indent=2,
        )


@dataclass(frozen=True)
class IncrementalReport:
    since: int  # the saved size
    size: int
    root: str
    checked: int  # entries read and checked: size - since
    nodes: int  # interior nodes recomputed and compared
    checkpoints: int  # signed checkpoints newer than the saved size
    erased: int
    pending: int = 0  # events waiting for the sequencer


def read_state(text: str, *, origin: str, name: str) -> VerifiedState:
    """Parse a state file; ``InvalidInput`` in one sentence if it is not one, or is another ledger's."""
    try:
        raw: Any = json.loads(text)
        fields = (raw["format"], raw["origin"], raw["tree_size"], raw["root_hash"], raw.get("verified_at", ""))
        root = bytes.fromhex(fields[3])
    except (ValueError, KeyError, TypeError, AttributeError):
        raise InvalidInput(f"{name} is not a verify state file ({STATE_FORMAT}).") from None
    form, state_origin, size, _, verified_at = fields
    if form != STATE_FORMAT or type(size) is not int or size < 0 or len(root) != 32 or type(state_origin) is not str:
        raise InvalidInput(f"{name} is not a verify state file ({STATE_FORMAT}).")
    if state_origin != origin:
        raise InvalidInput(f"{name} is the verify state of the ledger {state_origin!r}, not of this one ({origin!r}).")
    return VerifiedState(origin=origin, tree_size=size, root_hash=root, verified_at=str(verified_at))


def write_state(path: Path, state: VerifiedState) -> None:
    """Write ``state`` to ``path`` atomically (a temporary file in the same directory, then a rename), mode 0600."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(handle, 0o600)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(state.to_json() + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def state_after(*, origin: str, size: int, root: str, now: datetime) -> VerifiedState:
    return VerifiedState(origin=origin, tree_size=size, root_hash=bytes.fromhex(root), verified_at=rfc3339(now))


def _check_old_root(state: VerifiedState, prefix: list[tuple[int, bytes]]) -> None:
    """The stored peaks of the saved tree hash to the saved root (an old entry rewritten with its nodes fails)."""
    served = full._fold([node for _, node in prefix])
    if served != state.root_hash:
        raise LedgerIntegrityError(
            f"The ledger does not extend the verified state: its root at size {state.tree_size}, from the stored "
            f"nodes, is {served.hex()}, the state's {state.root_hash.hex()} (an old entry or node was rewritten)."
        )


def _check_consistency(state: VerifiedState, size: int, root: bytes, stored: ledger.StoredNodes) -> None:
    """The saved tree is a prefix of the current one: a consistency proof from the stored nodes (RFC 9162 2.1.4.2)."""
    proof = stored.ranges(merkle.consistency_proof_ranges(state.tree_size, size))
    try:
        merkle.verify_consistency(state.tree_size, size, state.root_hash, root, proof)
    except ProofError as exc:
        raise LedgerIntegrityError(
            f"The ledger does not extend the verified state of size {state.tree_size}: {exc}."
        ) from None


def _check_nothing_beyond(session: Session, size: int) -> None:
    """No event, leaf or interior node lies beyond ``size`` (one indexed look-up per level)."""
    event = session.scalar(select(Event.ledger_index).where(Event.ledger_index >= size).limit(1))
    if event is not None:
        raise full._fail(event, f"lies beyond the ledger's size, {size}.")
    top = size.bit_length()
    for level in range(top + 1):
        node = session.scalar(
            select(LedgerNode.index).where(LedgerNode.level == level, LedgerNode.index >= size >> level).limit(1)
        )
        if node is not None:
            raise full._fail(
                node << level, f"the node at level {level}, index {node} lies beyond the ledger's size, {size}."
            )
    higher = session.scalar(select(LedgerNode.level).where(LedgerNode.level > top).limit(1))
    if higher is not None:
        raise full._fail(None, f"a node is stored at level {higher}, above the top of a ledger of {size} entries.")


def _check_new_erasures(session: Session, since: int, size: int) -> int:
    """The erasures at ``since`` or later, as ``erasure.check_erasures`` checks every erasure.

    Each new ``subject.erased`` event's digest must cover exactly the entries
    marked as erased by it (read through the index on ``erased_by``), and the
    old entries it blanked are checked as erased entries are (the new ones
    were, in the pass over the new range). Returns how many entries the new
    erasures blanked. Older erasures were checked by an earlier verify.
    """
    stored = ledger.StoredNodes(session)
    marked: dict[int, list[tuple[int, bytes, str, datetime]]] = {}
    # No ORDER BY: SQLite would then walk the primary key (every event) instead of the index on erased_by.
    for event in sorted(session.scalars(select(Event).where(Event.erased_by >= since)), key=lambda e: e.ledger_index):
        erased_by = cast(int, event.erased_by)
        leaf = stored.get(0, event.ledger_index)
        if event.ledger_index < since:
            erasure.check_erased_entry(event, leaf, size=size)
        marked.setdefault(erased_by, []).append((event.ledger_index, leaf, event.kind, event.occurred_at))
    erasures: dict[int, str] = dict(
        session.execute(
            select(Event.ledger_index, Event.data).where(
                Event.kind == "subject.erased", Event.ledger_index >= since, Event.erased_by.is_(None)
            )
        ).all()
    )
    for index in sorted(set(marked) | set(erasures)):
        entries = marked.get(index, [])
        if index not in erasures:
            raise LedgerIntegrityError(
                f"Ledger entry {index}: erased entries name it as their erasure, but it is not one."
            )
        fields = json.loads(erasures[index])
        if fields.get("events_erased", 0) != len(entries) or (
            entries and fields.get("erased_digest") != erasure.erased_digest(entries).hex()
        ):
            raise LedgerIntegrityError(
                f"Ledger entry {index}: the entries marked as erased by it are not the ones it erased "
                f"({len(entries)} marked, {fields.get('events_erased')} erased)."
            )
    return sum(len(entries) for entries in marked.values())


def verify_since(
    session: Session,
    state: VerifiedState,
    *,
    public_key: bytes | None = None,
    progress=lambda n: None,
    pending_bound: float | None = None,
) -> IncrementalReport:
    """Verify the entries after ``state`` and that the ledger extends it; raise ``LedgerIntegrityError`` otherwise.

    The pending events are checked as by the full verify (``verify._check_pending``): they are few.
    """
    size, since = ledger.size(session), state.tree_size
    if size < since:
        raise LedgerIntegrityError(
            f"The ledger is behind the verified state: it holds {size} entries, the state {since}; entries {size} "
            f"to {since - 1} are missing (a database backup older than the state was restored, or the ledger was cut)."
        )
    stored = ledger.StoredNodes(session)
    pieces = merkle.perfect_subtrees(0, since) if since else []
    stored.prefetch(pieces)
    prefix = [(level, stored.get(level, index)) for level, index in pieces]
    _check_old_root(state, prefix)
    checked = full._check_range(session, since, size, size=size, prefix=prefix, progress=progress)
    root = full._fold([node for _, node in checked.peaks])
    _check_consistency(state, size, root, stored)
    _check_nothing_beyond(session, size)
    served = ledger.root(session, size)
    if served != root:
        raise full._fail(
            None, f"the root served from stored nodes ({served.hex()}) differs from the recomputed root ({root.hex()})."
        )
    erased = _check_new_erasures(session, since, size)
    pending = full._check_pending(session, now=datetime.now(UTC), bound_seconds=pending_bound)
    signed = checkpoints.verify_all(session, public_key=public_key, ledger_size=size, since=since) if public_key else 0
    return IncrementalReport(
        since=since,
        size=size,
        root=root.hex(),
        checked=size - since,
        nodes=checked.checked,
        checkpoints=signed,
        erased=erased,
        pending=pending,
    )
