"""Ledger proofs against the latest anchored checkpoint (``anchored=true`` on the proof endpoints).

A verifier who trusts the chain more than the vault asks for a proof up to
the tree size that was last anchored, instead of naming a size: the answer is
the ordinary RFC 9162 proof for that size, together with the anchor whose root
it must match on chain. Without ``anchored`` these are the ledger's proofs
unchanged; with it, a size given as well is refused (which one would win?),
and so is an entry or a first size the anchor does not cover yet.
"""

from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy.orm import Session

from vault.anchoring.service import AnchorView, latest_anchor
from vault.core.errors import InvalidInput
from vault.ledger import ledger
from vault.ledger.ledger import ConsistencyProof, InclusionProof

P = TypeVar("P", InclusionProof, ConsistencyProof)


@dataclass(frozen=True)
class Proved(Generic[P]):
    """A proof, and the anchor it was made against (None unless ``anchored``)."""

    proof: P
    anchor: AnchorView | None


def _anchor_for(session: Session, given_size: int | None, size_name: str) -> AnchorView:
    if given_size is not None:
        raise InvalidInput(f"Give either {size_name} or anchored=true, not both.")
    return latest_anchor(session)  # NotFound while nothing is anchored


def inclusion(
    session: Session, *, leaf_index: int, tree_size: int | None = None, anchored: bool = False
) -> Proved[InclusionProof]:
    """Inclusion proof of ``leaf_index`` in the tree of ``tree_size`` (or of the latest anchored size)."""
    if not anchored:
        return Proved(ledger.inclusion(session, leaf_index=leaf_index, tree_size=tree_size), None)
    anchor = _anchor_for(session, tree_size, "tree_size")
    if leaf_index >= anchor.tree_size:
        raise InvalidInput(f"Entry {leaf_index} is not covered by the latest anchor yet (size {anchor.tree_size}).")
    return Proved(ledger.inclusion(session, leaf_index=leaf_index, tree_size=anchor.tree_size), anchor)


def consistency(
    session: Session, *, first: int, second: int | None = None, anchored: bool = False
) -> Proved[ConsistencyProof]:
    """Consistency proof from ``first`` to ``second`` (or to the latest anchored size)."""
    if not anchored:
        return Proved(ledger.consistency(session, first=first, second=second), None)
    anchor = _anchor_for(session, second, "second")
    if first > anchor.tree_size:
        raise InvalidInput(f"first must be at most the latest anchored size, {anchor.tree_size}.")
    return Proved(ledger.consistency(session, first=first, second=anchor.tree_size), anchor)
