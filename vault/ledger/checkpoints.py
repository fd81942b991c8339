"""Signed checkpoints of the ledger: (origin, size, root) under the node's BLS key.

Signing costs a few hundred milliseconds with py-ecc, so it never runs on a
request path: ``civicvault checkpoint`` signs, and so does a background
thread in each server worker (``sign_if_due``), one worker at a time through
a lease in the database; requests only read the latest stored checkpoint.
``verify`` checks every stored checkpoint against
the ledger: its signature, that its size is not beyond the ledger's (a
truncated tail shows here), and that its root is the ledger's root at that
size (so every checkpoint is consistent with every other and with the rows).

Rows are kept as they were signed: a checkpoint signed before checkpoint
format 2 keeps its format-1 key id (same signed bytes, accepted by
``verify_all``), and a format-1 cosignature is kept but never shown
(``cosignature_lines``); docs/ledger-format.md, section 6, says why.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from crypto import bls
from crypto import checkpoint as notes
from crypto.bls import SigningKey
from vault.core.clock import rfc3339
from vault.core.errors import InvalidInput, LedgerIntegrityError, NotFound
from vault.ledger import ledger
from vault.storage.db import rowcount
from vault.storage.models import Checkpoint, CheckpointLease, Cosignature, Event, WitnessKey

if TYPE_CHECKING:
    from vault.runtime import Vault


@dataclass(frozen=True)
class SignatureView:
    name: str
    key_id: str  # hex
    signature: str  # base64


@dataclass(frozen=True)
class CheckpointView:
    origin: str
    tree_size: int
    root_hash: str
    note: str
    signatures: list[SignatureView]
    created_at: datetime
    cosigners: int = 0
    threshold: int = 1
    witnessed: bool = False
    aggregate_signature: str | None = None  # base64 of the witnesses' aggregate BLS signature


def cosignature_lines(session: Session, checkpoint_id: int) -> list[notes.NoteSignature]:
    """The witnesses' signature lines of a stored checkpoint, in witness order.

    A row stores the line's bytes, key id then signature (100 bytes). Rows of
    96 bytes are format-1 cosignatures, made over the very bytes the log signs:
    they are kept (they date each witness's last cosigned size, which the next
    cosignature must extend) but never shown or counted as signatures.
    """
    lines = []
    for cosig in session.scalars(
        select(Cosignature).where(Cosignature.checkpoint_id == checkpoint_id).order_by(Cosignature.witness_id)
    ):
        stored = bytes(cosig.signature)
        if len(stored) == 4 + bls.SIGNATURE_SIZE:
            lines.append(notes.NoteSignature(cosig.witness_id, stored[:4], stored[4:]))
    return lines


def _view(row: Checkpoint, *, session: Session | None = None, threshold: int = 1) -> CheckpointView:
    body = notes.Checkpoint(origin=row.origin, size=row.tree_size, root=bytes(row.root))
    signatures = [notes.NoteSignature(name=row.signer, key_id=bytes(row.key_id), signature=bytes(row.signature))]
    cosigned: list[notes.NoteSignature] = []
    roster: dict[str, bytes] = {}
    if session is not None:
        roster = {w.principal_id: bytes(w.public_key) for w in session.scalars(select(WitnessKey))}
        cosigned = cosignature_lines(session, row.id)
        signatures.extend(cosigned)
    witnessed, aggregate = False, None
    if cosigned:
        aggregate = base64.b64encode(bls.aggregate([s.signature for s in cosigned])).decode()
        try:
            notes.verify_cosignatures(body, cosigned, roster, threshold=threshold)
            witnessed = True
        except notes.CheckpointError:
            witnessed = False
    return CheckpointView(
        origin=row.origin,
        tree_size=row.tree_size,
        root_hash=bytes(row.root).hex(),
        note=notes.note(body, signatures),
        signatures=[
            SignatureView(name=s.name, key_id=s.key_id.hex(), signature=base64.b64encode(s.signature).decode())
            for s in signatures
        ],
        created_at=row.created_at,
        cosigners=len(cosigned),
        threshold=threshold,
        witnessed=witnessed,
        aggregate_signature=aggregate,
    )


def sign_now(session: Session, *, key: SigningKey, origin: str, now: datetime) -> CheckpointView:
    """Sign and store a checkpoint of the ledger as it is in this transaction."""
    size = ledger.size(session)
    if size == 0:
        raise InvalidInput("The ledger is empty: there is nothing to checkpoint yet.")
    body = notes.Checkpoint(origin=origin, size=size, root=ledger.root(session, size))
    signature = notes.sign(body, name=origin, key=key)
    row = Checkpoint(
        origin=origin,
        tree_size=size,
        root=body.root,
        signer=signature.name,
        key_id=signature.key_id,
        signature=signature.signature,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return _view(row)


def latest(session: Session, *, threshold: int = 1) -> CheckpointView:
    """The latest node-signed checkpoint, with its witnesses' cosignatures."""
    row = session.scalars(
        select(Checkpoint).order_by(Checkpoint.tree_size.desc(), Checkpoint.id.desc()).limit(1)
    ).first()
    if row is None:
        raise NotFound("No checkpoint has been signed yet.")
    return _view(row, session=session, threshold=threshold)


def verify_all(session: Session, *, public_key: bytes, ledger_size: int, since: int = 0) -> int:
    """Check every stored checkpoint over more than ``since`` entries against the (already verified) ledger.

    ``since`` is 0 for a full verify; an incremental verify passes the size it verified before.
    """
    count = 0
    for row in session.scalars(select(Checkpoint).where(Checkpoint.tree_size > since).order_by(Checkpoint.id)):
        label = f"checkpoint {row.id} (size {row.tree_size}, {rfc3339(row.created_at)})"
        body = notes.Checkpoint(origin=row.origin, size=row.tree_size, root=bytes(row.root))
        try:
            notes.verify(
                body,
                notes.NoteSignature(row.signer, bytes(row.key_id), bytes(row.signature)),
                name=row.signer,
                public_key=public_key,
                accept_legacy_key_id=True,  # rows signed before checkpoint format 2: same signed bytes
            )
        except notes.CheckpointError as exc:
            raise LedgerIntegrityError(f"The signature of {label} does not verify: {exc}.") from None
        if row.tree_size > ledger_size:
            raise LedgerIntegrityError(
                f"Ledger entry {ledger_size} is missing: {label} was signed over {row.tree_size} entries, the ledger "
                f"holds {ledger_size}."
            )
        actual = ledger.root(session, row.tree_size)
        if actual != bytes(row.root):
            raise LedgerIntegrityError(
                f"The ledger contradicts {label}: its root at that size is {actual.hex()}, the checkpoint signed "
                f"{bytes(row.root).hex()}."
            )
        count += 1
    return count


LEASE = timedelta(seconds=60)


def _take_lease(session: Session, holder: str, now: datetime) -> bool:
    taken = session.execute(
        update(CheckpointLease)
        .where(CheckpointLease.id == 1, or_(CheckpointLease.until.is_(None), CheckpointLease.until < now))
        .values(holder=holder, until=now + LEASE)
        .execution_options(synchronize_session=False)
    )
    return rowcount(taken) == 1


# Entries that only record the checkpoints themselves: witnesses' cosignatures
# and anchors. Were they news, an idle vault would sign a checkpoint every
# ``seconds`` for ever (each checkpoint is cosigned, each cosignature an entry).
BOOKKEEPING_KINDS = ("checkpoint.cosigned", "checkpoint.anchored")


def _has_news(session: Session, since: int) -> bool:
    """Whether an entry at or after ``since`` records more than the checkpoints themselves."""
    return (
        session.scalar(
            select(Event.ledger_index).where(Event.ledger_index >= since, Event.kind.not_in(BOOKKEEPING_KINDS)).limit(1)
        )
        is not None
    )


def sign_if_due(
    vault: Vault, *, key: SigningKey, origin: str, every: int, seconds: int, holder: str, now: datetime
) -> CheckpointView | None:
    """Sign a checkpoint when ``every`` entries are new, or the last is ``seconds`` old and
    something other than cosignatures and anchors (``BOOKKEEPING_KINDS``) came since.

    One signer at a time across all workers and hosts: a lease row in the
    database, taken with a conditional UPDATE. The slow BLS signature runs
    outside any transaction, so requests never wait for it.
    """
    with vault.transaction() as session:
        if not _take_lease(session, holder, now):
            return None
    try:
        with vault.read_transaction() as session:
            size = ledger.size(session)
            last = session.scalars(
                select(Checkpoint).order_by(Checkpoint.tree_size.desc(), Checkpoint.id.desc()).limit(1)
            ).first()
            last_size = last.tree_size if last else 0
            new = size - last_size
            due = new > 0 and (
                last is None
                or new >= every
                or (
                    seconds > 0
                    and now - last.created_at >= timedelta(seconds=seconds)
                    and _has_news(session, last_size)
                )
            )
            if not due:
                return None
            body = notes.Checkpoint(origin=origin, size=size, root=ledger.root(session, size))
        signature = notes.sign(body, name=origin, key=key)
        with vault.transaction() as session:
            row = Checkpoint(
                origin=origin,
                tree_size=body.size,
                root=body.root,
                signer=signature.name,
                key_id=signature.key_id,
                signature=signature.signature,
                created_at=now,
            )
            session.add(row)
            session.flush()
            return _view(row)
    finally:
        with vault.transaction() as session:
            session.execute(
                update(CheckpointLease)
                .where(CheckpointLease.id == 1, CheckpointLease.holder == holder)
                .values(until=None)
                .execution_options(synchronize_session=False)
            )
