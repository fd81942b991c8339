"""Every error as ``application/problem+json`` (RFC 9457), mapped in one place.

Domain errors from ``vault.errors`` carry a stable ``code``; the problem
``type`` is ``urn:civicvault:problem:<code>``. Plain HTTP errors use
``about:blank`` with the status phrase as the title. Unexpected exceptions are
logged with a traceback on the server and answered with a bare 500 that says
nothing about the cause. A rate limit (api/limits.py) is a 429 with
``Retry-After``; a ledger that cannot append is a 503 ``ledger-unavailable``,
logged as an error and with no retry hint: an incident, not a conflict.
"""

import logging
from http import HTTPStatus

from flask import Flask, Response, current_app, json, request
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from werkzeug.exceptions import HTTPException, TooManyRequests

from api import limits
from vault.core import errors

log = logging.getLogger("civicvault.api")

PROBLEM_JSON = "application/problem+json"

STATUS_BY_ERROR: dict[type[errors.VaultError], int] = {
    errors.InvalidInput: 400,
    errors.Unauthenticated: 401,
    errors.Forbidden: 403,
    errors.ConsentDenied: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.RecordUnreadable: 500,
    errors.LedgerIntegrityError: 500,
    errors.ConfigError: 500,
    errors.LedgerUnavailable: 503,
    errors.LedgerBusy: 503,
}


def problem(status: int, *, detail: str, type_: str = "about:blank", title: str | None = None, **extra) -> Response:
    body = {"type": type_, "title": title or HTTPStatus(status).phrase, "status": status, "detail": detail, **extra}
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="civicvault"'
    return response


def _vault_error(exc: errors.VaultError) -> Response:
    status = next((s for cls, s in STATUS_BY_ERROR.items() if isinstance(exc, cls)), 400)
    extra = {"reason": exc.reason} if isinstance(exc, errors.ConsentDenied) else {}
    detail = exc.detail
    if isinstance(exc, errors.LedgerUnavailable):
        # An integrity incident: loud in the log (the cause's type only, never its SQL or values),
        # and no Retry-After: retrying cannot help until an operator has looked.
        cause = exc.__cause__
        cause = getattr(cause, "orig", None) or cause
        log.error(
            "LEDGER UNAVAILABLE: an event could not be appended; the action was refused (cause: %s)",
            type(cause).__name__ if cause is not None else "unknown",
        )
    elif status >= 500:
        log.error("%s: %s", type(exc).__name__, exc.detail)
        if isinstance(exc, errors.ConfigError):
            detail = "The server is misconfigured."  # paths and settings stay in the log
    response = problem(status, detail=detail, type_=f"urn:civicvault:problem:{exc.code}", **extra)
    if isinstance(exc, errors.LedgerBusy):
        response.headers["Retry-After"] = "5"  # back-pressure: the backlog drains when the sequencer runs
    return response


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    wants_page = current_app.extensions.get("civicvault.wants_page")
    if request.blueprint is None and wants_page is not None and wants_page():
        # A browser's unknown page (no route matched): the web app's error page, not problem+json.
        page: Response = current_app.extensions["civicvault.page_error"](exc)
        return page
    data = getattr(exc, "data", None) or {}
    messages = data.get("messages")
    if messages is not None:
        # webargs/marshmallow validation: say which fields, as a field -> messages map.
        detail = "The request is malformed or has invalid, missing or unknown fields."
        if messages == {"json": ["Invalid JSON body."]}:
            detail = "The request body is not valid JSON."
        response = problem(status, detail=detail, errors=messages)
    else:
        response = problem(status, detail=exc.description or HTTPStatus(status).description)
    if status == 405 and exc.get_response().headers.get("Allow"):
        response.headers["Allow"] = exc.get_response().headers["Allow"]
    return response


def _too_many_requests(exc: TooManyRequests) -> Response:
    seconds = limits.retry_after(exc)
    response = problem(429, detail=limits.describe(exc, seconds), type_="urn:civicvault:problem:rate-limited")
    response.headers["Retry-After"] = str(seconds)
    return response


def _integrity_error(exc: IntegrityError) -> Response:
    log.warning("integrity error answered as 409: %s", type(exc.orig).__name__)
    return problem(
        409, detail="The request conflicts with a concurrent change; retry it.", type_="urn:civicvault:problem:conflict"
    )


def _data_error(exc: DataError) -> Response:
    log.warning("database refused a value: %s", type(exc.orig).__name__)
    return problem(400, detail="The request holds a value the database cannot store.")


def _database_down(exc: OperationalError) -> Response:
    log.error("database error: %s", exc.orig)
    return problem(503, detail="The database is unavailable; retry later.")


def _unexpected(exc: Exception) -> Response:
    log.exception("unhandled error")
    return problem(500, detail="The server failed to complete the request.")


def register(app: Flask) -> None:
    app.register_error_handler(errors.VaultError, _vault_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(TooManyRequests, _too_many_requests)
    app.register_error_handler(IntegrityError, _integrity_error)
    app.register_error_handler(DataError, _data_error)
    app.register_error_handler(OperationalError, _database_down)
    app.register_error_handler(Exception, _unexpected)
