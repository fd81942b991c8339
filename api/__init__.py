"""CivicVault's HTTP API: a thin Flask shell around the vault's services.

``create_app(settings)`` builds an app; nothing is created at import time.
"""

import logging

from flask import Flask
from flask_smorest import Api

from api import errors
from api.context import EXTENSION
from api.schemas import ProblemOut
from vault.core.config import Settings
from vault.runtime import Vault

API_TITLE = "CivicVault"


class _Api(Api):
    # Document errors as what they are: RFC 9457 problems (api/errors.py).
    ERROR_SCHEMA = ProblemOut


API_VERSION = "v1"


def create_app(settings: Settings | None = None, *, vault: Vault | None = None) -> Flask:
    """Build the API for ``settings`` (default: from the environment).

    Raises ``vault.errors.ConfigError`` when there is no master key or the
    database is not initialised: no key, no start.
    """
    if vault is None:
        vault = Vault.open(settings or Settings.from_env())
    app = Flask("civicvault")
    app.config.update(
        MAX_CONTENT_LENGTH=vault.settings.max_request_bytes,
        API_TITLE=API_TITLE,
        API_VERSION=API_VERSION,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/",
    )
    app.extensions[EXTENSION] = vault
    api = _Api(
        app,
        spec_kwargs={
            "info": {"description": "Encrypted health and tenancy records under residents' consent."},
            "security": [{"bearerAuth": []}],
        },
    )
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    from api.views import consents, health, ledger, me, records, trail

    api.register_blueprint(health.blp)
    api.register_blueprint(me.blp)
    api.register_blueprint(records.blp)
    api.register_blueprint(consents.blp)
    api.register_blueprint(ledger.blp)
    api.register_blueprint(trail.blp)
    from api.views import anchors  # checkpoints anchored on an EVM chain

    api.register_blueprint(anchors.blp)
    from api.views import audit

    api.register_blueprint(audit.blp)
    from api.views import erasure  # key management: a resident's erasure

    api.register_blueprint(erasure.blp)
    errors.register(app)  # after Api(), replacing flask-smorest's JSON errors
    logging.getLogger("civicvault").setLevel(logging.INFO)
    return app
