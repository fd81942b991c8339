"""The compliance pages, under ``/compliance``: the officers' view of the whole trail.

Each page calls the services the audit, trail, ledger and anchor endpoints
call (api/views/audit.py, trail.py, ledger.py, anchors.py), in the same kind
of transaction, so what a page shows and logs is what the API shows and logs:

- ``home``: pending break-glass reviews, flags of the last 7 days, accesses
  of the last 24 hours by outcome, the ledger in one line; charts of access
  volume by day and outcome and of break-glass declarations (30 days).
  Counts name nobody and are not logged (as the flags are not);
- ``trail``: the search form (a GET: the address is the search), its pages
  (``audit_search.logged_search``: one ``trail.searched`` event per search,
  not per page), charts of the results over time by outcome and by actor,
  and ``trail.csv``, the same search as a CSV download
  (``audit_search.begin_export`` then ``audit_csv.stream``);
- ``break_glass``: the review queue, pending first, and acknowledging with a
  note (``break_glass_review.acknowledge``); showing reasons and notes logs
  ``text.opened``, and the reads made under each pending declaration are a
  logged search of that resident's trail;
- ``flags``: ``audit_flags.compute`` over a range, with links to act on them;
- ``lookup``: a resident by exact login or name (``vault.compliance.lookup``,
  logged as ``resident.looked-up``, hit or miss); a POST, so that what was
  typed never sits in an address or a server log;
- ``disclosures``: a resident's accounting of disclosures
  (``trail.disclosures``), on screen and as CSV;
- ``ledger``: the latest checkpoint, witnesses, the latest anchor.

Residents appear by id; other principals (clinics, landlords, officers) by
name and role.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from api.context import current_vault, reading, writing
from api.web import charts
from api.web.pages import done, render
from api.web.session import page
from vault.anchoring import service as anchors
from vault.compliance import audit_csv, audit_flags, audit_search, break_glass_review, lookup, overview
from vault.core.errors import InvalidInput, NotFound
from vault.core.ids import is_well_formed_id
from vault.core.vocabulary import BREAK_GLASS_CODES, CATEGORIES, CATEGORY_FAMILIES, PURPOSES
from vault.identity.principals import get_principal
from vault.ledger import checkpoints, ledger
from vault.rights import trail as rights_trail
from vault.storage import audit_index
from vault.storage.models import Principal

bp = Blueprint("compliance", __name__, url_prefix="/compliance")
ROLES = ("compliance",)

PAGE_SIZE = 50
CHART_DAYS = 30
TOP_ACTORS = 5
OUTCOME_ORDER = ("permitted", "refused", audit_search.NO_OUTCOME)
CATEGORY_CHOICES = [*CATEGORIES, *(f"{family}.*" for family in CATEGORY_FAMILIES)]
FLAG_LABELS = {
    "break-glass": "Break-glass use",
    "refusal-burst": "Burst of refusals",
    "read-volume": "Unusual read volume",
    "near-expiry": "Reads near a grant's end",
    "after-expiry": "Refused after a grant expired",
}


# --- shared helpers ------------------------------------------------------------------------------


def _labels(session, keys, ids) -> dict[str, str]:
    """How pages name principals: residents by id, others by name and role."""
    found: dict[str, str] = {}
    for principal_id in {i for i in ids if i}:
        row = session.get(Principal, principal_id) if is_well_formed_id(principal_id) else None
        if row is None:
            found[principal_id] = principal_id
        elif row.role == "resident":
            found[principal_id] = f"Resident {principal_id}"
        else:
            name = get_principal(session, keys, principal_id).name
            found[principal_id] = f"{name} ({row.role})"
    return found


def _day_start(moment: datetime) -> datetime:
    return datetime.combine(moment.astimezone(UTC).date(), time(0), tzinfo=UTC)


def _days(now: datetime, days: int) -> list[tuple[datetime, datetime]]:
    first = _day_start(now) - timedelta(days=days - 1)
    return [(first + timedelta(days=i), first + timedelta(days=i + 1)) for i in range(days)]


def _buckets(start: datetime, end: datetime) -> tuple[list[tuple[datetime, datetime]], str]:
    """Buckets covering ``[start, end]``: hours, days, weeks or 30-day months, at most about 60 of them."""
    span = end - start
    if span <= timedelta(hours=48):
        width, fmt = timedelta(hours=1), "%-d %b %H:00"
        first = start.replace(minute=0, second=0, microsecond=0)
    elif span <= timedelta(days=62):
        width, fmt = timedelta(days=1), "%-d %b"
        first = _day_start(start)
    elif span <= timedelta(weeks=60):
        width, fmt = timedelta(weeks=1), "%-d %b %Y"
        first = _day_start(start) - timedelta(days=_day_start(start).weekday())
    else:
        width, fmt = timedelta(days=30), "%b %Y"
        first = _day_start(start)
    buckets: list[tuple[datetime, datetime]] = []
    moment = first
    while moment <= end and len(buckets) < 400:
        buckets.append((moment, moment + width))
        moment += width
    return buckets, fmt


def _volume_series(counts: list[dict[str, int]], buckets, fmt: str) -> list[tuple[str, dict[str, int]]]:
    return [(start.strftime(fmt), found) for (start, _), found in zip(buckets, counts, strict=True)]


# --- home ------------------------------------------------------------------------------------------


@bp.route("/")
@page(*ROLES)
def home() -> tuple[str, int]:
    with reading() as call:
        pending = overview.pending_reviews(call.session, call.caller)
        since, until, flags = audit_flags.compute(
            call.session, call.caller, since=None, until=None, limits=call.settings.flags, now=call.now
        )
        accesses = audit_search.EventFilter(kinds=("access.*",))
        day_ago, now = call.now - timedelta(hours=24), call.now + timedelta(microseconds=1)
        last_day = audit_search.volume(call.session, call.caller, accesses, buckets=[(day_ago, now)])[0]
        days = _days(call.now, CHART_DAYS)
        by_day = audit_search.volume(call.session, call.caller, accesses, buckets=days)
        glass = audit_search.volume(
            call.session, call.caller, audit_search.EventFilter(kinds=("break-glass.declared",)), buckets=days
        )
        size = ledger.size(call.session)
        try:
            checkpoint = checkpoints.latest(call.session, threshold=call.settings.witness_threshold)
        except NotFound:
            checkpoint = None
    open_flags = [f for f in flags if not (f.rule == "break-glass" and f.detail.get("acknowledged"))]
    access_chart = charts.bar_chart(
        _volume_series(by_day, days, "%-d %b"),
        title=f"Accesses per day, last {CHART_DAYS} days",
        description="Reads, writes and listings of residents' records each day, permitted or refused.",
        groups_order=("permitted", "refused"),
        colours=charts.OUTCOME_COLOURS,
        label_header="Day",
    )
    glass_series = [
        (start.strftime("%-d %b"), {"declared": sum(found.values())})
        for (start, _), found in zip(days, glass, strict=True)
    ]
    glass_chart = charts.bar_chart(
        glass_series,
        title=f"Break-glass declarations per day, last {CHART_DAYS} days",
        description="Emergency accesses declared by clinics each day.",
        colours={"declared": charts.ORANGE},
        label_header="Day",
    )
    return render(
        "compliance/home.html",
        title="Compliance overview",
        pending=pending,
        open_flags=len(open_flags),
        flags_since=since,
        last_day={k: last_day.get(k, 0) for k in ("permitted", "refused")},
        size=size,
        checkpoint=checkpoint,
        access_chart=access_chart,
        glass_chart=glass_chart,
    )


# --- trail -----------------------------------------------------------------------------------------


@dataclass
class TrailForm:
    values: dict[str, str]
    errors: dict[str, str]
    flt: audit_search.EventFilter | None
    after: int | None
    as_of: int | None

    @property
    def searched(self) -> bool:
        return any(self.values.values())


def _parse_day(raw: str, name: str, errors: dict[str, str]) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors[name] = "Enter a date as YYYY-MM-DD."
        return None


def _parse_index(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise InvalidInput("The page link is malformed.")
    return int(raw)


def _trail_form(args) -> TrailForm:
    names = ("subject_id", "actor_id", "kind", "outcome", "purpose", "category", "from", "to")
    values = {name: (args.get(name) or "").strip()[:100] for name in names}
    errors: dict[str, str] = {}
    for name in ("subject_id", "actor_id"):
        if values[name] and not is_well_formed_id(values[name]):
            errors[name] = "Enter an id such as p-… exactly as shown."
    if values["kind"] and values["kind"] not in audit_search.KIND_PATTERNS:
        errors["kind"] = "Choose a kind from the list."
    if values["outcome"] and values["outcome"] not in audit_index.OUTCOMES:
        errors["outcome"] = "Choose permitted or refused."
    if values["purpose"] and values["purpose"] not in PURPOSES:
        errors["purpose"] = "Choose a purpose from the list."
    if values["category"] and values["category"] not in CATEGORY_CHOICES:
        errors["category"] = "Choose a category from the list."
    since = _parse_day(values["from"], "from", errors)
    until = _parse_day(values["to"], "to", errors)
    if since and until and since > until:
        errors["to"] = "The end date must not be before the start date."
    after = _parse_index(args.get("after"))
    as_of = _parse_index(args.get("as_of"))
    flt = None
    if not errors:
        flt = audit_search.EventFilter(
            subject_id=values["subject_id"] or None,
            actor_id=values["actor_id"] or None,
            kinds=(values["kind"],) if values["kind"] else (),
            outcome=values["outcome"] or None,
            purpose=values["purpose"] or None,
            category=values["category"] or None,
            since=datetime.combine(since, time(0), tzinfo=UTC) if since else None,
            until=datetime.combine(until, time(0), tzinfo=UTC) + timedelta(days=1) if until else None,
        )
    return TrailForm(values=values, errors=errors, flt=flt, after=after, as_of=as_of)


def _query(values: dict[str, str], **extra: Any) -> str:
    pairs = [(k, v) for k, v in values.items() if v]
    pairs += [(k, str(v)) for k, v in extra.items() if v is not None]
    return urlencode(pairs)


@bp.route("/trail")
@page(*ROLES)
def trail() -> tuple[str, int]:
    form = _trail_form(request.args)
    context: dict[str, Any] = {
        "form": form.values,
        "errors": form.errors,
        "kinds": audit_search.KIND_PATTERNS,
        "outcomes": audit_index.OUTCOMES,
        "purposes": PURPOSES,
        "categories": CATEGORY_CHOICES,
        "results": None,
    }
    if form.errors:
        return render("compliance/trail.html", title="Search the trail", status=400, **context)
    if not form.searched and form.as_of is None:
        return render("compliance/trail.html", title="Search the trail", **context)
    assert form.flt is not None
    with writing() as call:  # the search is logged (trail.searched), once per search
        result = audit_search.logged_search(
            call.session,
            call.caller,
            form.flt,
            limit=PAGE_SIZE,
            after=form.after,
            as_of=form.as_of,
            now=call.now,
        )
        span = audit_search.time_span(call.session, call.caller, form.flt, as_of=result.as_of)
        over_time = actors = None
        if span is not None:
            start = form.flt.since or span[0]
            end = min(form.flt.until or span[1], span[1])
            buckets, fmt = _buckets(start, end)
            counts = audit_search.volume(call.session, call.caller, form.flt, buckets=buckets, as_of=result.as_of)
            over_time = _volume_series(counts, buckets, fmt)
            actors = audit_search.top_actors(call.session, call.caller, form.flt, limit=TOP_ACTORS, as_of=result.as_of)
        ids = [line.actor_id for line in result.items] + [a for a, _ in actors or []]
        labels = _labels(call.session, call.keys, ids)
    if over_time is not None:
        context["time_chart"] = charts.bar_chart(
            over_time,
            title="Matching events over time, by outcome",
            description=f"The {result.total} events this search matched, counted over time; "
            "'other' are events that are not access decisions.",
            groups_order=OUTCOME_ORDER,
            colours=charts.OUTCOME_COLOURS,
        )
        context["actor_chart"] = charts.bar_chart(
            [(labels.get(actor, actor), counts) for actor, counts in actors or []],
            title=f"Top {TOP_ACTORS} actors among the matching events",
            description="Who acted in the most matching events, by outcome.",
            groups_order=OUTCOME_ORDER,
            colours=charts.OUTCOME_COLOURS,
            label_header="Actor",
            max_labels=TOP_ACTORS,
        )
    context.update(
        results=result,
        labels=labels,
        next_url=(
            url_for("web.compliance.trail") + "?" + _query(form.values, as_of=result.as_of, after=result.next_after)
            if result.next_after is not None
            else None
        ),
        first_url=url_for("web.compliance.trail") + "?" + _query(form.values, as_of=result.as_of),
        csv_url=url_for("web.compliance.trail_csv") + "?" + _query(form.values, as_of=result.as_of),
    )
    return render("compliance/trail.html", title="Search the trail", **context)


@bp.route("/trail.csv")
@page(*ROLES)
def trail_csv() -> Response:
    """Every match of the search as CSV (the API's export: logged before any line is sent)."""
    form = _trail_form(request.args)
    if form.errors or form.flt is None:
        raise InvalidInput(" ".join(form.errors.values()))
    with writing() as call:
        flt, as_of = audit_search.begin_export(call.session, call.caller, form.flt, as_of=form.as_of, now=call.now)
    batches = audit_search.export_batches(current_vault().read_transaction, flt, as_of=as_of)
    return Response(
        audit_csv.stream(batches),
        mimetype="text/csv",
        headers={
            "Content-Disposition": 'attachment; filename="civicvault-events.csv"',
            "X-CivicVault-As-Of": str(as_of),
        },
    )


# --- break-glass review -----------------------------------------------------------------------------

QUEUE_SIZE = 20
READS_SHOWN = 50


@bp.route("/break-glass")
@page(*ROLES)
def break_glass() -> tuple[str, int]:
    return _break_glass_page({}, {}, 200)


def _break_glass_page(errors: dict[str, str], notes: dict[str, str], status: int) -> tuple[str, int]:
    with writing() as call:  # showing reasons and notes appends text.opened events
        pending, pending_total = break_glass_review.queue(
            call.session, call.keys, call.caller, status="pending", limit=QUEUE_SIZE, now=call.now
        )
        done_items, done_total = break_glass_review.queue(
            call.session, call.keys, call.caller, status="acknowledged", limit=QUEUE_SIZE, now=call.now
        )
        reads = {}
        for review in pending:
            # What was read under the declaration: a search of the resident's trail, logged as one.
            found = audit_search.logged_search(
                call.session,
                call.caller,
                audit_search.EventFilter(
                    subject_id=review.subject_id,
                    actor_id=review.clinic_id,
                    kinds=("access.permitted",),
                    since=review.declared_at,
                    until=review.expires_at,
                ),
                limit=READS_SHOWN,
                now=call.now,
            )
            reads[review.id] = [line for line in found.items if (line.data or {}).get("break_glass_id") == review.id]
        ids = [r.clinic_id for r in pending + done_items] + [r.acknowledged_by for r in done_items]
        labels = _labels(call.session, call.keys, ids)
    return render(
        "compliance/break_glass.html",
        title="Break-glass review",
        status=status,
        pending=pending,
        pending_total=pending_total,
        acknowledged=done_items,
        acknowledged_total=done_total,
        reads=reads,
        labels=labels,
        codes=BREAK_GLASS_CODES,
        errors=errors,
        notes=notes,
        max_note=break_glass_review.MAX_NOTE_LENGTH,
    )


@bp.route("/break-glass/<break_glass_id>/acknowledge", methods=["POST"])
@page(*ROLES)
def acknowledge(break_glass_id: str) -> BaseResponse | tuple[str, int]:
    note = request.form.get("note", "")[: break_glass_review.MAX_NOTE_LENGTH * 4]
    try:
        with writing() as call:
            break_glass_review.acknowledge(
                call.session, call.keys, call.caller, break_glass_id, note=note, now=call.now
            )
    except InvalidInput as error:
        return _break_glass_page({break_glass_id: error.detail}, {break_glass_id: note}, 400)
    return done("web.compliance.break_glass", "acknowledged")


# --- flags -------------------------------------------------------------------------------------------


@bp.route("/flags")
@page(*ROLES)
def flags() -> tuple[str, int]:
    errors: dict[str, str] = {}
    values = {name: (request.args.get(name) or "").strip()[:20] for name in ("from", "to", "rule")}
    since_day = _parse_day(values["from"], "from", errors)
    until_day = _parse_day(values["to"], "to", errors)
    if values["rule"] and values["rule"] not in audit_flags.RULES:
        errors["rule"] = "Choose a rule from the list."
    context: dict[str, Any] = {"form": values, "errors": errors, "rules": FLAG_LABELS, "items": None}
    if errors:
        return render("compliance/flags.html", title="Flags", status=400, **context)
    since = datetime.combine(since_day, time(0), tzinfo=UTC) if since_day else None
    until = datetime.combine(until_day, time(0), tzinfo=UTC) + timedelta(days=1) if until_day else None
    try:
        with reading() as call:
            since, until, items = audit_flags.compute(
                call.session,
                call.caller,
                since=since,
                until=min(until, call.now) if until else None,
                limits=call.settings.flags,
                now=call.now,
                rules=(values["rule"],) if values["rule"] else (),
            )
            labels = _labels(call.session, call.keys, [f.principal_id for f in items])
    except InvalidInput as error:
        context["errors"] = {"from": error.detail}
        return render("compliance/flags.html", title="Flags", status=400, **context)
    trail_links = {}
    for i, flag in enumerate(items):
        query = {
            "actor_id": flag.principal_id,
            "subject_id": flag.subject_id or "",
            "from": flag.first_at.date().isoformat(),
            "to": flag.last_at.date().isoformat(),
        }
        trail_links[i] = url_for("web.compliance.trail") + "?" + _query(query)
    context.update(items=items, since=since, until=until, labels=labels, trail_links=trail_links)
    return render("compliance/flags.html", title="Flags", **context)


# --- look-up and disclosures ---------------------------------------------------------------------------


@bp.route("/lookup", methods=["GET", "POST"], endpoint="lookup")
@page(*ROLES)
def lookup_page() -> tuple[str, int]:
    if request.method == "GET":
        return render("compliance/lookup.html", title="Look up a resident", errors={}, by="login", value="", hits=None)
    by = request.form.get("by", "")
    value = request.form.get("value", "")[:400]
    errors: dict[str, str] = {}
    if by not in lookup.BY:
        errors["by"] = "Choose login or name."
    elif not value.strip():
        errors["value"] = f"Enter the resident's exact {by}."
    if errors:
        return render(
            "compliance/lookup.html",
            title="Look up a resident",
            errors=errors,
            by=by,
            value=value,
            hits=None,
            status=400,
        )
    try:
        with writing() as call:  # the look-up itself is logged (resident.looked-up)
            hits = lookup.look_up(call.session, call.keys, call.caller, by=by, value=value, now=call.now)
    except InvalidInput as error:
        return render(
            "compliance/lookup.html",
            title="Look up a resident",
            errors={"value": error.detail},
            by=by,
            value=value,
            hits=None,
            status=400,
        )
    return render("compliance/lookup.html", title="Look up a resident", errors={}, by=by, value=value, hits=hits)


@bp.route("/residents/<subject_id>/disclosures")
@page(*ROLES)
def disclosures(subject_id: str) -> BaseResponse | tuple[str, int]:
    """The accounting of disclosures, as the API gives it to compliance (``?format=csv`` for the CSV)."""
    with reading() as call:
        report = rights_trail.disclosures(call.session, call.keys, call.caller, subject_id=subject_id, now=call.now)
    if request.args.get("format") == "csv":
        return Response(
            rights_trail.disclosures_csv(report),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="disclosures-{subject_id}.csv"'},
        )
    return render("compliance/disclosures.html", title="Accounting of disclosures", report=report)


# --- ledger --------------------------------------------------------------------------------------------


@bp.route("/ledger", endpoint="ledger")
@page(*ROLES)
def ledger_status() -> tuple[str, int]:
    with reading() as call:
        size = ledger.size(call.session)
        try:
            checkpoint = checkpoints.latest(call.session, threshold=call.settings.witness_threshold)
        except NotFound:
            checkpoint = None
        witnesses = overview.witnesses(call.session, call.caller)
        labels = _labels(call.session, call.keys, [w.principal_id for w in witnesses])
        try:
            anchor = anchors.latest_anchor(call.session)
        except NotFound:
            anchor = None
    return render(
        "compliance/ledger.html",
        title="Ledger status",
        size=size,
        checkpoint=checkpoint,
        witnesses=witnesses,
        labels=labels,
        anchor=anchor,
    )
