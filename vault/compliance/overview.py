"""What a compliance officer's home and ledger pages summarise: counts and the witnesses' state, no text.

- ``pending_reviews``: how many break-glass declarations wait for review,
  counted without opening any reason (the queue itself,
  ``break_glass_review.queue``, opens them and logs that);
- ``witnesses``: each registered witness and the last checkpoint it
  cosigned (size and time).

Counts name no resident and open nothing sealed, so, like the flags
(``audit_flags.compute``), they are not logged.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vault.consent.authz import require_compliance
from vault.core.caller import Caller
from vault.storage.models import BreakGlass, BreakGlassReview, Checkpoint, Cosignature, WitnessKey


def pending_reviews(session: Session, caller: Caller) -> int:
    """Break-glass declarations nobody has acknowledged yet."""
    require_compliance(caller)
    query = (
        select(func.count())
        .select_from(BreakGlass)
        .outerjoin(BreakGlassReview, BreakGlassReview.break_glass_id == BreakGlass.id)
        .where(BreakGlassReview.break_glass_id.is_(None))
    )
    return int(session.execute(query).scalar_one())


@dataclass(frozen=True)
class WitnessState:
    principal_id: str
    registered_at: datetime
    last_tree_size: int | None  # the largest checkpoint it cosigned; None if none yet
    last_cosigned_at: datetime | None


def witnesses(session: Session, caller: Caller) -> list[WitnessState]:
    """Every registered witness, with the largest checkpoint it cosigned and when."""
    require_compliance(caller)
    found = []
    for key in session.scalars(select(WitnessKey).order_by(WitnessKey.registered_at, WitnessKey.principal_id)):
        last = session.execute(
            select(Checkpoint.tree_size, Cosignature.created_at)
            .join(Checkpoint, Checkpoint.id == Cosignature.checkpoint_id)
            .where(Cosignature.witness_id == key.principal_id)
            .order_by(Checkpoint.tree_size.desc(), Cosignature.created_at.desc())
            .limit(1)
        ).first()
        found.append(
            WitnessState(
                principal_id=key.principal_id,
                registered_at=key.registered_at,
                last_tree_size=last[0] if last else None,
                last_cosigned_at=last[1] if last else None,
            )
        )
    return found
