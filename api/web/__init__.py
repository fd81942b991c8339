"""The web app: server-rendered pages for residents, clinics and landlords, compliance officers and admins.

The pages call the same vault services as the JSON API, in the same process
and through the same ``writing()`` / ``reading()`` transactions
(api/context.py): a page enforces exactly what the API enforces. htmx
(vendored, ``static/vendor``) makes some forms and filters partial-page;
every page reads and every form posts with JavaScript off.

- ``session``: the session cookie, ``page(*roles)``, CSRF on posts;
- ``pages``: ``render`` with the layout's context, each role's navigation;
- ``auth``: sign in (password, then a TOTP code or enrolment), sign out,
  sign out everywhere, invitation links;
- ``resident``, ``provider`` (clinics and landlords; ``provider_attest``
  their attestations), ``compliance``,
  ``admin``, ``agency``: each role's pages, under ``/resident``, ``/provider``,
  ``/compliance``, ``/admin`` and ``/agency``;
- ``share``: share codes (a resident's page, a clinic's or landlord's form);
- ``proofs``: the JSON a history page fetches to check a line's proof in the browser;
- ``assets``: ``/assets/...``, the app's own and the vendored files only.

Every response of a page carries a Content-Security-Policy that lets the
browser load scripts, styles, fonts and images from this origin only, run
no inline script or style, post forms only here, and be framed by nobody.
Errors are pages (``error.html``) with the status and the service's message,
never problem+json; an unauthenticated page request goes to sign-in.
"""

import logging
from http import HTTPStatus
from pathlib import Path

from flask import Blueprint, Flask, Response, redirect, request, send_from_directory, url_for
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import NotFound as HTTPNotFound
from werkzeug.wrappers import Response as BaseResponse

from api import limits
from api.errors import STATUS_BY_ERROR
from api.web.pages import render
from api.web.session import clear_cookie, current_session
from vault.core import errors

log = logging.getLogger("civicvault.web")

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"

PAGE_CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)

# What /assets/ serves: these suffixes, under static/ (licences and READMEs are not served).
ASSET_TYPES = {
    ".css": "text/css",
    ".js": "text/javascript",
    ".woff2": "font/woff2",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".gif": "image/gif",
    ".jpg": "image/jpeg",
    ".webp": "image/webp",
}

web = Blueprint("web", __name__, template_folder="templates")


@web.route("/")
def home() -> BaseResponse:
    """Each role's home page; the sign-in page for a browser that is not signed in."""
    try:
        info = current_session()
    except errors.Unauthenticated:
        return redirect(url_for("web.auth.sign_in"))
    return redirect(url_for(HOMES.get(info.role, "web.auth.sign_in")))


HOMES = {
    "resident": "web.resident.home",
    "clinic": "web.provider.home",
    "landlord": "web.provider.home",
    "compliance": "web.compliance.home",
    "admin": "web.admin.principals",
    "agency": "web.agency.home",
}


@web.route("/assets/<path:name>")
def asset(name: str) -> Response:
    path = (STATIC / name).resolve()
    if STATIC not in path.parents or path.suffix not in ASSET_TYPES or not path.is_file():
        raise HTTPNotFound()
    response = send_from_directory(STATIC, str(path.relative_to(STATIC)), mimetype=ASSET_TYPES[path.suffix])
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


def asset_url(name: str) -> str:
    return url_for("web.asset", name=name)


def _page_error(status: int, detail: str, *, title: str | None = None, retry_after: int | None = None) -> Response:
    html, _ = render(
        "error.html",
        title=title or HTTPStatus(status).phrase,
        detail=detail,
        retry_after=retry_after,
        status=status,
    )
    response = Response(html, status=status, mimetype="text/html")
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _vault_error(exc: errors.VaultError) -> BaseResponse:
    if isinstance(exc, errors.Unauthenticated):
        if request.method == "GET":
            return clear_cookie(redirect(url_for("web.auth.sign_in", notice="session-ended")))
        return clear_cookie(_page_error(401, exc.detail, title="Sign in again"))
    status = next((s for cls, s in STATUS_BY_ERROR.items() if isinstance(exc, cls)), 400)
    if status >= 500:
        log.error("page failed: %s", type(exc).__name__)
        return _page_error(status, "The vault could not complete this; nothing was changed. Try again later.")
    return _page_error(status, exc.detail)


def _http_error(exc: HTTPException) -> Response:
    if isinstance(exc, limits.RateLimited) or exc.code == 429:
        seconds = limits.retry_after(exc)  # type: ignore[arg-type]
        return _page_error(429, limits.describe(exc, seconds), retry_after=seconds)  # type: ignore[arg-type]
    status = exc.code or 500
    if status == 404:
        return _page_error(404, "There is no such page, or it is not yours to see.", title="Page not found")
    if status == 413:
        return _page_error(413, "What you sent is too large.")
    return _page_error(status, exc.description or HTTPStatus(status).phrase)


def _database_down(exc: OperationalError) -> Response:
    log.error("page failed: the database is unavailable")
    return _page_error(503, "The vault's database is unavailable; try again later.")


def _unexpected(exc: Exception) -> Response:
    log.exception("unhandled error on a page")
    return _page_error(500, "Something went wrong on our side; nothing was changed. Try again later.")


@web.after_request
def _page_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = PAGE_CONTENT_SECURITY_POLICY
    if response.mimetype == "text/html":
        response.headers["Cache-Control"] = "no-store"
    return response


def wants_page() -> bool:
    """A request outside the API that a browser made for a page (for the app-wide 404 and 405)."""
    path = request.path
    if path.startswith(("/api/", "/openapi.json", "/healthz", "/docs")):
        return False
    accept = request.accept_mimetypes
    if not accept:
        return True  # no preference: outside the API, a page
    return accept.best_match(["text/html", "application/json", "application/problem+json"]) == "text/html"


for _error, _handler in (
    (errors.VaultError, _vault_error),
    (HTTPException, _http_error),
    (OperationalError, _database_down),
    (Exception, _unexpected),
):
    web.register_error_handler(_error, _handler)

from api.web import admin, agency, auth, compliance, proofs, provider, provider_attest, resident, share  # noqa: E402, F401

for _child in (auth.bp, resident.bp, provider.bp, compliance.bp, admin.bp, agency.bp, share.bp, proofs.bp):
    web.register_blueprint(_child)


def register(app: Flask) -> None:
    """Register the pages; call after the API's blueprints and before ``errors.register``."""
    app.register_blueprint(web)
    app.jinja_env.globals["asset"] = asset_url
    app.extensions["civicvault.page_error"] = _http_error
    app.extensions["civicvault.wants_page"] = wants_page
    from vault.identity import passwords

    passwords.warm_up()  # the dummy hash exists before the first sign-in with an unknown login
