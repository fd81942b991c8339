"""Anchor the latest signed checkpoint on chain, record it, and list anchors.

``anchor_latest`` is what ``civicvault anchor now`` and the background
anchorer run. Each anchor is recorded in ``anchors`` with its chain id,
contract, transaction, block and gas, and as a ``checkpoint.anchored`` event
on the ledger, in one transaction. The chain transaction runs outside any
database transaction, so requests never wait for the node.

If the process dies after the transaction was mined but before it was
recorded, the next run finds the anchor on chain (``anchorOf``) and records
it from the contract's event instead of sending it again. A chain that holds
a different root for the size is an integrity failure, never overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vault.core.clock import rfc3339
from vault.core.errors import ConfigError, InvalidInput, LedgerIntegrityError, NotFound
from vault.ledger.events import DomainEvent, emit
from vault.storage.db import rowcount
from vault.storage.models import Anchor, AnchorLease, Checkpoint, Event

if TYPE_CHECKING:
    from vault.anchoring.chain import Chain
    from vault.anchoring.settings import Signer
    from vault.runtime import Vault

ACTOR = "system.anchorer"  # the actor of checkpoint.anchored events: the vault itself
ANCHORED = "checkpoint.anchored"


@dataclass(frozen=True)
class AnchorView:
    origin: str
    tree_size: int
    root_hash: str
    chain_id: int
    contract: str
    transaction_hash: str
    block_number: int
    block_hash: str
    gas_used: int
    anchored_at: datetime

    @property
    def label(self) -> str:
        """How messages name an anchor."""
        return (
            f"anchor of size {self.tree_size} (chain {self.chain_id}, contract {self.contract}, "
            f"tx 0x{self.transaction_hash}, block {self.block_number})"
        )


@dataclass(frozen=True)
class Outcome:
    anchor: AnchorView
    sent: bool  # False: it was on chain already (recovered) or recorded already


def view(row: Anchor) -> AnchorView:
    return AnchorView(
        origin=row.origin,
        tree_size=row.tree_size,
        root_hash=bytes(row.root).hex(),
        chain_id=row.chain_id,
        contract=row.contract,
        transaction_hash=bytes(row.tx_hash).hex(),
        block_number=row.block_number,
        block_hash=bytes(row.block_hash).hex(),
        gas_used=row.gas_used,
        anchored_at=row.anchored_at,
    )


def list_anchors(session: Session, *, limit: int = 100, before: int | None = None) -> list[AnchorView]:
    """Anchors, largest tree size first; ``before``: only those with a smaller size."""
    query = select(Anchor).order_by(Anchor.tree_size.desc(), Anchor.id.desc()).limit(limit)
    if before is not None:
        query = query.where(Anchor.tree_size < before)
    return [view(row) for row in session.scalars(query)]


def latest_anchor(session: Session) -> AnchorView:
    row = session.scalars(select(Anchor).order_by(Anchor.tree_size.desc(), Anchor.id.desc()).limit(1)).first()
    if row is None:
        raise NotFound("No checkpoint has been anchored yet.")
    return view(row)


def _latest_checkpoint(session: Session) -> Checkpoint:
    row = session.scalars(
        select(Checkpoint).order_by(Checkpoint.tree_size.desc(), Checkpoint.id.desc()).limit(1)
    ).first()
    if row is None:
        raise InvalidInput("No checkpoint has been signed yet: run 'civicvault checkpoint' first.")
    return row


def _record(
    session: Session,
    *,
    origin: str,
    tree_size: int,
    root: bytes,
    chain_id: int,
    contract: str,
    tx_hash: bytes,
    block_number: int,
    block_hash: bytes,
    gas_used: int,
    now: datetime,
) -> AnchorView:
    row = Anchor(
        origin=origin,
        tree_size=tree_size,
        root=root,
        chain_id=chain_id,
        contract=contract,
        tx_hash=tx_hash,
        block_number=block_number,
        block_hash=block_hash,
        gas_used=gas_used,
        anchored_at=now,
    )
    session.add(row)
    session.flush()
    emit(
        session,
        DomainEvent(
            kind=ANCHORED,
            occurred_at=now,
            actor_id=ACTOR,
            subject_id=None,
            data={
                "tree_size": tree_size,
                "root_hash": root.hex(),
                "chain_id": chain_id,
                "contract": contract,
                "tx_hash": tx_hash.hex(),
                "block_number": block_number,
            },
        ),
    )
    return view(row)


def check_chain_id(chain: Chain, expected: int | None) -> int:
    chain_id = chain.chain_id()
    if expected is not None and chain_id != expected:
        raise ConfigError(
            f"The node is on chain {chain_id}, but CIVICVAULT_ANCHOR_CHAIN_ID says {expected}: not sending."
        )
    return chain_id


def anchor_latest(vault: Vault, *, chain: Chain, signer: Signer, expected_chain_id: int | None = None) -> Outcome:
    """Anchor the latest signed checkpoint unless it is anchored already on this contract."""
    chain_id = check_chain_id(chain, expected_chain_id)
    contract = chain.address
    if contract is None:
        raise ConfigError("No anchor contract is configured: run 'civicvault anchor deploy' first.")
    with vault.read_transaction() as session:
        checkpoint = _latest_checkpoint(session)
        origin, size, root = checkpoint.origin, checkpoint.tree_size, bytes(checkpoint.root)
        done = session.scalars(
            select(Anchor).where(
                Anchor.chain_id == chain_id,
                Anchor.contract == contract,
                Anchor.origin == origin,
                Anchor.tree_size == size,
            )
        ).first()
        if done is not None:
            return Outcome(view(done), sent=False)
    held = chain.anchor_of(origin, size)
    if held.present:
        if held.root != root:
            raise LedgerIntegrityError(
                f"The chain already holds root {held.root.hex()} for size {size} of {origin} (contract {contract}), "
                f"but the local checkpoint's root is {root.hex()}: the local ledger contradicts its anchor."
            )
        logged = [e for e in chain.logged(origin, from_block=held.block_number) if e.tree_size == size]
        if not logged:
            raise LedgerIntegrityError(f"The chain holds size {size} of {origin} but no Anchored event for it.")
        receipt = chain.receipt(logged[0].tx_hash)
        tx_hash, block_number = logged[0].tx_hash, logged[0].block_number
        block_hash, gas_used = bytes(receipt["blockHash"]), int(receipt["gasUsed"])
        sent = False
    else:
        result = chain.anchor(signer, origin=origin, tree_size=size, root=root)
        tx_hash, block_number, block_hash, gas_used, sent = (
            result.tx_hash,
            result.block_number,
            result.block_hash,
            result.gas_used,
            True,
        )
    with vault.transaction() as session:
        anchored = _record(
            session,
            origin=origin,
            tree_size=size,
            root=root,
            chain_id=chain_id,
            contract=contract,
            tx_hash=tx_hash,
            block_number=block_number,
            block_hash=block_hash,
            gas_used=gas_used,
            now=vault.now(),
        )
    return Outcome(anchored, sent=sent)


def is_due(session: Session, *, every: int, minutes: int, now: datetime) -> bool:
    """A newer checkpoint than the last anchor, covering more than anchoring's own events,
    and ``every`` such checkpoints or ``minutes`` since the last anchor."""
    last = session.scalars(select(Anchor).order_by(Anchor.tree_size.desc(), Anchor.id.desc()).limit(1)).first()
    last_size = last.tree_size if last else 0
    newer = session.scalar(select(func.count()).select_from(Checkpoint).where(Checkpoint.tree_size > last_size)) or 0
    if newer == 0:
        return False
    # Anchoring records itself on the ledger; a checkpoint that covers nothing
    # but that record is not worth another anchor (an idle vault would
    # otherwise anchor after every checkpoint, forever).
    latest_size = session.scalar(select(func.max(Checkpoint.tree_size)))
    activity = session.scalar(
        select(Event.ledger_index)
        .where(Event.ledger_index >= last_size, Event.ledger_index < latest_size, Event.kind != ANCHORED)
        .limit(1)
    )
    if activity is None:
        return False
    if every > 0 and newer >= every:
        return True
    return minutes > 0 and (last is None or now - last.anchored_at >= timedelta(minutes=minutes))


def take_lease(vault: Vault, *, holder: str, now: datetime, seconds: int) -> bool:
    """The single-row lease that lets one worker at a time send anchors."""
    with vault.transaction() as session:
        taken = rowcount(
            session.execute(
                update(AnchorLease)
                .where(AnchorLease.id == 1, or_(AnchorLease.until.is_(None), AnchorLease.until < now))
                .values(holder=holder, until=now + timedelta(seconds=seconds))
                .execution_options(synchronize_session=False)
            )
        )
        if taken == 1:
            return True
        if session.get(AnchorLease, 1) is not None:
            return False
        try:
            with session.begin_nested():
                session.add(AnchorLease(id=1, holder=holder, until=now + timedelta(seconds=seconds)))
        except IntegrityError:  # another worker created it first
            return False
        return True


def release_lease(vault: Vault, *, holder: str) -> None:
    with vault.transaction() as session:
        session.execute(
            update(AnchorLease)
            .where(AnchorLease.id == 1, AnchorLease.holder == holder)
            .values(until=None)
            .execution_options(synchronize_session=False)
        )


def anchor_if_due(
    vault: Vault,
    *,
    chain: Chain,
    signer: Signer,
    every: int,
    minutes: int,
    holder: str,
    expected_chain_id: int | None = None,
    lease_seconds: int = 300,
) -> Outcome | None:
    """One round of periodic anchoring: anchor when due and this worker holds the lease."""
    now = vault.now()
    if not take_lease(vault, holder=holder, now=now, seconds=lease_seconds):
        return None
    try:
        with vault.read_transaction() as session:
            if not is_due(session, every=every, minutes=minutes, now=now):
                return None
        return anchor_latest(vault, chain=chain, signer=signer, expected_chain_id=expected_chain_id)
    finally:
        release_lease(vault, holder=holder)


def describe(anchor: AnchorView) -> str:
    return (
        f"size {anchor.tree_size}  root {anchor.root_hash}  chain {anchor.chain_id}  block {anchor.block_number}  "
        f"tx 0x{anchor.transaction_hash}  gas {anchor.gas_used}  {rfc3339(anchor.anchored_at)}"
    )
