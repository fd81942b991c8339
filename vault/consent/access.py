"""Enforcement: gather the facts, ask the decision point, count the use, leave a trace.

Every path that touches a resident's records goes through ``authorize`` (one
record) or ``visible_categories`` and ``record_listing`` (listings), so no
endpoint can forget a check. Both emit an ``access.permitted`` or
``access.refused`` event. A refusal
whose reason would disclose something to a stranger (``no-grant``,
``wrong-category``) is raised as ``NotFound``, the same answer as for an id that
does not exist; other refusals are ``ConsentDenied`` with their reason code.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, literal, null, select, union_all, update
from sqlalchemy.orm import Session

from vault.consent import policy
from vault.core.caller import Caller
from vault.core.errors import ConsentDenied, InvalidInput, NotFound, VaultError
from vault.core.vocabulary import CATEGORIES, check_purpose
from vault.ledger.events import DomainEvent, emit
from vault.ledger.ledger import Receipt
from vault.storage.models import BreakGlass, Delegation, Grant

MAX_CONSUME_ATTEMPTS = 5


@dataclass(frozen=True)
class Facts:
    grants: tuple[policy.GrantFacts, ...]
    delegations: tuple[policy.DelegationFacts, ...]
    break_glass: tuple[policy.BreakGlassFacts, ...]

    @property
    def empty(self) -> bool:
        return not (self.grants or self.delegations or self.break_glass)


def grant_facts(row: Any, *, grantee_id: str | None = None) -> policy.GrantFacts:
    """The decision point's view of a grant: an ORM ``Grant``, or a row of ``_FACTS`` (which names the grantee)."""
    return policy.GrantFacts(
        id=row.id,
        subject_id=row.subject_id,
        grantee_id=row.grantee_id if grantee_id is None else grantee_id,
        categories=tuple(row.categories.split()),
        purpose=row.purpose,
        actions=tuple(row.actions.split()),
        valid_from=row.valid_from,
        expires_at=row.expires_at,
        max_uses=row.max_uses,
        uses=row.uses,
        revoked=row.revoked_at is not None,
        created_by=row.created_by,
    )


def delegation_facts(row: Any, *, delegate_id: str | None = None) -> policy.DelegationFacts:
    """The decision point's view of a delegation: an ORM ``Delegation``, or a row of ``_FACTS``."""
    return policy.DelegationFacts(
        id=row.id,
        subject_id=row.subject_id,
        delegate_id=row.delegate_id if delegate_id is None else delegate_id,
        valid_from=row.valid_from,
        expires_at=row.expires_at,
        revoked=row.revoked_at is not None,
    )


NO_FACTS = Facts(grants=(), delegations=(), break_glass=())


_grants, _delegations, _declarations = Grant.__table__.c, Delegation.__table__.c, BreakGlass.__table__.c
_KIND_GRANT, _KIND_DELEGATION, _KIND_BREAK_GLASS = "g", "d", "b"


def _nothing(column: Any) -> Any:
    """A NULL standing for ``column`` in a branch whose table has no such column."""
    return null().label(column.name)


# Grants, delegations and break-glass declarations of one (subject, actor) pair in one
# round trip: UNION ALL of the three lookups, each on its table's index, built once. The
# grants branch comes first, so its column types (UTC datetimes) read every branch's values.
_FACTS = union_all(
    select(
        literal(_KIND_GRANT).label("kind"),
        _grants.id,
        _grants.subject_id,
        _grants.grantee_id.label("actor_id"),
        _grants.categories,
        _grants.purpose,
        _grants.actions,
        _grants.valid_from,
        _grants.expires_at,
        _grants.max_uses,
        _grants.uses,
        _grants.revoked_at,
        _grants.created_by,
    ).where(_grants.subject_id == bindparam("subject_id"), _grants.grantee_id == bindparam("actor_id")),
    select(
        literal(_KIND_DELEGATION),
        _delegations.id,
        _delegations.subject_id,
        _delegations.delegate_id,
        _nothing(_grants.categories),
        _nothing(_grants.purpose),
        _nothing(_grants.actions),
        _delegations.valid_from,
        _delegations.expires_at,
        _nothing(_grants.max_uses),
        _nothing(_grants.uses),
        _delegations.revoked_at,
        _nothing(_grants.created_by),
    ).where(_delegations.subject_id == bindparam("subject_id"), _delegations.delegate_id == bindparam("actor_id")),
    select(
        literal(_KIND_BREAK_GLASS),
        _declarations.id,
        _declarations.subject_id,
        _declarations.clinic_id,
        _nothing(_grants.categories),
        _nothing(_grants.purpose),
        _nothing(_grants.actions),
        _declarations.declared_at,
        _declarations.expires_at,
        _nothing(_grants.max_uses),
        _nothing(_grants.uses),
        _nothing(_grants.revoked_at),
        _nothing(_grants.created_by),
    ).where(_declarations.subject_id == bindparam("subject_id"), _declarations.clinic_id == bindparam("actor_id")),
)


def load_facts(session: Session, *, subject_id: str, actor_id: str, actor_role: str) -> Facts:
    """Everything that could let ``actor_id`` reach ``subject_id``'s records, in one query.

    The resident on their own records needs none (the query saved per read).
    """
    if actor_role == "resident" and actor_id == subject_id:
        return NO_FACTS
    grants: list[policy.GrantFacts] = []
    delegations: list[policy.DelegationFacts] = []
    declarations: list[policy.BreakGlassFacts] = []
    for row in session.connection().execute(_FACTS, {"subject_id": subject_id, "actor_id": actor_id}):
        if row.kind == _KIND_GRANT:
            grants.append(grant_facts(row, grantee_id=row.actor_id))
        elif row.kind == _KIND_DELEGATION:
            delegations.append(delegation_facts(row, delegate_id=row.actor_id))
        else:
            declarations.append(
                policy.BreakGlassFacts(
                    id=row.id,
                    subject_id=row.subject_id,
                    clinic_id=row.actor_id,
                    declared_at=row.valid_from,
                    expires_at=row.expires_at,
                )
            )
    return Facts(grants=tuple(grants), delegations=tuple(delegations), break_glass=tuple(declarations))


_STATE_PURPOSE = (
    "State the purpose of this access (purpose=...); only residents acting on their own records may omit it."
)


def check_stated_purpose(caller: Caller, purpose: str | None) -> None:
    """Check a stated purpose; callers that can never be the resident must state one.

    This check does not depend on the target, so it tells nothing about it. A
    resident who omits the purpose on someone else's records is answered after
    the decision (see ``refusal``): a stranger gets the same 404 as for an
    unknown id, a delegate or grantee is asked to state the purpose.
    """
    if purpose is not None:
        check_purpose(purpose)
    elif caller.role != "resident":
        raise InvalidInput(_STATE_PURPOSE)


def _event(kind: str, caller: Caller, query: policy.AccessQuery, now: datetime, extra: dict) -> DomainEvent:
    return DomainEvent(
        kind=kind,
        occurred_at=now,
        actor_id=caller.id,
        subject_id=query.subject_id,
        data={
            "action": query.action,
            "category": query.category,
            "purpose": query.purpose,
            "actor_role": caller.role,
            **extra,
        },
    )


def permitted_event(
    caller: Caller, query: policy.AccessQuery, permit: policy.Permit, now: datetime, **extra
) -> DomainEvent:
    basis = {
        "basis": permit.basis,
        "grant_id": permit.grant_id,
        "delegation_id": permit.delegation_id,
        "break_glass_id": permit.break_glass_id,
        "flagged": permit.flagged,
    }
    return _event("access.permitted", caller, query, now, {**basis, **extra})


def refusal(caller: Caller, query: policy.AccessQuery, denial: ConsentDenied, now: datetime, **extra) -> VaultError:
    if denial.reason in policy.UNDISCLOSED_REASONS:
        error: VaultError = NotFound()
    elif query.purpose is None:
        return InvalidInput(_STATE_PURPOSE)  # a malformed request, not a decision: no event
    else:
        error = denial
    return error.with_events(_event("access.refused", caller, query, now, {"reason": denial.reason, **extra}))


def unknown_target(
    caller: Caller, *, action: str, purpose: str | None, now: datetime, category: str | None = None
) -> NotFound:
    """The refusal of an id that names nothing: the same ``NotFound`` as a foreign id, and the same trace.

    A refused access to a foreign record leaves an ``access.refused`` event, so
    one naming nothing must leave one too, or the ledger's size would tell a
    prober which ids exist. The event names no subject and no id: the id may
    be a guess, or the record of an erased resident, who must never appear in
    a new event (docs/consent.md, "Refusals of unknown ids").
    """
    return cast(
        NotFound,
        NotFound().with_events(
            DomainEvent(
                kind="access.refused",
                occurred_at=now,
                actor_id=caller.id,
                subject_id=None,
                data={
                    "action": action,
                    "category": category,
                    "purpose": purpose,
                    "actor_role": caller.role,
                    "reason": policy.NOT_FOUND,
                },
            )
        ),
    )


def _consume(session: Session, grant_id: str, now: datetime) -> bool:
    """Count one use of a grant, atomically re-checking that it is still live.

    The conditional UPDATE locks the grant's row, so a revocation committed
    first makes it match nothing, and concurrent uses of a ``max_uses`` grant
    are counted one at a time: exactly ``max_uses`` of them succeed.
    """
    result = session.connection().execute(_CONSUME, {"grant_id": grant_id, "now": now})
    return result.scalar() is not None


# The use count as one Core statement on the table, built once (no ORM instance is synchronised:
# the facts are read as rows, and a loaded Grant's ``uses`` was never kept in step by this UPDATE).
_CONSUME = (
    update(cast(Table, Grant.__table__))
    .where(
        _grants.id == bindparam("grant_id"),
        _grants.revoked_at.is_(None),
        _grants.valid_from <= bindparam("now", type_=_grants.valid_from.type),
        _grants.expires_at > bindparam("now", type_=_grants.expires_at.type),
        (_grants.max_uses.is_(None)) | (_grants.uses < _grants.max_uses),
    )
    .values(uses=_grants.uses + 1)
    .returning(_grants.uses)
)


@dataclass(frozen=True)
class Authorized:
    permit: policy.Permit
    receipt: Receipt  # where the access.permitted event sits in the ledger


def authorize(
    session: Session,
    caller: Caller,
    *,
    subject_id: str,
    category: str,
    purpose: str | None,
    action: str,
    now: datetime,
    **event_data,
) -> Authorized:
    """Permit one access to one record (or raise), count it, and commit its event to the ledger."""
    permit = decide_and_count(
        session, caller, subject_id=subject_id, category=category, purpose=purpose, action=action, now=now, **event_data
    )
    query = _query(caller, subject_id, category, purpose, action)
    receipt = emit(session, permitted_event(caller, query, permit, now, **event_data))
    return Authorized(permit=permit, receipt=receipt)


def decide_and_count(
    session: Session,
    caller: Caller,
    *,
    subject_id: str,
    category: str,
    purpose: str | None,
    action: str,
    now: datetime,
    **event_data,
) -> policy.Permit:
    """The decision and the use count of ``authorize``, without its ``access.permitted`` event.

    For a caller that records the permitted access in an event of its own (an
    attestation, vault/attestations): a refusal is raised exactly as for a
    read, with its ``access.refused`` event (``event_data`` goes on it).
    """
    check_stated_purpose(caller, purpose)
    query = _query(caller, subject_id, category, purpose, action)
    for _ in range(MAX_CONSUME_ATTEMPTS):
        facts = load_facts(session, subject_id=subject_id, actor_id=caller.id, actor_role=caller.role)
        try:
            permit = policy.decide(
                grants=facts.grants, delegations=facts.delegations, break_glass=facts.break_glass, query=query, now=now
            )
        except ConsentDenied as denial:
            raise refusal(caller, query, denial, now, **event_data) from None
        if permit.grant_id is None or _consume(session, permit.grant_id, now):
            return permit
        # The grant changed under us (revoked or used up concurrently): decide again
        # on fresh facts, which refuses with the true reason or finds another grant.
        session.expire_all()
    raise refusal(caller, query, policy.denied(policy.USED_UP), now, **event_data)


# When nothing at all is visible, the refusal names the most specific reason.
_REASON_PRECEDENCE = (
    policy.USED_UP,
    policy.EXPIRED,
    policy.NOT_YET_VALID,
    policy.REVOKED,
    policy.WRONG_PURPOSE,
    policy.WRONG_ACTION,
    policy.WRONG_CATEGORY,
    policy.NO_GRANT,
)


@dataclass(frozen=True)
class Visible:
    """What a caller may list of a resident's records: each readable category with the basis that permits it."""

    subject_id: str
    purpose: str | None
    permits: tuple[tuple[str, policy.Permit], ...]

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(category for category, _ in self.permits)


def _query(caller: Caller, subject_id: str, category: str, purpose: str | None, action: str) -> policy.AccessQuery:
    """What ``caller`` asks of the decision point: ``action`` on ``subject_id``'s ``category`` for ``purpose``."""
    return policy.AccessQuery(
        subject_id=subject_id,
        actor_id=caller.id,
        actor_role=caller.role,
        category=category,
        purpose=purpose,
        action=action,
    )


def _list_query(caller: Caller, subject_id: str, purpose: str | None) -> policy.AccessQuery:
    return _query(caller, subject_id, "*", purpose, "list")


def visible_categories(
    session: Session, caller: Caller, *, subject_id: str, purpose: str | None, now: datetime
) -> Visible:
    """The categories of ``subject_id``'s records that ``caller`` may read now, or the refusal (with its event).

    The listing itself is recorded by ``record_listing`` once the caller knows
    what it lists.
    """
    check_stated_purpose(caller, purpose)
    facts = load_facts(session, subject_id=subject_id, actor_id=caller.id, actor_role=caller.role)
    permits, reasons = [], set()
    for category in CATEGORIES:
        query = _query(caller, subject_id, category, purpose, policy.READ)
        try:
            permit = policy.decide(
                grants=facts.grants, delegations=facts.delegations, break_glass=facts.break_glass, query=query, now=now
            )
            permits.append((category, permit))
        except ConsentDenied as denial:
            reasons.add(denial.reason)
    if not permits:
        reason = next(r for r in _REASON_PRECEDENCE if r in reasons)
        raise refusal(caller, _list_query(caller, subject_id, purpose), policy.denied(reason), now)
    return Visible(subject_id=subject_id, purpose=purpose, permits=tuple(permits))


def record_listing(
    session: Session, caller: Caller, visible: Visible, *, listed: Mapping[str, int], now: datetime
) -> Receipt:
    """Leave the ``access.permitted`` event (action ``list``) of a listing of record titles.

    Titles are health and tenancy facts, so a listing is a disclosure: the
    event names, for every category that had records listed (``listed``:
    category -> how many), the count and the basis that permitted it (the
    grant, delegation or declaration), which the accounting of disclosures
    and the access log show. It counts no use of a grant: ``max_uses`` caps
    the reads of contents (docs/consent.md, "Listings").
    """
    disclosed = [
        {
            "category": category,
            "records": listed[category],
            "basis": permit.basis,
            "grant_id": permit.grant_id,
            "delegation_id": permit.delegation_id,
            "break_glass_id": permit.break_glass_id,
        }
        for category, permit in visible.permits
        if listed.get(category)
    ]
    query = _list_query(caller, visible.subject_id, visible.purpose)
    data = {
        "categories": list(visible.categories),
        "disclosed": disclosed,
        "flagged": any(d["basis"] == "break-glass" for d in disclosed),
    }
    return emit(session, _event("access.permitted", caller, query, now, data))
