"""The admin pages, under ``/admin``: principals and their sign-in, and the keys' status.

The same services as the operator's CLI (vault/cli/main.py ``principal ...``,
vault/cli/credentials.py, vault/cli/keys.py ``keys status``):

- ``principals``: every principal (name, role, login, live API tokens,
  two-step sign-in, created), a form to create one with a login, which
  shows its **invitation link** once (``invitations.create``; the link is
  this site's ``/invite/<token>``, where the person sets their own
  password); per principal: a new invitation (and a login first, if it has
  none), revoke its API tokens and end its web sessions
  (``principals.revoke_tokens`` and ``web_sessions.sign_out_everywhere``),
  and reset its two-step sign-in (``totp.reset``). A principal created here
  gets no usable API token: the one ``create_principal`` issues is never
  shown, so it is revoked at once (``civicvault principal token`` issues
  one when a system needs it);
- ``keys``: master key versions and what each protects, subject keys and
  secrets, whether a rotation is unfinished, the ledger key's id
  (``vault.keys.key_status``).

An admin sees principals and keys, never a record, a grant, a request or
the trail: every resident and compliance page is a 404 for them.
"""

from typing import Any

from flask import Blueprint, request
from werkzeug.wrappers import Response as BaseResponse

from api.context import current_vault, reading, writing
from api.web.pages import done, render
from api.web.session import page
from vault.core.errors import Conflict, InvalidInput
from vault.core.vocabulary import ROLES as ALL_ROLES
from vault.identity import invitations, logins, principals, totp, web_sessions
from vault.keys import key_status
from vault.storage.models import Principal

bp = Blueprint("admin", __name__, url_prefix="/admin")
ROLES = ("admin",)
SHOWN = 500  # principals listed at most on one page (filter by role for the rest)


def _rows(role: str | None) -> tuple[list[dict[str, Any]], int]:
    with reading() as call:
        found = principals.list_principals(call.session, call.keys, role=role, limit=SHOWN)
        total = principals.count_principals(call.session, role=role)
        rows = []
        for info in found:
            row = call.session.get(Principal, info.id)
            rows.append(
                {
                    "info": info,
                    "login": logins.open_login(call.keys, row) if row is not None else None,
                    "tokens": principals.live_token_count(call.session, info.id),
                    "two_step": row is not None and totp.is_enabled(row),
                    "erased": row is not None and row.erased_at is not None,
                }
            )
    return rows, total


def _page(
    *, errors: dict[str, str] | None = None, form: dict[str, str] | None = None, link=None, status: int = 200
) -> tuple[str, int]:
    role = request.args.get("role") or None
    if role not in ALL_ROLES:
        role = None
    rows, total = _rows(role)
    return render(
        "admin/principals.html",
        title="Principals",
        status=status,
        rows=rows,
        total=total,
        shown=SHOWN,
        role=role,
        roles=ALL_ROLES,
        errors=errors or {},
        form=form or {"role": "clinic", "name": "", "login": ""},
        link=link,
    )


def _invitation(link: invitations.InvitationLink, principal_id: str, login: str) -> dict[str, Any]:
    return {
        "url": f"{request.host_url}invite/{link.token}",
        "expires_at": link.expires_at,
        "principal_id": principal_id,
        "login": login,
    }


@bp.route("/", endpoint="principals")
@page(*ROLES)
def principals_page() -> tuple[str, int]:
    return _page()


@bp.route("/principals", methods=["POST"])
@page(*ROLES)
def create() -> tuple[str, int]:
    form = {name: request.form.get(name, "")[:400] for name in ("role", "name", "login")}
    errors: dict[str, str] = {}
    if form["role"] not in ALL_ROLES:
        errors["role"] = "Choose a role."
    if not form["name"].strip():
        errors["name"] = "Enter the name."
    if not form["login"].strip():
        errors["login"] = "Enter a login: the invitation is for signing in with it."
    if errors:
        return _page(errors=errors, form=form, status=400)
    try:
        with writing() as call:
            info, _unshown = principals.create_principal(
                call.session, call.keys, role=form["role"], name=form["name"], now=call.now
            )
            principals.revoke_tokens(call.session, info.id, now=call.now)  # never shown: nobody may hold it
            shown_login = logins.set_login(call.session, call.keys, info.id, form["login"])
            link = invitations.create(call.session, call.keys, info.id, now=call.now)
    except (InvalidInput, Conflict) as error:
        field = "login" if "login" in error.detail.lower() else "name"
        return _page(errors={field: error.detail}, form=form, status=400)
    return _page(link={**_invitation(link, info.id, shown_login), "created": info}, status=201)


@bp.route("/principals/<principal_id>/invite", methods=["POST"])
@page(*ROLES)
def invite(principal_id: str) -> tuple[str, int]:
    login = request.form.get("login", "")[:400].strip()
    try:
        with writing() as call:
            if login:
                logins.set_login(call.session, call.keys, principal_id, login)
            link = invitations.create(call.session, call.keys, principal_id, now=call.now)
            shown_login = logins.get_login(call.session, call.keys, principal_id) or ""
    except (InvalidInput, Conflict) as error:
        return _page(errors={f"invite-{principal_id}": error.detail}, status=400)
    return _page(link=_invitation(link, principal_id, shown_login))


@bp.route("/principals/<principal_id>/revoke", methods=["POST"])
@page(*ROLES)
def revoke(principal_id: str) -> BaseResponse:
    with writing() as call:
        principals.revoke_tokens(call.session, principal_id, now=call.now)
        web_sessions.sign_out_everywhere(call.session, principal_id, now=call.now)
    return done("web.admin.principals", "tokens-revoked")


@bp.route("/principals/<principal_id>/reset-totp", methods=["POST"])
@page(*ROLES)
def reset_totp(principal_id: str) -> BaseResponse:
    with writing() as call:
        totp.reset(call.session, principal_id, now=call.now)
    return done("web.admin.principals", "totp-reset")


@bp.route("/keys")
@page(*ROLES)
def keys() -> tuple[str, int]:
    found = key_status.status(current_vault())
    return render("admin/keys.html", title="Keys", status_=found)
