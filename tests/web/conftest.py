"""Fixtures for the web app's tests.

Two kinds of test live here:

- page tests with Flask's test client, on SQLite and PostgreSQL: ``person``
  makes a principal with a login and password (and TOTP, for roles that need
  it) and ``signed_in`` signs a test client in through the real forms;
- browser journeys (``@pytest.mark.browser``): ``civicvault init`` and
  ``demo`` on a fresh home, ``civicvault serve`` on a free port, and Debian's
  Chromium through pytest-playwright. ``guarded_page`` aborts and records
  every request to another host and every console error; ``check_page``
  runs axe on the page and asserts no serious or critical violation.

Where ``/usr/bin/chromium`` is missing the browser tests are skipped with one
line saying so; CI (``CI`` set) fails instead, since it installs Chromium
(tests/conftest.py).
"""

import dataclasses
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pyotp
import pytest

from tests.api.conftest import HIGH_LIMITS, Clock
from tests.served import home_env, is_local, served
from vault.core.config import Settings
from vault.identity import logins, passwords, totp

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "images"
PASSWORD = "correct horse battery staple"


# --- page tests with the test client -----------------------------------------------------------


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, rate_limits=HIGH_LIMITS)


@pytest.fixture
def clock(vault_) -> Clock:
    """The vault's clock, starting now (TOTP codes are made for it) and moved by the test."""
    from datetime import UTC, datetime

    clock = Clock(datetime.now(UTC).replace(microsecond=0))
    vault_.clock = clock
    return clock


@pytest.fixture(autouse=True)
def fast_passwords():
    """argon2id at its lightest for the page tests (the parameters are tested in tests/vault/identity)."""
    from argon2 import PasswordHasher

    previous = passwords.use_hasher(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    yield
    passwords.use_hasher(previous)


@dataclass(frozen=True)
class Person:
    id: str
    role: str
    name: str
    token: str
    login: str
    password: str
    totp_secret: str | None

    @property
    def auth(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    def code(self, at=None) -> str:
        assert self.totp_secret is not None
        return pyotp.TOTP(self.totp_secret).at(at or time.time())


@pytest.fixture
def person(vault_, make_actor):
    """A principal with a login and password; TOTP enrolled and on for roles that need it."""

    def make(role: str, name: str | None = None, *, login: str | None = None, with_totp: bool | None = None) -> Person:
        actor = make_actor(role, name)
        login = login or f"{role}-{actor.id[-6:]}"
        secret = None
        with vault_.transaction() as session:
            logins.set_login(session, vault_.keys, actor.id, login)
            passwords.set_password(session, vault_.keys, actor.id, PASSWORD, now=vault_.now())
            if with_totp if with_totp is not None else totp.required_for(role):
                enrolment = totp.enrol(session, vault_.keys, actor.id)
                secret = enrolment.secret
                # The previous step's code (within the window), so that the current one is still unused.
                step = pyotp.TOTP(secret).at(vault_.now() - timedelta(seconds=30))
                assert totp.confirm_enrolment(session, vault_.keys, actor.id, step, now=vault_.now())
        return Person(actor.id, role, actor.name, actor.token, login, PASSWORD, secret)

    return make


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html) or re.search(r'data-csrf="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


@pytest.fixture
def signed_in(app, vault_):
    """``signed_in(person)``: a new test client signed in as ``person`` through /signin (and /signin/code)."""

    def sign_in(who: Person):
        client = app.test_client()
        answer = client.post("/signin", data={"login": who.login, "password": who.password})
        assert answer.status_code == 303, answer.get_data(as_text=True)[:500]
        if "/signin/code" in answer.headers["Location"]:
            page = client.get("/signin/code")
            code = pyotp.TOTP(who.totp_secret).at(vault_.now())
            form = {"code": code, "csrf_token": csrf_of(page.get_data(as_text=True))}
            answer = client.post("/signin/code", data=form)
            assert answer.status_code == 303, answer.get_data(as_text=True)[:500]
        client.csrf = csrf_of(client.get("/account").get_data(as_text=True))
        return client

    return sign_in


# --- browser journeys --------------------------------------------------------------------------


@dataclass
class LiveVault:
    base: str
    env: dict
    people: dict  # login -> {"password", "totp_secret", "id", "role", "name", "token"}

    def run(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
        """``civicvault ARGS`` against this vault's home, whatever its exit status."""
        return subprocess.run(
            [sys.executable, "-m", "vault.cli", *args], env=self.env, capture_output=True, text=True, input=input
        )

    def cli(self, *args: str, input: str | None = None) -> str:
        done = self.run(*args, input=input)
        assert done.returncode == 0, done.stderr
        return done.stdout


@pytest.fixture(scope="module")
def live_vault(tmp_path_factory):
    """A demo vault served on a free port (one per test module: journeys change its state)."""
    home = tmp_path_factory.mktemp("web-home")
    env = home_env(home)
    with served(env, demo=True) as base:
        yield LiveVault(base=base, env=env, people=_demo_people(home))


def _demo_people(home: Path) -> dict:
    """The demo's principals by login, from the demo's token file."""
    found = next(home.glob("demo-tokens.json"), None)
    assert found is not None, "civicvault demo wrote no demo-tokens.json"
    data = json.loads(found.read_text())
    people = {}
    for entry in data if isinstance(data, list) else data.get("principals", []):
        if entry.get("login"):
            people[entry["login"]] = entry
    return people


@pytest.fixture
def browser_context_args(browser_context_args):
    return {**browser_context_args, "service_workers": "block", "viewport": {"width": 1280, "height": 900}}


class PageGuard:
    """What a page did that it must not: requests to other hosts, console errors, uncaught exceptions."""

    def __init__(self) -> None:
        self.blocked: list[str] = []
        self.problems: list[str] = []

    def assert_clean(self) -> None:
        assert self.blocked == [], f"requests to other hosts: {self.blocked}"
        assert self.problems == [], f"console errors: {self.problems}"


RESOURCE_STATUS = "Failed to load resource: the server responded with a status of"


def _console_error(guard: PageGuard, message) -> None:
    # A page answered 4xx (a refused sign-in, a 404 page) is the browser's note, not a script error;
    # a failed script, style, font or image is caught by _failed_subresource.
    if message.type == "error" and not message.text.startswith(RESOURCE_STATUS):
        guard.problems.append(message.text)


def _failed_subresource(guard: PageGuard, response) -> None:
    if response.status >= 400 and response.request.resource_type in ("script", "stylesheet", "image", "font"):
        guard.problems.append(f"{response.status} for {response.url}")


def guard_page(context):
    """A new page of ``context`` with foreign requests aborted and console errors collected in ``page.guard``."""
    guard = PageGuard()

    def route(route) -> None:
        if is_local(route.request.url):
            route.continue_()
        else:
            guard.blocked.append(route.request.url)
            route.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.on("console", lambda message: _console_error(guard, message))
    page.on("response", lambda response: _failed_subresource(guard, response))
    page.on("pageerror", lambda error: guard.problems.append(str(error)))
    page.guard = guard
    return page


@pytest.fixture
def guarded_page(context):
    """pytest-playwright's page, guarded (``guard_page``); checked clean at the end."""
    page = guard_page(context)
    yield page
    page.guard.assert_clean()


SERIOUS = {"serious", "critical"}


def check_page(page, *, screenshot: str | None = None) -> None:
    """axe on the page as it is now: no serious or critical violation. ``screenshot`` saves docs/images/<name>.png."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    violations = [v for v in results.response["violations"] if v.get("impact") in SERIOUS]
    assert violations == [], json.dumps(
        [{"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]} for v in violations],
        indent=1,
    )
    if screenshot:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{screenshot}.png"), full_page=True)


def browser_sign_in(page, live: LiveVault, login: str) -> None:
    """Sign in through the form as a demo person (with their TOTP code when they have one)."""
    who = live.people[login]
    page.goto(f"{live.base}/signin")
    page.get_by_label("Login").fill(login)
    page.get_by_label("Password").fill(who["password"])
    page.get_by_role("button", name="Sign in").click()
    if who.get("totp_secret"):
        page.wait_for_url(re.compile(r".*/signin/code.*"))
        page.get_by_label("Code").fill(pyotp.TOTP(who["totp_secret"]).now())
        page.get_by_role("button", name="Continue").click()
    page.wait_for_load_state("load")
