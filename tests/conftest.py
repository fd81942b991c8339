"""Shared fixtures: a fresh vault per test, on SQLite and (when configured) PostgreSQL.

Tests that take ``vault_``, ``app`` or ``client`` run once per backend:
``sqlite`` always, ``postgres`` when ``CIVICVAULT_TEST_POSTGRES_URL`` is set.
SQLite gets a copy of a migrated template file per test; PostgreSQL gets one
migrated schema per run, emptied between tests.
"""

import base64
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text

from vault.core.caller import Caller
from vault.core.clock import utcnow
from vault.core.config import Settings
from vault.identity import principals
from vault.keys import attestation_key
from vault.runtime import Vault, init_home
from vault.storage.db import make_engine
from vault.storage.models import Base

POSTGRES_URL = os.environ.get("CIVICVAULT_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgres"] if POSTGRES_URL else [])


def new_master_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("template")
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'vault.db'}", master_key=new_master_key())
    init_home(settings)
    return home / "vault.db"


@pytest.fixture(scope="session")
def postgres_schema_url(tmp_path_factory):
    if not POSTGRES_URL:
        pytest.skip("CIVICVAULT_TEST_POSTGRES_URL is not set")
    schema = f"cv_test_{secrets.token_hex(6)}"
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    url = f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    init_home(Settings(home=tmp_path_factory.mktemp("pg-home"), database_url=url, master_key=new_master_key()))
    yield url
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        target = tmp_path / "vault.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        return f"sqlite:///{target}"
    url = request.getfixturevalue("postgres_schema_url")
    engine = make_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        connection.execute(text("INSERT INTO ledger_head (id, size) VALUES (1, 0)"))
        connection.execute(text("INSERT INTO checkpoint_lease (id) VALUES (1)"))
    engine.dispose()
    return url


@pytest.fixture
def settings(tmp_path, database_url) -> Settings:
    return Settings(home=tmp_path, database_url=database_url, master_key=new_master_key())


@pytest.fixture
def vault_(settings):
    attestation_key.create(settings.attestation_key_file)  # as `civicvault init` does
    vault = Vault.open(settings)
    yield vault
    vault.close()


@dataclass(frozen=True)
class Actor:
    id: str
    role: str
    name: str
    token: str

    @property
    def caller(self) -> Caller:
        return Caller(id=self.id, role=self.role)

    @property
    def auth(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def make_actor(vault_):
    def make(role: str, name: str | None = None) -> Actor:
        name = name or f"{role} {secrets.token_hex(3)}"
        with vault_.transaction() as session:
            info, token = principals.create_principal(session, vault_.keys, role=role, name=name, now=utcnow())
        return Actor(id=info.id, role=role, name=name, token=token)

    return make


@pytest.fixture
def app(vault_):
    from api import create_app

    app = create_app(vault=vault_)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app):
    return app.test_client()


# --- the browser: Debian's Chromium through pytest-playwright (tests/web, /docs) -----------------

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def pytest_collection_modifyitems(config, items):
    """Tests marked ``browser`` need /usr/bin/chromium: skipped (one reason) without it, an error in CI."""
    if CHROMIUM.exists():
        return
    browser_tests = [item for item in items if item.get_closest_marker("browser")]
    if not browser_tests:
        return
    if os.environ.get("CI"):
        raise pytest.UsageError("CI must run the browser tests: install Debian's chromium (/usr/bin/chromium)")
    skip = pytest.mark.skip(reason="no /usr/bin/chromium: the browser tests need Debian's chromium (apt-get install)")
    for item in browser_tests:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """pytest-playwright launches Debian's Chromium, never a browser of its own."""
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS, "headless": True}
