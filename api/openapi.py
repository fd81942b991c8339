"""The OpenAPI document: every error documented as what it is, an RFC 9457 problem.

flask-smorest documents error responses by reference to components named after
the HTTP status (``BAD_REQUEST``, ``NOT_FOUND``, ...) and adds a ``default``
response to every operation. ``Api`` registers those components as
``application/problem+json`` with the ``ProblemOut`` schema and a real example
each (the bodies api/errors.py sends); ``Blueprint.problems(...)`` lists on an
operation the statuses it can really answer with. tests/api/test_openapi.py
walks the document and holds every operation to this.
"""

from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar

import flask_smorest
from flask_smorest.utils import prepare_response

from api.errors import PROBLEM_JSON
from api.parsing import StrictParser
from api.schemas.common import ProblemOut

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_ERROR = "DEFAULT_ERROR"


def _problem(status: int, detail: str, *, code: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "type": f"urn:civicvault:problem:{code}" if code else "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        **extra,
    }


# status -> (what it means in this API, an example body as api/errors.py sends it)
PROBLEMS: dict[int, tuple[str, dict[str, Any]]] = {
    400: (
        "Invalid input: a malformed, missing or unknown field (named in `errors`), "
        "or a value the service refuses (urn:civicvault:problem:invalid-input)",
        _problem(
            400,
            "The request is malformed or has invalid, missing or unknown fields.",
            errors={
                "json": {
                    "purpose": [
                        "Must be one of: treatment, payment, operations, research, emergency, "
                        "tenancy-screening, tenancy-management, legal."
                    ]
                }
            },
        ),
    ),
    401: (
        "No bearer token, or one that is unknown or revoked",
        _problem(401, "The bearer token is unknown or has been revoked.", code="unauthenticated"),
    ),
    403: (
        "The caller's role may not do this, or no live consent covers it (`reason` names why)",
        _problem(403, "The resident's consent has expired.", code="consent-denied", reason="expired"),
    ),
    404: (
        "No such id, or one the caller may not know of: both get the same answer",
        _problem(404, "No such resource.", code="not-found"),
    ),
    409: (
        "The request conflicts with the current state (already decided, changed since, rollback) "
        "or with a concurrent change; read again or retry. An attestation no counted record can answer "
        "is urn:civicvault:problem:no-evidence",
        _problem(409, "The request has already been approved.", code="conflict"),
    ),
    413: (
        "The request body is over the size limit",
        _problem(413, "The data value transmitted exceeds the capacity limit."),
    ),
    415: (
        "The request body is not application/json",
        _problem(415, "Send the request body as application/json."),
    ),
    429: (
        "Too many failed authentications from this address, or too many requests of this kind from this caller "
        "(break-glass declarations, access requests, attestations, erasure attempts); wait the `Retry-After` seconds "
        "(urn:civicvault:problem:rate-limited)",
        _problem(429, "Too many failed authentications from this address; retry in 42 seconds.", code="rate-limited"),
    ),
    503: (
        "The database does not answer (retry later), or the audit trail cannot record the request "
        "(urn:civicvault:problem:ledger-unavailable: an incident for the operator; nothing was done, no content "
        "was released, and there is no Retry-After)",
        _problem(503, "The database is unavailable; retry later."),
    ),
}
# Every operation that takes a token can also answer these: too many failed authentications from one
# address (429), and a database or audit trail that is unavailable (503).
WITH_A_TOKEN = (429, 503)
# Anything else (an unexpected failure): a bare 500 that says nothing of the cause.
DEFAULT_PROBLEM = ("Any other error, as a problem", _problem(500, "The server failed to complete the request."))


def _problem_response(description: str, example: dict[str, Any], spec: Any) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "schema": ProblemOut, "example": example}
    prepare_response(response, spec, PROBLEM_JSON)
    if example["status"] == 401:
        response["headers"] = {
            "WWW-Authenticate": {
                "description": "The scheme to authenticate with (RFC 6750)",
                "schema": {"type": "string", "example": 'Bearer realm="civicvault"'},
            }
        }
    if example["status"] == 429:
        response["headers"] = {
            "Retry-After": {
                "description": "Seconds to wait before the next request of this kind (RFC 9110, section 10.2.3)",
                "schema": {"type": "integer", "minimum": 1, "example": 42},
            }
        }
    return response


class Api(flask_smorest.Api):
    """flask-smorest's Api with problem+json error components."""

    ERROR_SCHEMA = ProblemOut
    DEFAULT_ERROR_RESPONSE_NAME = DEFAULT_ERROR

    def _register_responses(self) -> None:
        # Replaces flask-smorest's components, which are application/json with no example.
        for status in HTTPStatus:
            if status < 400:
                continue
            description, example = PROBLEMS.get(status, (status.phrase, _problem(status, status.description)))
            self.spec.components.response(status.name, _problem_response(description, example, self.spec), lazy=True)
        self.spec.components.response(DEFAULT_ERROR, _problem_response(*DEFAULT_PROBLEM, self.spec), lazy=True)


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint with the strict parser, and ``problems`` to document error answers."""

    ARGUMENTS_PARSER = StrictParser()

    def problems(self, *statuses: int) -> Callable[[F], F]:
        """Document that the operation can answer with these error statuses (problem+json).

        An operation that needs a token (401) can also answer ``WITH_A_TOKEN`` (429, 503).
        """
        if 401 in statuses:
            statuses = tuple(dict.fromkeys((*statuses, *WITH_A_TOKEN)))
        unknown = [s for s in statuses if s not in PROBLEMS]
        if unknown:
            raise ValueError(f"no problem documented for status {unknown}")

        def decorator(func: F) -> F:
            for status in statuses:
                func = self.alt_response(status, response=HTTPStatus(status).name)(func)
            return func

        return decorator
