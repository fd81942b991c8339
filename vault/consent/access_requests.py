"""Access requests: a clinic or landlord asks, the resident (or delegate) decides.

Approving creates the grant the request describes (the resident may narrow
it to some of the requested categories, set another end, within the maximum,
or cap its uses); denying closes the request. The requester's reason is
free text, so it is sealed under the resident's key like a record; showing it
to anyone but the resident and the requester (a delegate, a compliance
officer) appends a ``text.opened`` event in the same transaction
(``openings.log_opened``).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from vault.consent import consent, policy
from vault.consent.authz import acts_for, require_resident
from vault.consent.openings import Opened, log_opened
from vault.core.bounds import MAX_PAGE, check_window
from vault.core.caller import Caller
from vault.core.config import ConsentLimits
from vault.core.content import check_text
from vault.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from vault.core.ids import is_well_formed_id, new_id
from vault.core.vocabulary import category_matches, check_purpose
from vault.keys.keys import KeyStore, open_text, seal_text
from vault.ledger.events import DomainEvent, emit
from vault.storage.models import AccessRequest

REQUESTER_ROLES = ("clinic", "landlord", "agency")
STATUSES = ("pending", "approved", "denied")
MAX_REASON_LENGTH = 1000
REASON_KIND = "access-request-reason"


@dataclass(frozen=True)
class RequestView:
    id: str
    subject_id: str
    requester_id: str
    categories: tuple[str, ...]
    purpose: str
    actions: tuple[str, ...]
    reason: str
    expires_at: datetime | None
    status: str
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    grant_id: str | None


def _shown(session: Session, caller: Caller, rows: list[AccessRequest], now: datetime) -> None:
    """Log the reasons of ``rows`` as opened by ``caller`` (one event per resident; none for the resident or author)."""
    opened = (Opened(subject_id=r.subject_id, what=REASON_KIND, object_id=r.id, author_id=r.requester_id) for r in rows)
    log_opened(session, caller, opened, now=now)


def _view(keys: KeyStore, session: Session, row: AccessRequest) -> RequestView:
    return RequestView(
        id=row.id,
        subject_id=row.subject_id,
        requester_id=row.requester_id,
        categories=tuple(row.categories.split()),
        purpose=row.purpose,
        actions=tuple(row.actions.split()),
        reason=open_text(
            keys, session, kind=REASON_KIND, object_id=row.id, subject_id=row.subject_id, sealed=row.reason_sealed
        ),
        expires_at=row.expires_at,
        status=row.status,
        created_at=row.created_at,
        decided_at=row.decided_at,
        decided_by=row.decided_by,
        grant_id=row.grant_id,
    )


def create_request(
    session: Session,
    keys: KeyStore,
    caller: Caller,
    *,
    subject_id: str,
    categories: list[str],
    purpose: str,
    reason: str,
    actions: list[str] | None = None,
    expires_at: datetime | None = None,
    limits: ConsentLimits,
    now: datetime,
    share_code_id: str | None = None,
) -> RequestView:
    """Ask ``subject_id`` for access; ``share_code_id`` names the share code that named the resident, if one did."""
    if caller.role not in REQUESTER_ROLES:
        raise Forbidden("Only clinics, landlords and agencies request access.")
    cats = consent.check_categories(categories)
    acts = consent.check_actions(actions or [policy.READ])
    purpose = check_purpose(purpose)
    reason = check_text(reason, what="A reason", max_length=MAX_REASON_LENGTH)
    if not reason:
        raise InvalidInput("Give the resident a reason for the request.")
    if expires_at is not None:
        check_window(now, expires_at, now=now, max_days=limits.max_grant_days, what="The requested access")
    require_resident(session, subject_id)  # after the input checks, which say nothing about the target
    row = AccessRequest(
        id=new_id("q"),
        subject_id=subject_id,
        requester_id=caller.id,
        categories=" ".join(cats),
        purpose=purpose,
        actions=" ".join(acts),
        reason_sealed=b"",
        expires_at=expires_at,
        status="pending",
        created_at=now,
    )
    row.reason_sealed = seal_text(keys, session, kind=REASON_KIND, object_id=row.id, subject_id=subject_id, text=reason)
    session.add(row)
    emit(
        session,
        DomainEvent(
            kind="access-request.created",
            occurred_at=now,
            actor_id=caller.id,
            subject_id=subject_id,
            data={
                "request_id": row.id,
                "categories": list(cats),
                "purpose": purpose,
                "actions": list(acts),
                "expires_at": expires_at,
                **({"share_code_id": share_code_id} if share_code_id is not None else {}),
            },
        ),
    )
    session.flush()
    return _view(keys, session, row)


def _visible(session: Session, caller: Caller, row: AccessRequest | None, now: datetime) -> bool:
    if row is None:
        return False
    if caller.role == "compliance" or caller.id in (row.subject_id, row.requester_id):
        return True
    return acts_for(session, caller, row.subject_id, now) == "delegate"


def _load(session: Session, caller: Caller, request_id: str, now: datetime, *, lock: bool = False) -> AccessRequest:
    row = session.get(AccessRequest, request_id, with_for_update=lock) if is_well_formed_id(request_id) else None
    if row is None or not _visible(session, caller, row, now):
        raise NotFound()
    return row


def get_request(session: Session, keys: KeyStore, caller: Caller, request_id: str, *, now: datetime) -> RequestView:
    row = _load(session, caller, request_id, now)
    view = _view(keys, session, row)
    _shown(session, caller, [row], now)
    return view


def _decidable(session: Session, caller: Caller, request_id: str, now: datetime) -> AccessRequest:
    row = _load(session, caller, request_id, now, lock=True)
    if acts_for(session, caller, row.subject_id, now) is None:
        raise Forbidden("Only the resident or their active delegate decides on this request.")
    if row.status != "pending":
        raise Conflict(f"The request has already been {row.status}.")
    return row


def narrowed(requested: list[str], chosen: list[str] | None) -> list[str]:
    """The categories an approval grants: all those requested, or ``chosen``, each within one requested.

    A chosen category is a requested one, or a category of a requested family
    (``health.allergies`` of ``health.*``); nothing wider than the request.
    """
    if chosen is None:
        return requested
    checked = consent.check_categories(chosen)
    for category in checked:
        if category not in requested and not any(category_matches(p, category) for p in requested):
            raise InvalidInput("Approve only categories the request asked for.")
    return list(checked)


def approve_request(
    session: Session,
    keys: KeyStore,
    caller: Caller,
    request_id: str,
    *,
    categories: list[str] | None = None,
    expires_at: datetime | None = None,
    max_uses: int | None = None,
    limits: ConsentLimits,
    now: datetime,
) -> RequestView:
    """Approve a pending request: creates the grant it asks for, or a narrower one (``categories``)."""
    row = _decidable(session, caller, request_id, now)
    granted = narrowed(row.categories.split(), categories)
    end = expires_at or row.expires_at or now + timedelta(days=limits.default_grant_days)
    grant = consent.create_grant(
        session,
        caller,
        subject_id=row.subject_id,
        grantee_id=row.requester_id,
        categories=granted,
        purpose=row.purpose,
        actions=row.actions.split(),
        expires_at=end,
        max_uses=max_uses,
        limits=limits,
        now=now,
        request_id=row.id,
    )
    row.status, row.decided_at, row.decided_by, row.grant_id = "approved", now, caller.id, grant.id
    emit(
        session,
        DomainEvent(
            kind="access-request.approved",
            occurred_at=now,
            actor_id=caller.id,
            subject_id=row.subject_id,
            data={"request_id": row.id, "grant_id": grant.id, "requester_id": row.requester_id},
        ),
    )
    _shown(session, caller, [row], now)
    session.flush()
    return _view(keys, session, row)


def deny_request(session: Session, keys: KeyStore, caller: Caller, request_id: str, *, now: datetime) -> RequestView:
    row = _decidable(session, caller, request_id, now)
    row.status, row.decided_at, row.decided_by = "denied", now, caller.id
    emit(
        session,
        DomainEvent(
            kind="access-request.denied",
            occurred_at=now,
            actor_id=caller.id,
            subject_id=row.subject_id,
            data={"request_id": row.id, "requester_id": row.requester_id},
        ),
    )
    _shown(session, caller, [row], now)
    session.flush()
    return _view(keys, session, row)


def list_requests(
    session: Session,
    keys: KeyStore,
    caller: Caller,
    *,
    subject_id: str | None = None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
    now: datetime,
) -> tuple[list[RequestView], int]:
    """Requests to the caller (and those they manage) or by the caller, newest first."""
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"Unknown status {status!r}; expected one of: {', '.join(STATUSES)}.")
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise InvalidInput(f"limit must be 1 to {MAX_PAGE} and offset at least 0.")
    conditions = []
    if caller.role != "compliance":
        delegated = consent.managed_subjects(session, caller, now)
        conditions.append(
            or_(
                AccessRequest.subject_id == caller.id,
                AccessRequest.requester_id == caller.id,
                AccessRequest.subject_id.in_(delegated),
            )
        )
    if subject_id is not None:
        conditions.append(AccessRequest.subject_id == subject_id)
    if status is not None:
        conditions.append(AccessRequest.status == status)
    total = session.execute(select(func.count()).select_from(AccessRequest).where(*conditions)).scalar_one()
    rows = list(
        session.scalars(
            select(AccessRequest)
            .where(*conditions)
            .order_by(AccessRequest.created_at.desc(), AccessRequest.id)
            .limit(limit)
            .offset(offset)
        )
    )
    views = [_view(keys, session, row) for row in rows]
    _shown(session, caller, rows, now)
    return views, total
