"""The agency's page, under ``/agency``: what an issuer of signed records needs to see.

An agency (an employer's payroll service, a tax or benefits office, a
registry) writes records about residents under their ``write`` grants and
signs them with its issuer keys (docs/attestations.md). It writes and signs
through the API or ``civicvault issuer sign``; a browser never holds its
private key. Its home page shows, with the services the API calls:

- its issuer keys and their status (``issuer_keys.list_keys``, as
  ``GET /api/v1/issuer-keys``);
- the residents whose live grants let it add records (``consent.list_grants``);
- its last accesses: the records it wrote, refusals included
  (``vault.rights.own_accesses``).
"""

from flask import Blueprint

from api.context import reading
from api.web.pages import render
from api.web.provider import purpose_label
from api.web.session import page
from vault.consent import consent
from vault.core.vocabulary import CATEGORY_LABELS
from vault.identity import issuer_keys
from vault.identity.principals import get_principal
from vault.rights import own_accesses

bp = Blueprint("agency", __name__, url_prefix="/agency")


@bp.route("/")
@page("agency")
def home() -> tuple[str, int]:
    with reading() as call:
        keys = issuer_keys.list_keys(call.session, call.keys, call.caller)
        grants, grants_total = consent.list_grants(
            call.session, call.caller, grantee_id=call.caller.id, status="active", limit=50, now=call.now
        )
        writable = [g for g in grants if "write" in g.actions]
        recent = own_accesses.own_accesses(call.session, call.keys, call.caller, limit=10, now=call.now)
        known = own_accesses.known_subjects(call.session, call.caller)
        wanted = ({g.subject_id for g in writable} | {a.subject_id for a in recent.items if a.subject_id}) & known
        names = {subject: get_principal(call.session, call.keys, subject).name for subject in wanted}
    return render(
        "agency/home.html",
        title="Home",
        issuer_keys=keys,
        writable=writable,
        grants_total=grants_total,
        recent=recent,
        names=names,
        category_labels=CATEGORY_LABELS,
        purpose_label=purpose_label,
    )
