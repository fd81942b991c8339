"""The resident pages, under ``/resident``: who saw what, requests, sharing, records, delegates, rights.

Each page calls the vault services the matching JSON API view calls, with the
same checks (the page's comment names the view), inside the same
``writing()`` / ``reading()`` transactions; the pages add no check of their
own that the services lack and skip none they make.

Acting as a delegate: a resident who is an active delegate for someone
chooses, on the home page, whose data to act on. The choice travels as
``?for=<subject_id>`` on links and form actions (never a cookie) and is
passed to the services as the subject id, exactly as the API takes it in its
URLs; the services check the delegation. A ``for`` naming anyone the caller
does not act for gets the 404 of an unknown page. Actions the services keep
for the resident themself (adding records, appointing delegates, the export,
the audit bundle, erasure) are not offered to a delegate.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import Blueprint, Response, g, request
from sqlalchemy import select
from werkzeug.exceptions import NotFound as HTTPNotFound
from werkzeug.wrappers import Response as BaseResponse

from api.context import Call, current_vault, reading, writing
from api.web.pages import done, render
from api.web.resident_chart import bar_chart
from api.web.resident_render import readable
from api.web.session import caller, clear_cookie, page
from vault.consent import access_requests, break_glass, consent, delegations
from vault.consent.authz import acts_for, require_resident
from vault.core.bounds import MAX_PAGE
from vault.core.errors import Conflict, InvalidInput, NotFound
from vault.core.vocabulary import CATEGORIES, CATEGORY_LABELS, PURPOSES, category_matches
from vault.identity import logins, principals
from vault.records import records
from vault.rights import erasure, export, trail
from vault.storage.models import Record
from vault.verification import bundles

bp = Blueprint("resident", __name__, url_prefix="/resident")
ROLES = ("resident",)

HISTORY_PAGE = 25
CHART_DAYS = 30
EXPIRING_DAYS = 7
ERASE_PHRASE = "erase my records"
MAX_FIELD = 200
MAX_NOTE = 20_000

PURPOSE_LABELS = {
    "treatment": "Treatment",
    "payment": "Payment",
    "operations": "Health care operations",
    "research": "Research",
    "emergency": "Emergency",
    "tenancy-screening": "Tenancy screening",
    "tenancy-management": "Tenancy management",
    "legal": "Legal",
}
BASIS_LABELS = {
    "owner": "You",
    "self": "You",
    "grant": "Your consent",
    "delegation": "Your delegate",
    "break-glass": "Emergency access",
}
OUTCOME_LABELS = {
    "permitted": "Allowed",
    "refused": "Refused",
    "declared": "Emergency declared",
    "reviewed": "Reviewed",
}
ACTION_LABELS = {
    "read": "Read",
    "list": "Listed record titles",
    "write": "Wrote",
    "open-text": "Was shown a note about you",
    "search": "Searched your trail",
    "attest": "Asked a yes/no question about",
}
ROLE_LABELS = {
    "resident": "Resident",
    "clinic": "Clinic",
    "landlord": "Landlord",
    "compliance": "Compliance officer",
    "admin": "Administrator",
    "agency": "Agency",
    "unknown": "Gone",
}
GRANT_STATUS_LABELS = {
    "active": "Active",
    "not-yet-valid": "Not yet valid",
    "expired": "Expired",
    "used-up": "Used up",
    "revoked": "Revoked",
}


@dataclass(frozen=True)
class Acting:
    """Whose data a page is about: the resident themself, or someone they are an active delegate for."""

    subject_id: str
    name: str | None  # the represented resident's name; None for oneself
    args: dict[str, str]  # what links and form actions carry: {"for": id}, or nothing

    @property
    def delegate(self) -> bool:
        return self.name is not None


def _acting(call: Call) -> Acting:
    me = caller()
    wanted = (request.args.get("for") or "").strip()[:MAX_FIELD]
    if not wanted or wanted == me.id:
        return Acting(subject_id=me.id, name=None, args={})
    try:
        require_resident(call.session, wanted)
    except NotFound:
        raise HTTPNotFound() from None
    if acts_for(call.session, me, wanted, call.now) != "delegate":
        raise HTTPNotFound()
    name = principals.get_principal(call.session, call.keys, wanted).name
    return Acting(subject_id=wanted, name=name, args={"for": wanted})


def _self_only(call: Call) -> Acting:
    """Pages and actions only the resident has: a delegate's ``for`` gets a 404."""
    acting = _acting(call)
    if acting.delegate:
        raise HTTPNotFound()
    return acting


def _names(call: Call, ids: Iterable[str]) -> dict[str, str]:
    found = {}
    for principal_id in set(ids):
        try:
            found[principal_id] = principals.get_principal(call.session, call.keys, principal_id).name
        except NotFound:
            found[principal_id] = "(gone)"
    return found


def _page(template: str, *, title: str, acting: Acting, status: int = 200, **context: Any) -> tuple[str, int]:
    return render(
        template,
        title=title,
        status=status,
        acting=acting,
        acting_for=acting.name,
        fa=acting.args,
        labels=CATEGORY_LABELS,
        purpose_labels=PURPOSE_LABELS,
        basis_labels=BASIS_LABELS,
        outcome_labels=OUTCOME_LABELS,
        action_labels=ACTION_LABELS,
        role_labels=ROLE_LABELS,
        grant_status_labels=GRANT_STATUS_LABELS,
        **context,
    )


def _parse_day(value: str | None) -> date | None:
    """A ``YYYY-MM-DD`` date field; None when empty; ``ValueError`` when malformed."""
    value = (value or "").strip()
    if not value:
        return None
    if len(value) != 10:
        raise ValueError(value)
    return date.fromisoformat(value)


def _whole_number(value: str | None, *, low: int, high: int) -> int | None:
    """A whole number from ``low`` to ``high`` written in ASCII digits, else None."""
    value = (value or "").strip()
    if not value or len(value) > 19 or not value.isascii() or not value.isdigit():
        return None
    number = int(value)
    return number if low <= number <= high else None


def _end_of(day: date) -> datetime:
    return datetime.combine(day, time(23, 59, 59), UTC)


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(0, 0), UTC)


def _whole_categories(patterns: Iterable[str]) -> list[str]:
    """Each pattern as the exact categories it covers (``health.*`` as every health category), in vocabulary order."""
    wanted = list(patterns)
    return [c for c in CATEGORIES if any(category_matches(p, c) for p in wanted)]


def _category_text(patterns: Iterable[str]) -> str:
    """What a grant covers, in words: "health records", "allergies and adverse reactions records (health.allergies)"."""
    names = []
    for p in patterns:
        if p.endswith(".*"):
            names.append(f"{p[:-2]} records (every category)")
        else:
            names.append(f"{CATEGORY_LABELS.get(p, p).lower()} records ({p})")
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


# --- home --------------------------------------------------------------------------------------


@bp.route("/")
@page(*ROLES)
def home() -> tuple[str, int]:
    """Recent accesses, pending requests, grants about to end, emergency accesses; whom to act for."""
    me = caller()
    # writing(): requests' and declarations' reasons shown to a delegate are logged (as the API's views do).
    with writing() as call:
        acting = _acting(call)
        subject = acting.subject_id
        recent = trail.access_log(call.session, call.keys, me, subject_id=subject, limit=5, now=call.now)
        pending, pending_total = access_requests.list_requests(
            call.session, call.keys, me, subject_id=subject, status="pending", limit=20, now=call.now
        )
        active, _ = consent.list_grants(
            call.session, me, subject_id=subject, status="active", limit=MAX_PAGE, now=call.now
        )
        soon = call.now + timedelta(days=EXPIRING_DAYS)
        expiring = [g for g in active if g.expires_at <= soon]
        declarations = break_glass.list_declarations(call.session, call.keys, me, subject_id=subject, now=call.now)
        held, _ = delegations.list_delegations(call.session, me, limit=MAX_PAGE, now=call.now)
        represented = [d for d in held if d.delegate_id == me.id and d.status == "active"]
        names = _names(
            call,
            [q.requester_id for q in pending]
            + [g.grantee_id for g in expiring]
            + [b.clinic_id for b in declarations]
            + [d.subject_id for d in represented],
        )
    return _page(
        "resident/home.html",
        title="Home",
        acting=acting,
        recent=recent.items,
        pending=pending,
        pending_total=pending_total,
        expiring=expiring,
        declarations=declarations,
        represented=represented,
        names=names,
        now=call.now,
    )


# --- access history ----------------------------------------------------------------------------


@bp.route("/history")
@page(*ROLES)
def history() -> tuple[str, int]:
    """Every access and refusal (GET /api/v1/subjects/{id}/access-log), filtered, paged, with a chart."""
    me = caller()
    errors: dict[str, str] = {}
    try:
        since = _parse_day(request.args.get("since"))
    except ValueError:
        since, errors["since"] = None, "Enter the start date as YYYY-MM-DD."
    try:
        until = _parse_day(request.args.get("until"))
    except ValueError:
        until, errors["until"] = None, "Enter the end date as YYYY-MM-DD."
    if since and until and since > until:
        errors["until"] = "The end date must not be before the start date."
    who = (request.args.get("who") or "").strip()[:MAX_FIELD] or None
    before_arg = request.args.get("before", "")
    before = _whole_number(before_arg, low=0, high=2**62)
    # writing(): naming the records' titles is a listing, recorded like the API's.
    with writing() as call:
        acting = _acting(call)
        subject = acting.subject_id
        actors = trail.log_actors(call.session, call.keys, me, subject_id=subject, now=call.now)
        if who is not None and who not in {a.id for a in actors}:
            errors["who"] = "Choose someone from the list."
        log = None
        if not errors:
            log = trail.access_log(
                call.session,
                call.keys,
                me,
                subject_id=subject,
                limit=HISTORY_PAGE,
                before=before,
                since=_start_of(since) if since else None,
                until=_start_of(until + timedelta(days=1)) if until else None,
                actor_id=who,
                now=call.now,
            )
        days = trail.entries_per_day(call.session, me, subject_id=subject, days=CHART_DAYS, now=call.now)
        titles: dict[str, str | None] = {}
        if log is not None and not acting.delegate and any(line.record_id for line in log.items):
            titles = {
                r.id: r.title
                for r in records.list_records(call.session, call.keys, me, subject_id=subject, now=call.now)
            }
    filters = {
        k: v
        for k, v in {"since": request.args.get("since"), "until": request.args.get("until"), "who": who}.items()
        if v
    }
    chart = bar_chart(days, title=f"Accesses to your data per day, last {CHART_DAYS} days")
    return _page(
        "resident/history.html",
        title="Access history",
        acting=acting,
        status=400 if errors else 200,
        errors=errors,
        log=log,
        actors=actors,
        who=who,
        filters=filters,
        keep={**filters, **acting.args},
        paged=before is not None,
        days=days,
        chart=chart,
        titles=titles,
    )


# --- access requests ---------------------------------------------------------------------------


@bp.route("/requests")
@page(*ROLES)
def requests() -> tuple[str, int]:
    """Pending and past requests (GET /api/v1/access-requests)."""
    me = caller()
    with writing() as call:  # a reason shown to a delegate is logged, as in the API's view
        acting = _acting(call)
        pending, _ = access_requests.list_requests(
            call.session, call.keys, me, subject_id=acting.subject_id, status="pending", limit=MAX_PAGE, now=call.now
        )
        everything, _ = access_requests.list_requests(
            call.session, call.keys, me, subject_id=acting.subject_id, limit=100, now=call.now
        )
        past = [q for q in everything if q.status != "pending"]
        names = _names(call, [q.requester_id for q in pending + past])
    return _page("resident/requests.html", title="Requests", acting=acting, pending=pending, past=past, names=names)


def _options(requested: Iterable[str]) -> list[str]:
    """The categories one may tick when approving: the requested ones, a family as its categories."""
    return _whole_categories(requested)


def _request_page(
    request_id: str, chosen: list[str] | None, *, errors: dict[str, str], status: int = 200, form: dict | None = None
) -> tuple[str, int]:
    me = caller()
    with writing() as call:  # GET /api/v1/access-requests/{id}: a reason shown to a delegate is logged
        acting = _acting(call)
        found = access_requests.get_request(call.session, call.keys, me, request_id, now=call.now)
        if found.subject_id != acting.subject_id:
            raise HTTPNotFound()
        options = _options(found.categories)
        ticked = [c for c in options if chosen is None or c in chosen]
        preview: list[records.RecordMeta] = []
        if found.status == "pending":
            # "What could they see?": the resident's own listing (a delegate states the request's purpose).
            purpose = found.purpose if acting.delegate else None
            try:
                mine = records.list_records(
                    call.session, call.keys, me, subject_id=acting.subject_id, purpose=purpose, now=call.now
                )
            except NotFound:
                mine = []
            preview = [r for r in mine if r.category in ticked]
        names = _names(call, [found.requester_id])
        limits = call.limits
    default_end = (found.expires_at or (call.now + timedelta(days=limits.default_grant_days))).date()
    return _page(
        "resident/request.html",
        title="Access request",
        acting=acting,
        status=status,
        req=found,
        options=options,
        ticked=ticked,
        preview=preview,
        names=names,
        errors=errors,
        form=form or {},
        default_end=default_end,
        max_end=(call.now + timedelta(days=limits.max_grant_days)).date(),
        today=call.now.date(),
    )


@bp.route("/requests/<request_id>")
@page(*ROLES)
def request_detail(request_id: str) -> tuple[str, int]:
    chosen = request.args.getlist("categories") if "preview" in request.args else None
    form = {"expires_on": request.args.get("expires_on", "")[:20], "max_uses": request.args.get("max_uses", "")[:20]}
    return _request_page(request_id, chosen, errors={}, form=form)


@bp.route("/requests/<request_id>/approve", methods=["POST"])
@page(*ROLES)
def approve(request_id: str) -> BaseResponse | tuple[str, int]:
    """POST /api/v1/access-requests/{id}/approve, narrowed to the ticked categories, an end and a use limit."""
    me = caller()
    chosen = [c[:MAX_FIELD] for c in request.form.getlist("categories")][: len(CATEGORIES)]
    form = {"expires_on": request.form.get("expires_on", "")[:20], "max_uses": request.form.get("max_uses", "")[:20]}
    errors: dict[str, str] = {}
    if not chosen:
        errors["categories"] = "Tick at least one category, or deny the request."
    try:
        end = _parse_day(form["expires_on"])
    except ValueError:
        end, errors["expires_on"] = None, "Enter the end date as YYYY-MM-DD."
    max_uses: int | None = None
    if form["max_uses"].strip():
        max_uses = _whole_number(form["max_uses"], low=1, high=1_000_000)
        if max_uses is None:
            errors["max_uses"] = "Enter a whole number from 1 to 1000000, or leave it empty."
    if errors:
        return _request_page(request_id, chosen, errors=errors, status=400, form=form)
    try:
        with writing() as call:
            acting = _acting(call)
            found = access_requests.get_request(call.session, call.keys, me, request_id, now=call.now)
            if found.subject_id != acting.subject_id:
                raise HTTPNotFound()
            options = _options(found.categories)
            # Every option ticked: the request as asked (a family stays a family, covering records added later).
            categories = None if set(options) <= set(chosen) else chosen
            expires_at = None
            if end is not None and (found.expires_at is None or end != found.expires_at.date()):
                expires_at = _end_of(end)
            access_requests.approve_request(
                call.session,
                call.keys,
                me,
                request_id,
                categories=categories,
                expires_at=expires_at,
                max_uses=max_uses,
                limits=call.limits,
                now=call.now,
            )
    except InvalidInput as error:
        return _request_page(request_id, chosen, errors={"form": error.detail}, status=400, form=form)
    return done("web.resident.requests", "approved", **acting.args)


@bp.route("/requests/<request_id>/deny", methods=["POST"])
@page(*ROLES)
def deny(request_id: str) -> BaseResponse:
    """POST /api/v1/access-requests/{id}/deny."""
    me = caller()
    with writing() as call:
        acting = _acting(call)
        found = access_requests.get_request(call.session, call.keys, me, request_id, now=call.now)
        if found.subject_id != acting.subject_id:
            raise HTTPNotFound()
        access_requests.deny_request(call.session, call.keys, me, request_id, now=call.now)
    return done("web.resident.requests", "denied", **acting.args)


# --- sharing (grants) --------------------------------------------------------------------------


def _directory(call: Call, query: str) -> list[principals.PrincipalInfo]:
    """Clinics and landlords, optionally those whose name contains ``query`` (names opened by the service)."""
    found = principals.list_principals(call.session, call.keys, role="clinic") + principals.list_principals(
        call.session, call.keys, role="landlord"
    )
    needle = query.casefold().strip()
    return sorted(
        (p for p in found if not needle or needle in p.name.casefold()), key=lambda p: (p.name.casefold(), p.id)
    )


def _sharing_page(*, errors: dict[str, str], form: dict, status: int = 200) -> tuple[str, int]:
    me = caller()
    query = (request.args.get("q") or "").strip()[:MAX_FIELD]
    with reading() as call:  # GET /api/v1/consents
        acting = _acting(call)
        grants, _ = consent.list_grants(call.session, me, subject_id=acting.subject_id, limit=MAX_PAGE, now=call.now)
        directory = _directory(call, query)
        names = _names(call, [g.grantee_id for g in grants])
        limits = call.limits
    current = [g for g in grants if g.status in ("active", "not-yet-valid")]
    past = [g for g in grants if g.status not in ("active", "not-yet-valid")]
    return _page(
        "resident/sharing.html",
        title="Sharing",
        acting=acting,
        status=status,
        current=current,
        past=past,
        names=names,
        directory=directory,
        query=query,
        errors=errors,
        form=form,
        categories=CATEGORIES,
        families=("health", "tenancy"),
        purposes=PURPOSES,
        default_end=(call.now + timedelta(days=limits.default_grant_days)).date(),
        max_end=(call.now + timedelta(days=limits.max_grant_days)).date(),
        today=call.now.date(),
    )


@bp.route("/sharing")
@page(*ROLES)
def sharing() -> tuple[str, int]:
    return _sharing_page(errors={}, form={})


@bp.route("/sharing", methods=["POST"])
@page(*ROLES)
def create_grant() -> BaseResponse | tuple[str, int]:
    """POST /api/v1/consents: read access for a clinic or landlord."""
    me = caller()
    form: dict[str, Any] = {
        "grantee_id": request.form.get("grantee_id", "")[:MAX_FIELD],
        "categories": [c[:MAX_FIELD] for c in request.form.getlist("categories")][: len(CATEGORIES) + 2],
        "purpose": request.form.get("purpose", "")[:MAX_FIELD],
        "expires_on": request.form.get("expires_on", "")[:20],
        "max_uses": request.form.get("max_uses", "")[:20],
    }
    errors: dict[str, str] = {}
    if not form["grantee_id"]:
        errors["grantee_id"] = "Choose who may see your records."
    if not form["categories"]:
        errors["categories"] = "Tick at least one kind of record."
    if form["purpose"] not in PURPOSES:
        errors["purpose"] = "Choose what they may use your records for."
    try:
        end = _parse_day(form["expires_on"])
        if end is None:
            errors["expires_on"] = "Enter the last day of access."
    except ValueError:
        end, errors["expires_on"] = None, "Enter the last day as YYYY-MM-DD."
    max_uses: int | None = None
    if form["max_uses"].strip():
        max_uses = _whole_number(form["max_uses"], low=1, high=1_000_000)
        if max_uses is None:
            errors["max_uses"] = "Enter a whole number from 1 to 1000000, or leave it empty."
    if errors or end is None:
        return _sharing_page(errors=errors, form=form, status=400)
    try:
        with writing() as call:
            acting = _acting(call)
            grantee = None
            if form["grantee_id"] in {p.id for p in _directory(call, "")}:
                grantee = form["grantee_id"]
            if grantee is None:
                raise InvalidInput("Choose a clinic or landlord from the list.")
            consent.create_grant(
                call.session,
                me,
                subject_id=acting.subject_id,
                grantee_id=grantee,
                categories=form["categories"],
                purpose=form["purpose"],
                actions=["read"],
                expires_at=_end_of(end),
                max_uses=max_uses,
                limits=call.limits,
                now=call.now,
            )
    except InvalidInput as error:
        return _sharing_page(errors={"form": error.detail}, form=form, status=400)
    return done("web.resident.sharing", "granted", **acting.args)


def _own_grant(call: Call, acting: Acting, grant_id: str) -> consent.GrantView:
    found = consent.get_grant(call.session, caller(), grant_id, now=call.now)
    if found.subject_id != acting.subject_id:
        raise HTTPNotFound()
    return found


@bp.route("/sharing/<grant_id>/revoke", methods=["GET", "POST"])
@page(*ROLES)
def revoke(grant_id: str) -> BaseResponse | tuple[str, int]:
    """A confirmation naming what stops, then POST /api/v1/consents/{id}/revoke."""
    me = caller()
    if request.method == "POST":
        with writing() as call:
            acting = _acting(call)
            _own_grant(call, acting, grant_id)
            consent.revoke_grant(call.session, me, grant_id, now=call.now)
        return done("web.resident.sharing", "revoked", **acting.args)
    with reading() as call:
        acting = _acting(call)
        found = _own_grant(call, acting, grant_id)
        names = _names(call, [found.grantee_id])
    return _page(
        "resident/revoke.html",
        title="Stop sharing",
        acting=acting,
        grant=found,
        grantee=names[found.grantee_id],
        what=_category_text(found.categories),
    )


# --- records -----------------------------------------------------------------------------------


def _purpose_arg(acting: Acting) -> str | None:
    """A delegate states a purpose for reading (the service asks it to); the resident needs none."""
    if not acting.delegate:
        return None
    purpose = request.args.get("purpose")
    return purpose if purpose in PURPOSES else None


@bp.route("/records", endpoint="records")
@page(*ROLES)
def records_list() -> tuple[str, int]:
    """GET /api/v1/subjects/{id}/records: titles by category (a listing, recorded in the ledger)."""
    me = caller()
    with writing() as call:
        acting = _acting(call)
        purpose = _purpose_arg(acting)
        found: list[records.RecordMeta] = []
        if not acting.delegate or purpose is not None:
            found = records.list_records(
                call.session, call.keys, me, subject_id=acting.subject_id, purpose=purpose, now=call.now
            )
    by_category: dict[str, list[records.RecordMeta]] = {}
    for item in sorted(found, key=lambda r: (CATEGORIES.index(r.category), (r.title or "").casefold())):
        by_category.setdefault(item.category, []).append(item)
    return _page(
        "resident/records.html",
        title="Records",
        acting=acting,
        by_category=by_category,
        purpose=purpose,
        purposes=PURPOSES,
        ask_purpose=acting.delegate and purpose is None,
    )


@bp.route("/records/<record_id>")
@page(*ROLES)
def record(record_id: str) -> tuple[str, int]:
    """GET /api/v1/records/{id}: the record read (and logged), shown as labelled fields; its versions."""
    me = caller()
    version_arg = request.args.get("version", "")
    version = _whole_number(version_arg, low=1, high=10**8)
    with writing() as call:
        acting = _acting(call)
        purpose = _purpose_arg(acting)
        if acting.delegate and purpose is None:
            raise InvalidInput("Say why you are reading this record: open it from the records page.")
        found = records.read_record(
            call.session, call.keys, me, record_id, purpose=purpose, version=version, now=call.now
        )
        if found.subject_id != acting.subject_id:
            raise HTTPNotFound()
        # How many versions there are: metadata in clear, asked only once the read above was permitted.
        latest = call.session.scalar(select(Record.current_version).where(Record.id == found.id)) or found.version
    return _page(
        "resident/record.html",
        title=found.title or CATEGORY_LABELS.get(found.category, found.category),
        acting=acting,
        rec=found,
        shown=readable(found.content),
        versions=list(range(latest, 0, -1)),
        latest=latest,
        purpose=purpose,
    )


@bp.route("/records/new", methods=["GET", "POST"])
@page(*ROLES)
def new_record() -> BaseResponse | tuple[str, int]:
    """POST /api/v1/subjects/{id}/records: a note, or (advanced) JSON content."""
    me = caller()
    form = {
        "category": request.form.get("category", "health.notes")[:MAX_FIELD],
        "title": request.form.get("title", "")[: MAX_FIELD + 1],
        "note": request.form.get("note", "")[: MAX_NOTE + 1],
        "content_json": request.form.get("content_json", "")[: MAX_NOTE + 1],
        "format": request.form.get("format", "note")[:10],
    }
    if request.method == "GET":
        with reading() as call:
            acting = _self_only(call)
        return _page(
            "resident/record_new.html", title="Add a record", acting=acting, form=form, errors={}, categories=CATEGORIES
        )
    errors: dict[str, str] = {}
    if form["category"] not in CATEGORIES:
        errors["category"] = "Choose a kind of record."
    if not form["title"].strip():
        errors["title"] = "Give the record a title."
    content: Any = None
    if form["format"] == "json":
        try:
            content = json.loads(form["content_json"])
        except ValueError:
            errors["content_json"] = "This is not valid JSON."
        else:
            if not isinstance(content, dict):
                errors["content_json"] = "The content must be a JSON object: { ... }."
    else:
        if not form["note"].strip():
            errors["note"] = "Write the note."
        elif len(form["note"]) > MAX_NOTE:
            errors["note"] = f"A note is at most {MAX_NOTE} characters."
        content = {"type": "note", "text": form["note"]}
    if not errors:
        try:
            with writing() as call:
                _self_only(call)
                made = records.create_record(
                    call.session,
                    call.keys,
                    me,
                    subject_id=me.id,
                    category=form["category"],
                    content=content,
                    title=form["title"].strip(),
                    now=call.now,
                )
            return done("web.resident.record", "record-added", record_id=made.id)
        except InvalidInput as error:
            errors["form"] = error.detail
    with reading() as call:
        acting = _self_only(call)
    return _page(
        "resident/record_new.html",
        title="Add a record",
        acting=acting,
        form=form,
        errors=errors,
        categories=CATEGORIES,
        status=400,
    )


# --- delegates ---------------------------------------------------------------------------------


def _delegates_page(*, errors: dict[str, str], form: dict, status: int = 200) -> tuple[str, int]:
    me = caller()
    with reading() as call:  # GET /api/v1/delegations
        acting = _self_only(call)
        found, _ = delegations.list_delegations(call.session, me, limit=MAX_PAGE, now=call.now)
        names = _names(call, [d.delegate_id for d in found] + [d.subject_id for d in found])
        limits = call.limits
    return _page(
        "resident/delegates.html",
        title="Delegates",
        acting=acting,
        status=status,
        given=[d for d in found if d.subject_id == me.id],
        held=[d for d in found if d.delegate_id == me.id],
        names=names,
        errors=errors,
        form=form,
        default_end=(call.now + timedelta(days=min(365, limits.max_delegation_days))).date(),
        max_end=(call.now + timedelta(days=limits.max_delegation_days)).date(),
        today=call.now.date(),
    )


@bp.route("/delegates")
@page(*ROLES)
def delegates() -> tuple[str, int]:
    return _delegates_page(errors={}, form={})


@bp.route("/delegates", methods=["POST"])
@page(*ROLES)
def appoint() -> BaseResponse | tuple[str, int]:
    """POST /api/v1/delegations: the delegate is named by their login (a resident's)."""
    me = caller()
    form = {"login": request.form.get("login", "")[:MAX_FIELD], "expires_on": request.form.get("expires_on", "")[:20]}
    errors: dict[str, str] = {}
    if not form["login"].strip():
        errors["login"] = "Enter the login of the person you appoint."
    try:
        end = _parse_day(form["expires_on"])
        if end is None:
            errors["expires_on"] = "Enter the last day of the delegation."
    except ValueError:
        end, errors["expires_on"] = None, "Enter the last day as YYYY-MM-DD."
    if errors or end is None:
        return _delegates_page(errors=errors, form=form, status=400)
    try:
        with writing() as call:
            _self_only(call)
            try:
                found = logins.find_principal(call.session, call.keys, form["login"])
            except InvalidInput:
                found = None
            if found is None or found.role != "resident":
                raise InvalidInput("No resident has that login.")
            delegations.create_delegation(
                call.session, me, delegate_id=found.id, expires_at=_end_of(end), limits=call.limits, now=call.now
            )
    except InvalidInput as error:
        return _delegates_page(errors={"login": error.detail}, form=form, status=400)
    return done("web.resident.delegates", "delegate-appointed")


@bp.route("/delegates/<delegation_id>/end", methods=["GET", "POST"])
@page(*ROLES)
def end_delegation(delegation_id: str) -> BaseResponse | tuple[str, int]:
    """A confirmation, then POST /api/v1/delegations/{id}/revoke (the resident, or the delegate stepping down)."""
    me = caller()
    if request.method == "POST":
        with writing() as call:
            _self_only(call)
            delegations.revoke_delegation(call.session, me, delegation_id, now=call.now)
        return done("web.resident.delegates", "delegate-ended")
    with reading() as call:
        acting = _self_only(call)
        found = delegations.get_delegation(call.session, me, delegation_id, now=call.now)
        names = _names(call, [found.subject_id, found.delegate_id])
    return _page(
        "resident/delegate_end.html", title="End a delegation", acting=acting, d=found, names=names, me_id=me.id
    )


# --- my rights ---------------------------------------------------------------------------------


def _rights_page(*, errors: dict[str, str], status: int = 200, message: str | None = None) -> tuple[str, int]:
    me = caller()
    with reading() as call:  # GET /api/v1/subjects/{id}/disclosures
        acting = _acting(call)
        report = trail.disclosures(call.session, call.keys, me, subject_id=acting.subject_id, now=call.now)
    return _page(
        "resident/rights.html",
        title="My rights",
        acting=acting,
        status=status,
        report=report,
        errors=errors,
        message=message,
        phrase=ERASE_PHRASE,
    )


@bp.route("/rights")
@page(*ROLES)
def rights() -> tuple[str, int]:
    return _rights_page(errors={})


@bp.route("/rights/disclosures.csv")
@page(*ROLES)
def disclosures_csv() -> Response:
    """GET /api/v1/subjects/{id}/disclosures?format=csv."""
    me = caller()
    with reading() as call:
        acting = _acting(call)
        report = trail.disclosures(call.session, call.keys, me, subject_id=acting.subject_id, now=call.now)
    return Response(
        trail.disclosures_csv(report),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="disclosures-{acting.subject_id}.csv"'},
    )


@bp.route("/rights/export", methods=["POST"])
@page(*ROLES)
def download_export() -> Response:
    """GET /api/v1/subjects/{id}/export (a post here: it writes the ledger's ``subject.exported``)."""
    me = caller()
    with writing() as call:
        _self_only(call)
        document = export.export(call.session, call.keys, me, subject_id=me.id, now=call.now)
    # Only after the export's ledger event committed does the document leave the server.
    return Response(
        json.dumps(document, ensure_ascii=False),
        mimetype="application/json",
        headers={"Content-Disposition": f'attachment; filename="civicvault-export-{me.id}.json"'},
    )


@bp.route("/rights/audit-bundle", methods=["POST"])
@page(*ROLES)
def download_bundle() -> Response | tuple[str, int]:
    """The resident's own events with inclusion proofs (``civicvault audit export``'s bundle), for offline checking."""
    me = caller()
    try:
        with reading() as call:
            _self_only(call)
            bundle = bundles.export(call.session, subject_id=me.id)
    except NotFound:
        return _rights_page(errors={}, message="No checkpoint has been signed yet: try the audit bundle again later.")
    return Response(
        json.dumps(bundle, ensure_ascii=False, indent=1),
        mimetype="application/json",
        headers={"Content-Disposition": f'attachment; filename="civicvault-audit-bundle-{me.id}.json"'},
    )


@bp.route("/rights/erase", methods=["POST"])
@page(*ROLES)
def erase() -> BaseResponse | tuple[str, int]:
    """POST /api/v1/subjects/{id}/erasure, behind a typed phrase and a ticked box; then signed out."""
    me = caller()
    with reading() as call:
        _self_only(call)
    errors: dict[str, str] = {}
    typed = " ".join(request.form.get("phrase", "")[:MAX_FIELD].split()).casefold()
    if typed != ERASE_PHRASE:
        errors["phrase"] = f"Type “{ERASE_PHRASE}” exactly to confirm."
    if request.form.get("understood") != "yes":
        errors["understood"] = "Tick the box to confirm that you understand."
    if errors:
        return _rights_page(errors=errors, status=400)
    try:
        receipt = erasure.erase(current_vault(), me, me.id)
    except Conflict as error:
        return _rights_page(errors={"phrase": error.detail}, status=409)
    # The session ended with the erasure: the receipt is shown once, on a page for nobody signed in.
    g.pop("web_session", None)
    g.pop("my_name", None)
    html, status = render("resident/erased.html", title="Your records are erased", receipt=receipt)
    response = Response(html, status=status, mimetype="text/html")
    return clear_cookie(response)
