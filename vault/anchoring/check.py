"""What ``civicvault verify`` asks of every anchor, locally and on chain.

Locally, for every recorded anchor (smallest size first):

1. the ledger reaches its size, and the ledger's root at that size is the
   anchored root (so a rewritten or truncated history shows here);
2. a signed local checkpoint exists at that size with that root;
3. the anchored roots are consistent with each other: an RFC 9162
   consistency proof from the local tree, checked against the two anchored
   roots, between each anchored size and the next.

On chain, when a node is configured (``chain_for(contract)`` gives a reader):

4. the node is on the chain the anchor was sent to;
5. the contract still holds the anchored root for that size, and the
   transaction is still in the recorded block (an anchor that disappeared,
   or that moved in a reorganisation, fails);
6. every ``Anchored`` event of our origin on the contract, recorded locally
   or not, matches the local ledger and a local checkpoint, so deleting
   anchor rows does not hide a contradiction.

The first failure raises ``LedgerIntegrityError`` naming the anchor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from crypto import merkle
from crypto.errors import ProofError
from vault.anchoring.service import AnchorView, view
from vault.core.errors import LedgerIntegrityError
from vault.ledger import ledger
from vault.storage.models import Anchor, Checkpoint

if TYPE_CHECKING:
    from vault.anchoring.chain import Chain


@dataclass(frozen=True)
class AnchorCheck:
    """What ``verify`` needs to consult the chain: a reader per contract address, and the configured contract."""

    chain_for: Callable[[str], object] | None = None
    configured: tuple[str, int] | None = None
    origin: str | None = None


@dataclass(frozen=True)
class AnchorReport:
    anchors: int  # recorded anchors checked
    on_chain: bool  # whether the chain itself was consulted
    chain_only: int = 0  # anchors found on chain that had no local record (all matched the ledger)


def _check_local(session: Session, anchor: AnchorView, ledger_size: int) -> None:
    if anchor.tree_size > ledger_size:
        raise LedgerIntegrityError(
            f"The ledger holds {ledger_size} entries, fewer than the {anchor.label}: entries were removed after "
            "anchoring."
        )
    actual = ledger.root(session, anchor.tree_size)
    if actual.hex() != anchor.root_hash:
        raise LedgerIntegrityError(
            f"The local ledger contradicts the {anchor.label}: its root at that size is {actual.hex()}, the anchored "
            f"root is {anchor.root_hash}."
        )
    _check_checkpoint(session, anchor.tree_size, bytes.fromhex(anchor.root_hash), anchor.label)


def _check_checkpoint(session: Session, size: int, root: bytes, label: str) -> None:
    roots = {bytes(r) for r in session.scalars(select(Checkpoint.root).where(Checkpoint.tree_size == size))}
    if not roots:
        raise LedgerIntegrityError(f"No local checkpoint of size {size} exists for the {label}.")
    if root not in roots:
        raise LedgerIntegrityError(f"The local checkpoint of size {size} has a different root than the {label}.")


def _check_consistency(session: Session, older: AnchorView, newer: AnchorView) -> None:
    if older.tree_size == newer.tree_size:
        if older.root_hash != newer.root_hash:
            raise LedgerIntegrityError(f"The {older.label} and the {newer.label} anchor different roots for one size.")
        return
    path = merkle.consistency_proof(older.tree_size, newer.tree_size, ledger.subtree_hasher(session))
    try:
        merkle.verify_consistency(
            older.tree_size, newer.tree_size, bytes.fromhex(older.root_hash), bytes.fromhex(newer.root_hash), path
        )
    except ProofError as exc:
        raise LedgerIntegrityError(f"The {newer.label} is not consistent with the {older.label}: {exc}.") from None


def _check_on_chain(
    session: Session,
    chain: Chain,
    anchors: list[AnchorView],
    ledger_size: int,
    *,
    origins: set[str],
    from_block: int,
    recorded: set[tuple[str, int]],
) -> int:
    """Anchors of one contract against that contract; returns the anchors found only on chain."""
    chain_id = chain.chain_id()
    if not chain.has_code():
        what = f"the {anchors[0].label} is no longer on chain" if anchors else "nothing anchored there can be checked"
        raise LedgerIntegrityError(f"The node on chain {chain_id} has no contract at {chain.address}: {what}.")
    for anchor in anchors:
        if anchor.chain_id != chain_id:
            raise LedgerIntegrityError(f"Cannot check the {anchor.label}: the configured node is on chain {chain_id}.")
        held = chain.anchor_of(anchor.origin, anchor.tree_size)
        if not held.present:
            raise LedgerIntegrityError(
                f"The {anchor.label} is no longer on chain: the contract holds no root for that size."
            )
        if held.root.hex() != anchor.root_hash:
            raise LedgerIntegrityError(
                f"The chain holds root {held.root.hex()} where the {anchor.label} was recorded with {anchor.root_hash}."
            )
        receipt = chain.receipt(bytes.fromhex(anchor.transaction_hash))
        if receipt is None:
            raise LedgerIntegrityError(
                f"The {anchor.label} is no longer on chain: the node does not know its transaction."
            )
        if bytes(receipt["blockHash"]).hex() != anchor.block_hash:
            raise LedgerIntegrityError(
                f"The {anchor.label} moved to block {receipt['blockNumber']}: the chain was reorganised after it was "
                "recorded."
            )
    chain_only = 0
    for origin in sorted(origins):
        for event in chain.logged(origin, from_block=from_block):
            label = (
                f"on-chain anchor of size {event.tree_size} (chain {chain_id}, contract {chain.address}, "
                f"tx 0x{event.tx_hash.hex()}, block {event.block_number})"
            )
            if event.tree_size > ledger_size:
                raise LedgerIntegrityError(f"The ledger holds {ledger_size} entries, fewer than the {label}.")
            actual = ledger.root(session, event.tree_size)
            if actual != event.root:
                raise LedgerIntegrityError(
                    f"The local ledger contradicts the {label}: its root at that size is {actual.hex()}, the chain "
                    f"holds {event.root.hex()}."
                )
            _check_checkpoint(session, event.tree_size, event.root, label)
            if (origin, event.tree_size) not in recorded:
                chain_only += 1
    return chain_only


def verify_anchors(
    session: Session,
    *,
    ledger_size: int,
    chain_for: Callable[[str], Chain] | None = None,
    configured: tuple[str, int] | None = None,
    origin: str | None = None,
) -> AnchorReport:
    """Check every recorded anchor against the (already verified) ledger, and against the chain when a reader is given.

    ``configured``: the contract anchoring is set up with and its deployment
    block, scanned for our ``origin``'s anchors even when none is recorded.
    """
    anchors = [view(row) for row in session.scalars(select(Anchor).order_by(Anchor.tree_size, Anchor.id))]
    by_origin: dict[str, list[AnchorView]] = {}
    for anchor in anchors:
        _check_local(session, anchor, ledger_size)
        by_origin.setdefault(anchor.origin, []).append(anchor)
    for series in by_origin.values():
        for older, newer in zip(series, series[1:], strict=False):
            _check_consistency(session, older, newer)
    # Where to read each contract's events from: its deployment block when
    # known (the configured contract), else the chain's start, so that an
    # anchor mined before the first recorded one is not missed.
    contracts: dict[str, int] = {anchor.contract: 0 for anchor in anchors}
    if configured is not None:
        address, block = configured
        known = next((c for c in contracts if c.lower() == address.lower()), address)
        contracts[known] = block
    if chain_for is None or not contracts:
        return AnchorReport(anchors=len(anchors), on_chain=False)
    chain_only = 0
    recorded = {(a.origin, a.tree_size) for a in anchors}
    for contract, from_block in sorted(contracts.items()):
        mine = [a for a in anchors if a.contract == contract]
        origins = {a.origin for a in mine} | ({origin} if origin else set())
        chain_only += _check_on_chain(
            session, chain_for(contract), mine, ledger_size, origins=origins, from_block=from_block, recorded=recorded
        )
    return AnchorReport(anchors=len(anchors), on_chain=True, chain_only=chain_only)
