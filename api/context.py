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

``call.caller`` is the principal ``authenticate_request`` found for this
request; asked for in a request that was not authenticated it raises
``Unauthenticated`` (401), never answering with nobody's or someone else's
identity.
"""

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

from flask import current_app, g, request
from sqlalchemy.orm import Session

from vault.core.caller import Caller
from vault.core.config import ConsentLimits, Settings
from vault.core.errors import Unauthenticated
from vault.identity.principals import authenticate
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


def current_caller() -> Caller:
    """The authenticated caller of this request; 401 if the request was not authenticated."""
    caller: Caller | None = g.get("caller")
    if caller is None:
        raise Unauthenticated("Send 'Authorization: Bearer <token>'.")
    return caller


def authenticate_request() -> None:
    """``before_request`` hook of the API blueprints: bearer token -> caller.

    A failure counts against the client's address (api/limits.py): past the
    limit it is answered 429 rather than 401.
    """
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    try:
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("Send 'Authorization: Bearer <token>'.")
        with current_vault().read_transaction() as session:
            g.caller = authenticate(session, token.strip())
    except Unauthenticated:
        throttle = current_app.extensions.get(THROTTLE)
        if throttle is not None:
            throttle.failed_authentication()
        raise


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
    with vault.transaction() as session:
        yield Call(vault=vault, session=session, now=vault.now())


@contextlib.contextmanager
def reading() -> Iterator[Call]:
    """A read-only transaction for this request (on SQLite it never waits for a writer)."""
    vault = current_vault()
    with vault.read_transaction() as session:
        yield Call(vault=vault, session=session, now=vault.now())
