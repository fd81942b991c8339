"""What every page shares: rendering with the layout's context, the navigation of each role, notices.

``render(template, title=..., **context)`` renders a page with what the
layout needs: the signed-in principal (name and role), the CSRF token for
its forms, the navigation of the role, and the notices to show. A view
that redirects after a post names its notice with ``notice=<key>`` in the
query (``done(...)``); only keys listed in ``NOTICES`` are shown, so no
text from a URL ever reaches a page.
"""

from dataclasses import dataclass
from typing import Any

from flask import current_app, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from api.context import current_vault
from api.web.session import csrf_token

ROLE_LABELS = {
    "resident": "Resident",
    "clinic": "Clinic",
    "landlord": "Landlord",
    "compliance": "Compliance",
    "admin": "Admin",
    "agency": "Agency",
}


@dataclass(frozen=True)
class NavItem:
    label: str
    endpoint: str


# Each role's pages, in the order of its menu. An endpoint not (yet) registered is left out.
NAV: dict[str, list[NavItem]] = {
    "resident": [
        NavItem("Home", "web.resident.home"),
        NavItem("Access history", "web.resident.history"),
        NavItem("Requests", "web.resident.requests"),
        NavItem("Sharing", "web.resident.sharing"),
        NavItem("Share code", "web.share.code"),
        NavItem("Records", "web.resident.records"),
        NavItem("Delegates", "web.resident.delegates"),
        NavItem("My rights", "web.resident.rights"),
    ],
    "clinic": [
        NavItem("Home", "web.provider.home"),
        NavItem("Start a request", "web.provider.new_request"),
        NavItem("Requests", "web.provider.requests"),
        NavItem("Residents", "web.provider.residents"),
        NavItem("Attestations", "web.provider.attestations"),
        NavItem("Break-glass", "web.provider.break_glass"),
        NavItem("My access history", "web.provider.history"),
    ],
    "landlord": [
        NavItem("Home", "web.provider.home"),
        NavItem("Start a request", "web.provider.new_request"),
        NavItem("Requests", "web.provider.requests"),
        NavItem("Residents", "web.provider.residents"),
        NavItem("Attestations", "web.provider.attestations"),
        NavItem("My access history", "web.provider.history"),
    ],
    "compliance": [
        NavItem("Home", "web.compliance.home"),
        NavItem("Trail", "web.compliance.trail"),
        NavItem("Break-glass review", "web.compliance.break_glass"),
        NavItem("Flags", "web.compliance.flags"),
        NavItem("Look up a resident", "web.compliance.lookup"),
        NavItem("Ledger", "web.compliance.ledger"),
    ],
    "agency": [
        NavItem("Home", "web.agency.home"),
    ],
    "admin": [
        NavItem("Principals", "web.admin.principals"),
        NavItem("Keys", "web.admin.keys"),
    ],
}

# Notices a redirect may ask for (``?notice=<key>``): the only texts a URL can put on a page.
NOTICES: dict[str, tuple[str, str]] = {
    "signed-out": ("info", "You have signed out."),
    "signed-out-everywhere": ("success", "You have signed out on every device."),
    "session-ended": ("warning", "Your session ended; sign in again to go on."),
    "password-set": ("success", "Your password is set. Sign in with it now."),
    "enrolled": ("success", "Two-step sign-in is on. You will be asked for a code each time you sign in."),
    "approved": ("success", "The request is approved."),
    "denied": ("success", "The request is denied."),
    "granted": ("success", "The grant is made."),
    "revoked": ("success", "The grant is revoked: access stops now."),
    "requested": ("success", "The request is sent; the resident will see it."),
    "attested": ("success", "The vault answered; the attestation is signed and recorded in the resident's log."),
    "record-added": ("success", "The record is added."),
    "delegate-appointed": ("success", "The delegate is appointed."),
    "delegate-ended": ("success", "The delegation has ended."),
    "acknowledged": ("success", "The break-glass access is acknowledged."),
    "flag-resolved": ("success", "The flag is resolved."),
    "principal-created": ("success", "The principal is created."),
    "tokens-revoked": ("success", "The principal's tokens and sessions are revoked."),
    "break-glass": ("warning", "Emergency access is declared. It is logged and will be reviewed."),
    "totp-reset": ("success", "Two-step sign-in is reset: they set it up again at their next sign-in."),
}


def nav_for(role: str) -> list[dict[str, Any]]:
    endpoints = current_app.view_functions
    items = []
    for item in NAV.get(role, []):
        if item.endpoint not in endpoints:
            continue
        url = url_for(item.endpoint)
        current = request.endpoint == item.endpoint
        items.append({"label": item.label, "url": url, "current": current})
    return items


def notices() -> list[dict[str, str]]:
    found = []
    for key in request.args.getlist("notice")[:3]:
        if key in NOTICES:
            kind, text = NOTICES[key]
            found.append({"kind": kind, "text": text})
    return found


def render(template: str, *, title: str, status: int = 200, **context: Any) -> tuple[str, int]:
    """A page in the layout; ``context`` is the template's own."""
    info = g.get("web_session")
    me = None
    nav: list[dict[str, Any]] = []
    if info is not None and info.second_factor_done:
        me = {"id": info.principal_id, "role": info.role, "role_label": ROLE_LABELS.get(info.role, info.role)}
        me["name"] = g.get("my_name") or _name_of(info.principal_id)
        nav = nav_for(info.role)
    context.setdefault("notices", notices())
    html = render_template(
        template,
        title=title,
        me=me,
        nav=nav,
        csrf=csrf_token(),
        idle_minutes=current_vault().settings.web_sessions.idle_minutes,
        endpoints=current_app.view_functions,
        **context,
    )
    return html, status


def _name_of(principal_id: str) -> str:
    from vault.identity.principals import get_principal

    vault = current_vault()
    with vault.read_transaction() as session:
        name: str = get_principal(session, vault.keys, principal_id).name
    g.my_name = name
    return name


def done(endpoint: str, notice: str, **values: Any) -> BaseResponse:
    """Redirect after a post (303: the browser gets the page, never re-posts), with a notice."""
    return redirect(url_for(endpoint, notice=notice, **values), code=303)
