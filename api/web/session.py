"""A signed-in browser: the session cookie, the page's caller, and CSRF on every form that changes something.

The cookie holds the web session's random token (vault/identity/web_sessions.py
keeps only its hash). It is ``HttpOnly`` (no script reads it), ``SameSite=Lax``
(another site's form post does not carry it), ``Path=/`` and, when the page
was served over TLS, ``Secure`` under the ``__Host-`` prefix (the browser then
refuses it from plain HTTP or from a subdomain).

``page()`` (a decorator) lets a view run only for a signed-in principal of the
given roles: the cookie's session is checked in a write transaction of its
own (the check moves the idle clock forward), and the caller is then the
same ``g.caller`` the JSON API's views use, so the view's ``writing()`` /
``reading()`` transaction and every service check are the API's own. No
session, an ended one (idle, too old, signed out, erased) or one still
waiting for its second factor: the browser goes to the sign-in page, with
the page it asked for kept for after. A signed-in principal of another
role gets a 404, as for an unknown page: a page of another role does not
exist for them.

CSRF: every ``POST`` to a page carries the session's CSRF token, in the
form field ``csrf_token`` or (htmx) the ``X-CSRF-Token`` header. Without
it, or with another session's, the post is refused (403) before the view
runs. Sign-in and invitation forms, which have no session yet, are
protected by ``SameSite`` and by the ``Origin`` check below, which every
post passes through: a post whose ``Origin`` names another site is refused.
"""

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from flask import g, redirect, request, url_for
from werkzeug.exceptions import NotFound as HTTPNotFound
from werkzeug.wrappers import Response as BaseResponse

from api.context import current_vault
from vault.core.caller import Caller
from vault.core.errors import Forbidden, Unauthenticated
from vault.identity import web_sessions
from vault.identity.web_sessions import WebSessionInfo

COOKIE = "civicvault_session"
SECURE_COOKIE = "__Host-civicvault_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"

F = TypeVar("F", bound=Callable[..., Any])


def _is_secure() -> bool:
    return request.is_secure or current_vault().settings.hsts_seconds is not None


def cookie_name() -> str:
    return SECURE_COOKIE if _is_secure() else COOKIE


def cookie_token() -> str | None:
    return request.cookies.get(SECURE_COOKIE) or request.cookies.get(COOKIE)


def set_cookie(response: BaseResponse, token: str) -> BaseResponse:
    """Put a session token in the cookie: a browser-session cookie (gone when the browser closes)."""
    response.set_cookie(cookie_name(), token, httponly=True, samesite="Lax", secure=_is_secure(), path="/")
    return response


def clear_cookie(response: BaseResponse) -> BaseResponse:
    for name in (COOKIE, SECURE_COOKIE):
        if name in request.cookies:
            response.delete_cookie(name, path="/", secure=name == SECURE_COOKIE, httponly=True, samesite="Lax")
    return response


def check_origin() -> None:
    """Refuse a post whose ``Origin`` (or, lacking one, ``Referer``) is another site's."""
    origin = request.headers.get("Origin") or request.headers.get("Referer")
    if not origin or origin == "null":
        return  # a browser always sends Origin on a cross-site post; a missing one is not a browser's cross-site post
    parts = urlsplit(origin)
    if parts.netloc != request.host:
        raise Forbidden("The form did not come from this site.")


def current_session(*, require_second_factor: bool = True) -> WebSessionInfo:
    """The live web session of this request's cookie, or ``Unauthenticated``; kept in ``g`` for the request."""
    info: WebSessionInfo | None = g.get("web_session")
    if info is not None and (info.second_factor_done or not require_second_factor):
        return info
    token = cookie_token()
    if token is None:
        raise Unauthenticated("Sign in to continue.")
    vault = current_vault()
    with vault.transaction() as session:
        info = web_sessions.check(
            session,
            token,
            now=vault.now(),
            policy=vault.settings.web_sessions,
            require_second_factor=require_second_factor,
        )
    g.web_session = info
    if info.second_factor_done:
        g.caller = Caller(id=info.principal_id, role=info.role)
    return info


def _half_signed_in() -> bool:
    """Whether this request's cookie is a live session still waiting for its second factor."""
    if cookie_token() is None:
        return False
    try:
        current_session(require_second_factor=False)
    except Unauthenticated:
        return False
    return True


def csrf_token() -> str:
    info: WebSessionInfo | None = g.get("web_session")
    return web_sessions.csrf_token(info) if info is not None else ""


def check_csrf() -> None:
    info = current_session(require_second_factor=False)
    given = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    web_sessions.check_csrf(info, given)


def page(*roles: str) -> Callable[[F], F]:
    """A page for signed-in principals of ``roles`` (any role when none are named)."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            g.pop("caller", None)
            g.pop("bearer_token", None)
            try:
                info = current_session()
            except Unauthenticated:
                if request.method == "GET":
                    if _half_signed_in():
                        return redirect(url_for("web.auth.code", next=request.full_path.rstrip("?")))
                    ended = cookie_token() is not None  # a cookie whose session has ended: say so
                    values: dict[str, Any] = {"next": request.full_path.rstrip("?")}
                    if ended:
                        values["notice"] = "session-ended"
                    target = url_for("web.auth.sign_in", **values)
                    return clear_cookie(redirect(target))
                raise
            if roles and info.role not in roles:
                raise HTTPNotFound()
            if request.method not in ("GET", "HEAD"):
                check_origin()
                check_csrf()
            return view(*args, **kwargs)

        return cast(F, wrapper)

    return decorate


def caller() -> Caller:
    """The signed-in caller of a page (``page()`` has checked it)."""
    found: Caller | None = g.get("caller")
    if found is None:
        raise Unauthenticated("Sign in to continue.")
    return found
