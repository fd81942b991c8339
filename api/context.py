"""Per-request context: the vault of this app, the authenticated caller, and one way into a transaction.

Every view is parse -> call -> serialise, and the call is always made the same
way: open a transaction, hand the service the session, the key store, the
caller and one ``now``, and let the transaction end before anything is sent::

    @blp.arguments(GrantIn)
    @blp.response(201, GrantOut)
    def post(self, body: Body) -> Created:
        with writing() as call:
            grant = consent.create_grant(call.session, call.caller, limits=call.limits, now=call.now, **body)
        return grant, 201, {...}

``writing()`` commits when the block ends without an error and rolls back on
any error (a refusal's events are then recorded in a transaction of their
own: ``Vault.transaction``); ``reading()`` is a read-only transaction, which on
SQLite never waits for a writer and must not write. Content leaves the server
only after the block, so only after the commit (docs/architecture.md).

Authentication joins the request's transaction. ``authenticate_request``
(the blueprints' ``before_request`` hook) refuses a request without a
well-formed bearer token at once and keeps the token; ``writing()`` and
``reading()`` look it up with their own session, as the first statement of
the transaction, so a granted read is one transaction, not two, and a token
revoked by any transaction that committed before this one began is refused.
``current_caller()`` outside a transaction (the erasure view, the per-caller
rate limits) looks the token up in a read transaction of its own. A request
whose token was never looked up by the time its answer is ready (its body or
query failed to parse, say) has it looked up then, and a bad token turns the
answer into the 401, as if it had been checked first: no answer but a 401
leaves for a bad token. Every failed lookup is counted by the throttle
(api/limits.py).

``call.caller`` is the principal found for this request's token; asked for
in a request that was not authenticated it raises ``Unauthenticated`` (401),
never answering with nobody's or someone else's identity.
"""

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

from flask import Response, after_this_request, current_app, g, request
from sqlalchemy.orm import Session

from vault.core.caller import Caller
from vault.core.config import ConsentLimits, Settings
from vault.core.errors import Unauthenticated
from vault.identity.principals import authenticate, check_token_form
from vault.keys.keys import KeyStore
from vault.runtime import Vault

EXTENSION = "civicvault"
THROTTLE = "civicvault.throttle"  # api.limits.Throttle, when the app has one

# What views take and give: flask-smorest passes parsed arguments as dicts and
# serialises whatever a view returns (an object, a dict, or a (body, status,
# headers) tuple) with the operation's response schema.
Query: TypeAlias = dict[str, Any]
Body: TypeAlias = dict[str, Any]
Created: TypeAlias = tuple[object, int, dict[str, str]]


def current_vault() -> Vault:
    vault: Vault = current_app.extensions[EXTENSION]
    return vault


_NO_TOKEN = "Send 'Authorization: Bearer <token>'."


class _TokenRefused(Unauthenticated):
    """This request's bearer token was looked up and refused (counted by the throttle once out of the transaction)."""


def _token_refused(error: Unauthenticated) -> _TokenRefused:
    g.pop("bearer_token", None)  # looked up once per request, never again
    return _TokenRefused(error.detail)


def _count_failure() -> None:
    """Count a failed authentication from this address; ``RateLimited`` (429) past the limit."""
    throttle = current_app.extensions.get(THROTTLE)
    if throttle is not None:
        throttle.failed_authentication()


def _join(session: Session) -> None:
    """Look this request's pending token up with ``session``, the request's own transaction."""
    token: str | None = g.get("bearer_token")
    if token is None or g.get("caller") is not None:
        return
    try:
        g.caller = authenticate(session, token)
    except Unauthenticated as error:
        raise _token_refused(error) from None
    g.pop("bearer_token", None)


def current_caller() -> Caller:
    """The authenticated caller of this request; 401 if the request was not authenticated.

    Outside ``writing()`` / ``reading()`` a token not yet looked up is looked
    up in a read transaction of its own.
    """
    caller: Caller | None = g.get("caller")
    if caller is None and g.get("bearer_token") is not None:
        try:
            with current_vault().read_transaction() as session:
                _join(session)
        except _TokenRefused:
            _count_failure()
            raise
        caller = g.get("caller")
    if caller is None:
        raise Unauthenticated(_NO_TOKEN)
    return caller


def authenticate_request() -> None:
    """``before_request`` hook of the API blueprints: check the bearer token's form and keep it for the transaction.

    No token, another scheme or a malformed token: 401 at once. A failure
    counts against the client's address (api/limits.py): past the limit it
    is answered 429 rather than 401.
    """
    g.pop("caller", None)  # nothing carries over from an earlier request in the same app context
    g.pop("bearer_token", None)
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    try:
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated(_NO_TOKEN)
        g.bearer_token = check_token_form(token.strip())
    except Unauthenticated:
        _count_failure()
        raise
    if _limited_per_caller():
        # The limiter (api/limits.py) names the caller before the view runs; a refusal
        # raised inside it would be taken for its storage failing. Look the token up here.
        current_caller()
        return
    after_this_request(_looked_up_before_answering)


def _limited_per_caller() -> bool:
    from api.limits import PER_CALLER  # api.limits imports this module

    return request.method == "POST" and request.endpoint in PER_CALLER


def _looked_up_before_answering(response: Response) -> Response:
    """No answer leaves before the token was looked up: one nobody looked up (a parse error) is looked up now.

    A bad token replaces the answer with the 401 (or the throttle's 429), so
    an unauthenticated client learns nothing from how its request would
    have been parsed or answered.
    """
    if g.get("bearer_token") is None:
        return response
    try:
        current_caller()
    except Exception as error:  # every failure is answered by the app's own error handlers
        return current_app.make_response(current_app.handle_user_exception(error))
    return response


@dataclass(frozen=True)
class Call:
    """What a service needs from one request: a session inside a transaction, the keys, the caller, the time."""

    vault: Vault
    session: Session
    now: datetime

    @property
    def caller(self) -> Caller:
        return current_caller()

    @property
    def keys(self) -> KeyStore:
        return self.vault.keys

    @property
    def limits(self) -> ConsentLimits:
        return self.vault.limits

    @property
    def settings(self) -> Settings:
        return self.vault.settings


@contextlib.contextmanager
def writing() -> Iterator[Call]:
    """One unit of work for this request: committed when the block ends, rolled back on any error."""
    vault = current_vault()
    try:
        with vault.transaction() as session:
            _join(session)
            yield Call(vault=vault, session=session, now=vault.now())
    except _TokenRefused:
        _count_failure()  # after the rollback: the throttle may wait on its storage
        raise


@contextlib.contextmanager
def reading() -> Iterator[Call]:
    """A read-only transaction for this request (on SQLite it never waits for a writer)."""
    vault = current_vault()
    try:
        with vault.read_transaction() as session:
            _join(session)
            yield Call(vault=vault, session=session, now=vault.now())
    except _TokenRefused:
        _count_failure()
        raise
