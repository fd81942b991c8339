"""The clinic and landlord pages, under ``/provider``.

Each page calls the service of the matching JSON API view, with its checks:

- ``home``: counts and short lists (requests, grants held, recent accesses);
- ``new_request`` (``/requests/new``): an access request naming the resident
  by a share code (``share_codes.request_with_code``, as ``POST
  /api/v1/share-codes/redeem``) or by id (``access_requests.create_request``,
  as ``POST /api/v1/access-requests``);
- ``requests``: the requests the caller made (``list_requests``);
- ``residents``: the live grants the caller holds (``list_grants``);
- ``resident`` (``/residents/<id>``): the records the caller may list for a
  stated purpose (``records.list_records``, an access like the API's);
- ``record`` (``/records/<id>``): read one record for a purpose chosen each
  time (``records.read_record``); the content is shown as labelled fields;
- ``break_glass`` (clinics only; a landlord gets the 404 of an unknown
  page): an emergency declaration (``break_glass.declare``) for a resident
  named by id or share code, with a coded reason, a written one and an
  explicit confirmation;
- ``history``: the caller's own accesses (``vault.rights.own_accesses``).

A refusal the API answers 403 (revoked, expired, used up, wrong purpose) is
a page saying access was refused and why, in the API's words, with 403; a
resident the caller has no consent from gets the 404 an unknown id gets.
The per-caller rate limits of the API's break-glass, access request and
share-code endpoints apply here too (api/limits.py, ``Throttle.check_page``).
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from flask import Blueprint, current_app, request
from werkzeug.wrappers import Response as BaseResponse

from api.context import THROTTLE, reading, writing
from api.schemas.common import CATEGORY_PATTERNS
from api.web.attest_forms import ask_forms
from api.web.pages import done, render
from api.web.session import caller, page
from vault.consent import access_requests, break_glass, consent, share_codes
from vault.core.errors import ConsentDenied, InvalidInput, NotFound
from vault.core.ids import MAX_ID_LENGTH
from vault.core.vocabulary import (
    BREAK_GLASS_CODE_LABELS,
    BREAK_GLASS_CODES,
    CATEGORIES,
    CATEGORY_LABELS,
    PURPOSES,
)
from vault.identity.principals import get_principal
from vault.records import records
from vault.rights import own_accesses

bp = Blueprint("provider", __name__, url_prefix="/provider")
ROLES = (
    "clinic",
    "landlord",
)

MAX_REASON = access_requests.MAX_REASON_LENGTH
FAMILY_LABELS = {"health": "Health records", "tenancy": "Tenancy records"}
ROLE_FAMILY = {"clinic": "health", "landlord": "tenancy"}
NO_RESIDENT = "No resident has that id. Check it, or ask the resident for a share code."
# What a request may ask for on the page: reading the records, or only signed answers about them.
REQUEST_ACTIONS = ("read", "attest")
CONFIRMATION = "I confirm this is an emergency; this access is logged and will be reviewed"


def purpose_label(purpose: str) -> str:
    return purpose.replace("-", " ").capitalize()


def _throttle() -> Any:
    return current_app.extensions.get(THROTTLE)


def _check_limit(setting: str, *, count: bool) -> None:
    throttle = _throttle()
    if throttle is not None:
        throttle.check_page(setting, caller().id)
        if count:
            throttle.page_attempt(setting, caller().id)


def _count_failed_code() -> None:
    throttle = _throttle()
    if throttle is not None:
        throttle.page_attempt("share_codes", caller().id)


def _names(session: Any, keys: Any, subject_ids: set[str]) -> dict[str, str]:
    """Names of the residents the caller has (had) consent or an emergency from; others stay ids."""
    known = own_accesses.known_subjects(session, caller()) & subject_ids
    return {subject_id: get_principal(session, keys, subject_id).name for subject_id in known}


def _category_groups(role: str) -> list[dict[str, Any]]:
    """The categories the API accepts, the caller's own family first, each family with its wildcard."""
    families = sorted(FAMILY_LABELS, key=lambda f: f != ROLE_FAMILY.get(role))
    return [
        {
            "family": family,
            "label": FAMILY_LABELS[family],
            "options": [(f"{family}.*", f"All {FAMILY_LABELS[family].lower()}")]
            + [(c, CATEGORY_LABELS[c]) for c in CATEGORIES if c.startswith(family + ".")],
        }
        for family in families
    ]


def _form_context(role: str) -> dict[str, Any]:
    return {
        "purposes": [(p, purpose_label(p)) for p in PURPOSES],
        "category_groups": _category_groups(role),
        "max_reason": MAX_REASON,
        "category_labels": CATEGORY_LABELS,
    }


# --- home ----------------------------------------------------------------------------------------


@bp.route("/")
@page(*ROLES)
def home() -> tuple[str, int]:
    with writing() as call:  # as GET /api/v1/access-requests: a listing may append text.opened events
        pending, pending_total = access_requests.list_requests(
            call.session, call.keys, call.caller, status="pending", limit=5, now=call.now
        )
        approved, approved_total = access_requests.list_requests(
            call.session, call.keys, call.caller, status="approved", limit=5, now=call.now
        )
        grants, grants_total = consent.list_grants(
            call.session, call.caller, grantee_id=call.caller.id, status="active", limit=5, now=call.now
        )
        recent = own_accesses.own_accesses(call.session, call.keys, call.caller, limit=5, now=call.now)
        subjects = {r.subject_id for r in pending + approved} | {g.subject_id for g in grants}
        subjects |= {a.subject_id for a in recent.items if a.subject_id}
        names = _names(call.session, call.keys, subjects)
    return render(
        "provider/home.html",
        title="Home",
        pending=pending,
        pending_total=pending_total,
        approved=approved,
        approved_total=approved_total,
        grants=grants,
        grants_total=grants_total,
        recent=recent,
        names=names,
        category_labels=CATEGORY_LABELS,
        purpose_label=purpose_label,
    )


# --- start a request -----------------------------------------------------------------------------


def _until(value: str, errors: dict[str, str]) -> datetime | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        errors["until"] = "Enter the last day as a date, for example 2027-01-31."
        return None
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)


def _request_form() -> tuple[dict[str, Any], dict[str, str]]:
    form: dict[str, Any] = {
        "code": request.form.get("code", "").strip()[:60],
        "subject_id": request.form.get("subject_id", "").strip()[: MAX_ID_LENGTH + 1],
        "categories": request.form.getlist("categories")[: len(CATEGORY_PATTERNS) + 1],
        "purpose": request.form.get("purpose", ""),
        "reason": request.form.get("reason", "")[: MAX_REASON + 1],
        "until": request.form.get("until", "").strip()[:20],
        "action": request.form.get("action", "read"),
    }
    errors: dict[str, str] = {}
    if form["action"] not in REQUEST_ACTIONS:
        errors["action"] = "Choose whether you ask to read the records or for signed answers."
    if form["code"] and form["subject_id"]:
        errors["who"] = "Enter a share code or a resident id, not both."
    elif not form["code"] and not form["subject_id"]:
        errors["who"] = "Enter the resident's share code (or their resident id)."
    if not form["categories"]:
        errors["categories"] = "Choose at least one kind of record."
    elif any(c not in CATEGORY_PATTERNS for c in form["categories"]):
        errors["categories"] = "Choose kinds of record from the list."
    if form["purpose"] not in PURPOSES:
        errors["purpose"] = "Choose a purpose."
    if not form["reason"].strip():
        errors["reason"] = "Tell the resident why you ask."
    elif len(form["reason"]) > MAX_REASON:
        errors["reason"] = f"Keep the reason to {MAX_REASON} characters."
    form["expires_at"] = _until(form["until"], errors)
    return form, errors


def _new_request_page(form: dict[str, Any], errors: dict[str, str], status: int) -> tuple[str, int]:
    return render(
        "provider/new_request.html",
        title="Start a request",
        form=form,
        errors=errors,
        status=status,
        **_form_context(caller().role),
    )


@bp.route("/requests/new", methods=["GET", "POST"])
@page(*ROLES)
def new_request() -> BaseResponse | tuple[str, int]:
    if request.method == "GET":
        return _new_request_page({"categories": [], "action": "read"}, {}, 200)
    form, errors = _request_form()
    if errors:
        return _new_request_page(form, errors, 400)
    if form["code"]:
        _check_limit("share_codes", count=False)
    _check_limit("access_requests", count=True)
    fields = {
        "categories": form["categories"],
        "purpose": form["purpose"],
        "reason": form["reason"],
        "expires_at": form["expires_at"],
        "actions": [form["action"]],
    }
    try:
        with writing() as call:
            if form["code"]:
                share_codes.request_with_code(
                    call.session, call.keys, call.caller, form["code"], limits=call.limits, now=call.now, **fields
                )
            else:
                access_requests.create_request(
                    call.session,
                    call.keys,
                    call.caller,
                    subject_id=form["subject_id"],
                    limits=call.limits,
                    now=call.now,
                    **fields,
                )
    except NotFound:
        if form["code"]:
            _count_failed_code()
            return _new_request_page(form, {"code": share_codes.INVALID}, 404)
        return _new_request_page(form, {"subject_id": NO_RESIDENT}, 404)
    except InvalidInput as error:
        return _new_request_page(form, {"form": error.detail}, 400)
    return done("web.provider.requests", "requested")


# --- requests, residents -------------------------------------------------------------------------


@bp.route("/requests")
@page(*ROLES)
def requests() -> tuple[str, int]:
    with writing() as call:  # as GET /api/v1/access-requests
        items, total = access_requests.list_requests(call.session, call.keys, call.caller, limit=200, now=call.now)
        mine = [r for r in items if r.requester_id == call.caller.id]
        names = _names(call.session, call.keys, {r.subject_id for r in mine})
    return render(
        "provider/requests.html",
        title="Requests",
        pending=[r for r in mine if r.status == "pending"],
        past=[r for r in mine if r.status != "pending"],
        total=total,
        names=names,
        category_labels=CATEGORY_LABELS,
        purpose_label=purpose_label,
    )


@bp.route("/residents")
@page(*ROLES)
def residents() -> tuple[str, int]:
    with reading() as call:  # as GET /api/v1/consents?grantee_id=&status=active
        grants, total = consent.list_grants(
            call.session, call.caller, grantee_id=call.caller.id, status="active", limit=500, now=call.now
        )
        names = _names(call.session, call.keys, {g.subject_id for g in grants})
    return render(
        "provider/residents.html",
        title="Residents",
        grants=grants,
        total=total,
        names=names,
        category_labels=CATEGORY_LABELS,
        purpose_label=purpose_label,
    )


def _refused(error: ConsentDenied, *, subject_id: str | None = None) -> tuple[str, int]:
    return render(
        "provider/refused.html", title="Access refused", detail=error.detail, subject_id=subject_id, status=403
    )


@bp.route("/residents/<subject_id>")
@page(*ROLES)
def resident(subject_id: str) -> tuple[str, int]:
    return resident_page(subject_id, purpose=request.args.get("purpose"))


def resident_page(
    subject_id: str, *, purpose: str | None = None, ask: dict[str, Any] | None = None, status: int = 200
) -> tuple[str, int]:
    """The resident page: the caller's grants, the records listed for ``purpose``, the questions it may ask.

    ``ask`` re-renders one question's form (``provider_attest``) with its errors and values.
    """
    with reading() as call:
        grants, _ = consent.list_grants(
            call.session, call.caller, subject_id=subject_id, grantee_id=call.caller.id, limit=100, now=call.now
        )
        names = _names(call.session, call.keys, {subject_id})
    context: dict[str, Any] = {
        "subject_id": subject_id,
        "name": names.get(subject_id),
        "grants": grants,
        "purposes": [(p, purpose_label(p)) for p in PURPOSES],
        "category_labels": CATEGORY_LABELS,
        "purpose_label": purpose_label,
        "errors": {},
        "purpose": None,
        "listed": None,
        "ask_forms": ask_forms(grants),
        "reads": any("read" in g.actions for g in grants),
        "ask": ask or {"predicate": None, "errors": {}, "values": {}},
    }
    if purpose is None:
        return render("provider/resident.html", title="Resident", status=status, **context)
    if purpose not in PURPOSES:
        context["errors"] = {"purpose": "Choose a purpose."}
        return render("provider/resident.html", title="Resident", status=400, **context)
    try:
        # A writing transaction, as GET /api/v1/subjects/{id}/records: the listing is an access, ledgered.
        with writing() as call:
            listed = records.list_records(
                call.session, call.keys, call.caller, subject_id=subject_id, purpose=purpose, now=call.now
            )
    except ConsentDenied as error:
        return _refused(error, subject_id=subject_id)
    context.update(purpose=purpose, listed=listed)
    return render("provider/resident.html", title="Resident", status=status, **context)


# --- reading a record ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    label: str
    value: str | None = None
    children: tuple["Field", ...] = ()


_LABELS = {
    "resourceType": "Kind of record",
    "clinicalStatus": "Clinical status",
    "verificationStatus": "Verification status",
    "recordedDate": "Recorded",
    "onsetDateTime": "Onset",
    "effectiveDateTime": "Taken",
    "effectivePeriod": "Period",
    "dosage": "Dosage",
    "id": "Id",
}


def _label(key: str) -> str:
    if key in _LABELS:
        return _LABELS[key]
    words, word = [], ""
    for char in key.replace("_", " ").replace("-", " "):
        if char.isupper() and word and not word[-1].isupper():
            words.append(word)
            word = char.lower()
        else:
            word += char
    words.append(word)
    text = " ".join(w.strip() for w in words if w.strip())
    return text[:1].upper() + text[1:]


def _coded(value: dict[str, Any]) -> str | None:
    """A FHIR CodeableConcept, Coding, Reference or Quantity read as one text, when it is one."""
    if isinstance(value.get("text"), str):
        return value["text"]
    codings = value.get("coding")
    if isinstance(codings, list) and codings and all(isinstance(c, dict) for c in codings):
        shown = [str(c.get("display") or c.get("code") or "") for c in codings]
        return ", ".join(s for s in shown if s) or None
    if set(value) <= {"system", "code", "display", "version"} and ("display" in value or "code" in value):
        return str(value.get("display") or value.get("code"))
    if set(value) <= {"reference", "display"} and value:
        return str(value.get("display") or value.get("reference"))
    if set(value) <= {"value", "unit", "system", "code"} and "value" in value:
        return f"{value['value']} {value.get('unit') or value.get('code') or ''}".strip()
    return None


def readable(value: Any, label: str = "", depth: int = 0) -> tuple[Field, ...]:
    """Content as labelled fields: objects as labels and values, lists item by item, never raw JSON."""
    if depth > 8:
        return (Field(label or "Value", "(more detail in the export)"),)
    if isinstance(value, dict):
        coded = _coded(value)
        if coded is not None and label:
            return (Field(label, coded),)
        children = tuple(f for key, item in value.items() for f in readable(item, _label(str(key)), depth + 1))
        return (Field(label, None, children),) if label else children
    if isinstance(value, list):
        if all(not isinstance(item, (dict, list)) for item in value):
            return (Field(label or "Values", ", ".join(_scalar(item) for item in value) or "—"),)
        items = tuple(f for i, item in enumerate(value, 1) for f in readable(item, f"{label or 'Item'} {i}", depth + 1))
        return items
    return (Field(label or "Value", _scalar(value)),)


def _scalar(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    return str(value)


@bp.route("/records/<record_id>", methods=["GET", "POST"])
@page(*ROLES)
def record(record_id: str) -> tuple[str, int]:
    context: dict[str, Any] = {
        "record_id": record_id,
        "purposes": [(p, purpose_label(p)) for p in PURPOSES],
        "back": request.values.get("subject", "")[: MAX_ID_LENGTH + 1],
        "errors": {},
        "result": None,
        "content_fields": (),
        "category_labels": CATEGORY_LABELS,
        "purpose_label": purpose_label,
    }
    if request.method == "GET":
        return render("provider/record.html", title="Read a record", **context)
    purpose = request.form.get("purpose", "")
    if purpose not in PURPOSES:
        context["errors"] = {"purpose": "Choose a purpose: every read states why."}
        return render("provider/record.html", title="Read a record", status=400, **context)
    try:
        with writing() as call:  # as GET /api/v1/records/{id}?purpose=
            result = records.read_record(call.session, call.keys, call.caller, record_id, purpose=purpose, now=call.now)
    except ConsentDenied as error:
        return _refused(error)
    # Only after the commit (and its ledger event) is the content shown.
    context.update(result=result, purpose=purpose, content_fields=readable(result.content), back=result.subject_id)
    return render("provider/record.html", title="Read a record", **context)


# --- break-glass ---------------------------------------------------------------------------------


def _break_glass_page(form: dict[str, Any], errors: dict[str, str], status: int) -> tuple[str, int]:
    return render(
        "provider/break_glass.html",
        title="Break-glass",
        form=form,
        errors=errors,
        status=status,
        codes=[(c, BREAK_GLASS_CODE_LABELS[c]) for c in BREAK_GLASS_CODES],
        confirmation=CONFIRMATION,
        max_reason=break_glass.MAX_REASON_LENGTH,
    )


@bp.route("/break-glass", methods=["GET", "POST"], endpoint="break_glass")
@page("clinic")
def break_glass_page() -> BaseResponse | tuple[str, int]:
    if request.method == "GET":
        return _break_glass_page({}, {}, 200)
    form: dict[str, Any] = {
        "share_code": request.form.get("share_code", "").strip()[:60],
        "subject_id": request.form.get("subject_id", "").strip()[: MAX_ID_LENGTH + 1],
        "code": request.form.get("code", ""),
        "reason": request.form.get("reason", "")[: break_glass.MAX_REASON_LENGTH + 1],
        "confirmed": request.form.get("confirm") == "yes",
    }
    errors: dict[str, str] = {}
    if form["share_code"] and form["subject_id"]:
        errors["who"] = "Enter a share code or a resident id, not both."
    elif not form["share_code"] and not form["subject_id"]:
        errors["who"] = "Enter the resident's id (or a share code they showed you)."
    if form["code"] not in BREAK_GLASS_CODES:
        errors["code"] = "Choose the kind of emergency."
    if not form["reason"].strip():
        errors["reason"] = "Describe the emergency: the reviewers read it."
    elif len(form["reason"]) > break_glass.MAX_REASON_LENGTH:
        errors["reason"] = f"Keep the description to {break_glass.MAX_REASON_LENGTH} characters."
    if not form["confirmed"]:
        errors["confirm"] = "Confirm that this is an emergency."
    if errors:
        return _break_glass_page(form, errors, 400)
    if form["share_code"]:
        _check_limit("share_codes", count=False)
    _check_limit("break_glass", count=True)
    try:
        with writing() as call:  # as POST /api/v1/subjects/{id}/break-glass
            subject_id, share_code_id = form["subject_id"], None
            if form["share_code"]:
                redeemed = share_codes.redeem_code(
                    call.session, call.keys, call.caller, form["share_code"], now=call.now
                )
                subject_id, share_code_id = redeemed.subject_id, redeemed.id
            declared = break_glass.declare(
                call.session,
                call.keys,
                call.caller,
                subject_id=subject_id,
                reason=form["reason"],
                code=form["code"],
                limits=call.limits,
                now=call.now,
                share_code_id=share_code_id,
            )
    except NotFound:
        if form["share_code"]:
            _count_failed_code()
            return _break_glass_page(form, {"share_code": share_codes.INVALID}, 404)
        return _break_glass_page(form, {"subject_id": NO_RESIDENT}, 404)
    except InvalidInput as error:
        return _break_glass_page(form, {"form": error.detail}, 400)
    return done("web.provider.resident", "break-glass", subject_id=declared.subject_id)


# --- my access history ---------------------------------------------------------------------------


@bp.route("/history")
@page(*ROLES)
def history() -> tuple[str, int]:
    before = request.args.get("before", "")
    if before and (not before.isdigit() or len(before) > 18):
        raise InvalidInput("before must be a ledger index.")
    with reading() as call:
        found = own_accesses.own_accesses(
            call.session, call.keys, call.caller, limit=50, before=int(before) if before else None, now=call.now
        )
    return render(
        "provider/history.html",
        title="My access history",
        found=found,
        category_labels=CATEGORY_LABELS,
        purpose_label=purpose_label,
    )
