"""CivicVault's HTTP API: a thin Flask shell around the vault's services.

``create_app(settings)`` builds an app; nothing is created at import time.

- ``context``: the vault, the caller, and ``writing()`` / ``reading()``, the one
  way every view calls a service inside a transaction;
- ``parsing``: strict request parsing (unknown fields, repeated keys and deep
  nesting refused, 400, 413, 415);
- ``openapi``: the ``Blueprint`` views use and the problem+json error responses
  of the OpenAPI document;
- ``errors``: every error as an RFC 9457 problem, mapped in one place;
- ``limits``: rate limits (Flask-Limiter): failed authentication per address,
  break-glass, access requests and erasure per caller;
- ``headers``: security headers on every response (no-store, nosniff, CSP, ...);
- ``schemas``: marshmallow schemas and examples, by context;
- ``views``: one module per context, each view parse -> call -> serialise;
- ``docs``: ``/docs``, Swagger UI served from vendored files (``static/``).
"""

import logging

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from api import docs, errors, headers, limits, web
from api.context import EXTENSION
from api.openapi import Api
from api.schemas.common import Timestamp
from vault.core.config import Settings
from vault.runtime import Vault

API_TITLE = "CivicVault"
API_VERSION = "v1"


def create_app(settings: Settings | None = None, *, vault: Vault | None = None) -> Flask:
    """Build the API for ``settings`` (default: from the environment).

    Raises ``vault.errors.ConfigError`` when there is no master key or the
    database is not initialised: no key, no start.
    """
    if vault is None:
        vault = Vault.open(settings or Settings.from_env())
    app = Flask("civicvault")
    if vault.settings.trusted_proxies:
        # The client's address (rate limits, the access log) from X-Forwarded-For, as set by that many proxies.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=vault.settings.trusted_proxies)  # type: ignore[method-assign]
    app.config.update(
        MAX_CONTENT_LENGTH=vault.settings.max_request_bytes,
        API_TITLE=API_TITLE,
        API_VERSION=API_VERSION,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        # /docs is api/docs.py's page, on vendored files: nothing from a CDN.
    )
    app.extensions[EXTENSION] = vault
    api = Api(
        app,
        spec_kwargs={
            "info": {"description": "Encrypted health and tenancy records under residents' consent."},
            "security": [{"bearerAuth": []}],
        },
    )
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    api.register_field(Timestamp, "string", "date-time")
    from api.views import (
        anchors,
        attestations,
        audit,
        consents,
        erasure,
        health,
        issuer_keys,
        ledger,
        me,
        records,
        share_codes,
        trail,
    )

    for view in (
        health,
        me,
        records,
        issuer_keys,
        consents,
        share_codes,
        attestations,
        ledger,
        trail,
        anchors,
        audit,
        erasure,
    ):
        api.register_blueprint(view.blp)
    app.register_blueprint(docs.blp)
    web.register(app)  # the pages: same services, cookies instead of bearer tokens
    limits.register(app, vault.settings.rate_limits)  # after the views it wraps
    headers.register(app, vault.settings)
    errors.register(app)  # after Api(), replacing flask-smorest's JSON errors
    logging.getLogger("civicvault").setLevel(logging.INFO)
    return app
