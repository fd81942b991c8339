"""Who may act for whom: shared authorisation helpers, in one place.

- ``require_resident``: the subject of a request must be a resident; an unknown
  id, a non-resident id and an erased resident's id get the same ``NotFound``.
- ``acts_for``: whether a caller manages a resident's consent, as the resident
  (``"self"``) or as an active delegate (``"delegate"``).
- ``require_compliance``: the audit endpoints are for compliance officers.

Used by consent, records, rights, compliance and verification alike; it imports
only ``core``, ``storage`` and the pure consent policy.
"""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.consent import policy
from vault.consent.access import delegation_facts
from vault.core.caller import Caller
from vault.core.errors import Forbidden, NotFound
from vault.core.ids import is_well_formed_id
from vault.storage.models import Delegation, Principal


def require_resident(session: Session, subject_id: str) -> Principal:
    """The resident ``subject_id``, or the ``NotFound`` an unknown id gets.

    An erased resident is unknown: nothing may name them again (no grant,
    request, declaration or event), and the answer is the unknown id's.
    """
    row = session.get(Principal, subject_id) if is_well_formed_id(subject_id) else None
    if row is None or row.role != "resident" or row.erased_at is not None:
        raise NotFound()
    return row


def acts_for(session: Session, caller: Caller, subject_id: str, now: datetime) -> str | None:
    """``"self"`` or ``"delegate"`` when ``caller`` manages ``subject_id``'s consent."""
    if caller.role != "resident":
        return None
    if caller.id == subject_id:
        return "self"
    rows = session.scalars(
        select(Delegation).where(Delegation.subject_id == subject_id, Delegation.delegate_id == caller.id)
    )
    return "delegate" if any(policy.delegation_active(delegation_facts(d), now) for d in rows) else None


def require_compliance(caller: Caller) -> None:
    if caller.role != "compliance":
        raise Forbidden("Only compliance officers may use the audit endpoints.")
