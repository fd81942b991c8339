"""Attestations on the clinic and landlord pages: ask for a signed answer, see it, download it.

Routes on the ``provider`` blueprint (``/provider``), each calling the
service its JSON API view calls:

- the resident page (``provider.resident``) shows, for each catalogue
  question the caller's ``attest`` grants cover, a form (``ask_forms``);
- ``ask`` (POST ``/residents/<id>/attestations``): ``attest.attest``, as
  ``POST /api/v1/subjects/{id}/attestations``, then the attestation's page;
- ``attestations``: the ones the caller obtained (``obtained.list_obtained``,
  as ``GET /api/v1/attestations``);
- ``attestation`` (``/attestations/<id>``): the answer in words, what
  counted, who issued the records it used, and how to verify the file;
- ``download`` (``/attestations/<id>/download``): the signed credential,
  exactly as issued, as a JSON file (``obtained.credential_for``).

Answers: a refusal (no grant, revoked, expired, used up, wrong purpose) is
the 403 page of a refused read; a question no counted record answers is
the resident page again, 409, saying so (the resident's log shows it);
bad numbers are the form again, 400, saying which. The per-caller rate
limit of the API's attestation endpoint applies (``attestations``).
"""

import json
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import Response, request
from werkzeug.wrappers import Response as BaseResponse

from api.context import current_vault, reading, writing
from api.web.attest_forms import describe
from api.web.pages import done, render
from api.web.provider import ROLES, _check_limit, _names, _refused, bp, purpose_label, resident_page
from api.web.session import page
from vault.attestations import attest, obtained
from vault.attestations.predicates import CATALOGUE, MAX_AMOUNT, MAX_MULTIPLE, MAX_YEARS, NoEvidence, Predicate
from vault.core.errors import ConsentDenied, InvalidInput, NotFound
from vault.core.vocabulary import PURPOSES
from vault.identity.principals import get_principal
from vault.keys import attestation_key

MAX_NUMBER_TEXT = 20
COUNTED = {
    "issuer-verified": "Only records an issuer signed, with the signature verified",
    "issuer-verified and self-asserted": "Records an issuer signed and records the resident typed in",
}


# --- asking ----------------------------------------------------------------------------------------


def _number(
    text: str, label: str, errors: dict[str, str], key: str, *, whole: bool, most: int = MAX_AMOUNT
) -> int | float | None:
    text = text.strip().replace(",", "").replace(" ", "")[:MAX_NUMBER_TEXT]
    if not text:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite() or not 0 < number <= most or (whole and number != number.to_integral_value()):
        example = "14400" if whole else "3"
        errors[key] = (
            f"Enter {label} as a {'whole ' if whole else ''}number above 0 and at most {most}, like {example}."
        )
        return None
    return int(number) if whole else float(number)


def _income_parameters(errors: dict[str, str]) -> dict[str, Any]:
    form = request.form
    currency = form.get("currency", "").strip().upper()[:10]
    amount = _number(form.get("amount", ""), "the amount", errors, "amount", whole=True)
    multiple = _number(form.get("multiple", ""), "the multiple", errors, "multiple", whole=False, most=MAX_MULTIPLE)
    rent = _number(form.get("annual_rent", ""), "the yearly rent", errors, "annual_rent", whole=True)
    if len(currency) != 3 or not currency.isascii() or not currency.isalpha():
        errors["currency"] = "Enter the currency as its three-letter code, like EUR."
    if errors:
        return {}
    if amount is not None and (multiple is not None or rent is not None):
        errors["amount"] = "Give an amount, or a multiple and a yearly rent, not both."
    elif amount is None and (multiple is None or rent is None):
        errors["annual_rent" if multiple is not None else "multiple"] = (
            "Give a multiple and a yearly rent (or an amount instead)."
        )
    if amount is not None:
        return {"amount": amount, "currency": currency}
    return {"multiple": multiple, "annual_rent": rent, "currency": currency}


def _years_parameters(errors: dict[str, str]) -> dict[str, Any]:
    years = _number(request.form.get("years", ""), "the number of years", errors, "years", whole=True, most=MAX_YEARS)
    if years is None and "years" not in errors:
        errors["years"] = "Enter the number of years, like 5."
    return {"years": years}


PARAMETERS = {
    "income_at_least": _income_parameters,
    "no_eviction_within": _years_parameters,
    "adult": lambda errors: {},
}


def _ask_again(subject_id: str, chosen: Predicate, errors: dict[str, str], status: int) -> tuple[str, int]:
    values = {k: request.form.get(k, "")[:MAX_NUMBER_TEXT] for k in ("amount", "multiple", "annual_rent", "currency")}
    values["years"] = request.form.get("years", "")[:MAX_NUMBER_TEXT]
    values["purpose"] = request.form.get("purpose", "")
    return resident_page(subject_id, ask={"predicate": chosen.name, "errors": errors, "values": values}, status=status)


@bp.route("/residents/<subject_id>/attestations", methods=["POST"])
@page(*ROLES)
def ask(subject_id: str) -> BaseResponse | tuple[str, int]:
    name = request.form.get("predicate", "")
    if name not in CATALOGUE:
        return resident_page(subject_id, status=400)
    chosen = CATALOGUE[name]
    errors: dict[str, str] = {}
    parameters = PARAMETERS[name](errors)
    purpose = request.form.get("purpose", "")
    if purpose not in PURPOSES:
        errors["purpose"] = "Choose the purpose you ask for."
    if errors:
        return _ask_again(subject_id, chosen, errors, 400)
    _check_limit("attestations", count=True)
    key = attestation_key.read(current_vault().settings.attestation_key_file)
    try:
        with writing() as call:
            issued = attest.attest(
                call.session,
                call.keys,
                call.caller,
                subject_id,
                predicate_name=name,
                parameters=parameters,
                purpose=purpose,
                include_self_asserted=request.form.get("include_self_asserted") == "yes",
                now=call.now,
                valid_days=call.settings.attestation_valid_days,
                signing_key=key,
            )
    except ConsentDenied as error:
        return _refused(error, subject_id=subject_id)
    except NoEvidence as error:
        return _ask_again(subject_id, chosen, {"form": error.detail}, 409)
    except InvalidInput as error:
        return _ask_again(subject_id, chosen, {"form": error.detail}, 400)
    credential_id = issued.credential["id"].removeprefix("urn:uuid:")
    return done("web.provider.attestation", "attested", credential_id=credential_id)


# --- what was obtained -----------------------------------------------------------------------------


@bp.route("/attestations")
@page(*ROLES)
def attestations() -> tuple[str, int]:
    with reading() as call:
        items, total = obtained.list_obtained(call.session, call.keys, call.caller, limit=200)
        names = _names(call.session, call.keys, {a.subject_id for a in items})
    return render(
        "provider/attestations.html",
        title="Attestations",
        items=items,
        total=total,
        names=names,
        describe=describe,
        purpose_label=purpose_label,
    )


def _name_or_none(session: Any, keys: Any, principal_id: str) -> str | None:
    """An issuer's name; None for one no longer in the vault (the page shows its id)."""
    try:
        return get_principal(session, keys, principal_id).name
    except NotFound:
        return None


@bp.route("/attestations/<credential_id>")
@page(*ROLES)
def attestation(credential_id: str) -> tuple[str, int]:
    key = attestation_key.read(current_vault().settings.attestation_key_file)
    with reading() as call:
        found = obtained.credential_for(call.session, call.keys, call.caller, credential_id)
        names = _names(call.session, call.keys, {found.subject_id})
        issuers = {issuer: _name_or_none(call.session, call.keys, issuer) for issuer in found.issuers}
    return render(
        "provider/attestation.html",
        title="Attestation",
        a=found,
        name=names.get(found.subject_id),
        issuers=issuers,
        question=describe(found.predicate, found.parameters),
        counted=COUNTED.get(found.counted, found.counted),
        purpose_label=purpose_label,
        did=key.did,
        filename=f"attestation-{found.id}.json",
    )


@bp.route("/attestations/<credential_id>/download")
@page(*ROLES)
def download(credential_id: str) -> Response:
    with reading() as call:
        found = obtained.credential_for(call.session, call.keys, call.caller, credential_id)
    body = json.dumps(found.credential, indent=2, ensure_ascii=False) + "\n"
    return Response(
        body,
        mimetype="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="attestation-{found.id}.json"',
            "Cache-Control": "no-store",
        },
    )
