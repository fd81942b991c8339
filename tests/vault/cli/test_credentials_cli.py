"""``civicvault principal add --login``, ``set-login``, ``set-password``, ``invite``, and the demo's logins."""

import json
import re

import pyotp
import pytest

from vault.core.config import Settings
from vault.identity import invitations, sign_in
from vault.runtime import Vault

from .test_cli import assert_one_sentence_error, run, run_process

PASSWORD = "a long enough passphrase"


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    assert run("init", "--home", home).exit_code == 0
    return home


def invoke(*args, input=None):
    from click.testing import CliRunner

    from vault.cli.main import cli

    return CliRunner().invoke(cli, [str(a) for a in args], input=input, catch_exceptions=False)


def signs_in(home, login, password) -> sign_in.SignIn:
    vault = Vault.open(Settings.from_env(home, environ={}))
    try:
        with vault.transaction() as session:
            return sign_in.sign_in(
                session, vault.keys, login=login, password=password, now=vault.now(), policy=vault.settings.web_sessions
            )
    finally:
        vault.close()


def test_add_with_a_login_and_a_password_from_stdin(home):
    added = invoke(
        "principal", "add", "--role", "resident", "--name", "Amina Yusuf", "--login", "Amina@Example.org",
        "--password-stdin", "--json", "--home", home, input=PASSWORD + "\n",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    data = json.loads(added.stdout)
    assert data["login"] == "Amina@Example.org" and set(data) == {"id", "role", "name", "token", "login"}
    assert PASSWORD not in added.output
    assert signs_in(home, "amina@example.org", PASSWORD).principal_id == data["id"]
    listing = json.loads(run("principal", "list", "--json", "--home", home).stdout)
    assert listing[0]["login"] == "Amina@Example.org"
    assert "Amina@Example.org" in run("principal", "list", "--home", home).stdout


def test_add_with_a_login_and_no_password_says_what_comes_next(home):
    added = invoke(
        "principal", "add", "--role", "clinic", "--name", "Riverside", "--login", "riverside", "--home", home
    )
    assert added.exit_code == 0 and "login: riverside (no password yet" in added.stdout


def test_set_password_asks_twice_hidden_and_signs_out(home):
    pid = json.loads(
        invoke(
            "principal", "add", "--role", "resident", "--name", "A", "--login", "amina", "--json", "--home", home
        ).stdout
    )["id"]
    result = invoke("principal", "set-password", pid, "--home", home, input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output and "password set" in result.stdout
    signs_in(home, "amina", PASSWORD)
    mismatch = invoke("principal", "set-password", pid, "--home", home, input=f"{PASSWORD}\nsomething else\n")
    assert mismatch.exit_code != 0  # click asks again, then stdin ends
    piped = invoke("principal", "set-password", pid, "--password-stdin", "--home", home, input="another passphrase!\n")
    assert piped.exit_code == 0
    signs_in(home, "amina", "another passphrase!")


def test_invite_prints_a_one_time_link_and_its_expiry(home):
    pid = json.loads(
        invoke(
            "principal", "add", "--role", "landlord", "--name", "H", "--login", "harbour", "--json", "--home", home
        ).stdout
    )["id"]
    result = invoke("principal", "invite", pid, "--base-url", "https://vault.example.org/", "--home", home)
    assert result.exit_code == 0, result.output
    link = re.search(r"^link: +(https://vault\.example\.org/invite/(cvi_[A-Za-z0-9_-]{43}))$", result.stdout, re.M)
    assert link and re.search(r"^expires: +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", result.stdout, re.M)
    default = invoke("principal", "invite", pid, "--home", home)
    assert "link:    http://127.0.0.1:8080/invite/cvi_" in default.stdout
    vault = Vault.open(Settings.from_env(home, environ={}))
    try:
        with vault.transaction() as session:
            new_token = default.stdout.split("/invite/")[1].split()[0]
            assert invitations.accept(session, vault.keys, new_token, PASSWORD, now=vault.now()) == pid
    finally:
        vault.close()


def test_set_login_gives_an_existing_principal_a_login(home):
    pid = json.loads(run("principal", "add", "--role", "admin", "--name", "Op", "--json", "--home", home).stdout)["id"]
    result = invoke("principal", "set-login", pid, "Operator", "--home", home)
    assert result.exit_code == 0 and "login of" in result.stdout
    invoke("principal", "set-password", pid, "--password-stdin", "--home", home, input=PASSWORD)
    assert signs_in(home, "operator", PASSWORD).second_factor == sign_in.ENROL


def test_reset_totp_forgets_the_second_factor_and_the_next_sign_in_enrols_again(home):
    """A lost phone: the operator resets the secret; the old authenticator's codes are worthless, the person's
    browser sessions end, and signing in with the password leads to a new enrolment."""
    from vault.identity import totp

    pid = json.loads(
        invoke(
            "principal", "add", "--role", "clinic", "--name", "R", "--login", "riverside", "--json", "--home", home
        ).stdout
    )["id"]
    invoke("principal", "set-password", pid, "--password-stdin", "--home", home, input=PASSWORD)
    vault = Vault.open(Settings.from_env(home, environ={}))
    try:
        with vault.transaction() as session:
            enrolment = totp.enrol(session, vault.keys, pid)
        with vault.transaction() as session:
            assert totp.confirm_enrolment(session, vault.keys, pid, pyotp.TOTP(enrolment.secret).now(), now=vault.now())
    finally:
        vault.close()
    assert signs_in(home, "riverside", PASSWORD).second_factor == sign_in.CODE
    result = invoke("principal", "reset-totp", pid, "--home", home)
    assert result.exit_code == 0 and "reset" in result.stdout
    assert signs_in(home, "riverside", PASSWORD).second_factor == sign_in.ENROL
    unknown = run_process("principal", "reset-totp", "p-nobody", "--home", home)
    assert_one_sentence_error(unknown)


def test_mistakes_are_one_sentence_or_a_usage_error(home):
    added = run_process(
        "principal", "add", "--role", "resident", "--name", "A", "--login", "amina", "--json", "--home", home
    )
    pid = json.loads(added.stdout)["id"]

    def process(*args, stdin=""):
        import os
        import subprocess
        import sys

        env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICVAULT_")}
        return subprocess.run(
            [sys.executable, "-m", "vault.cli", *map(str, args)], input=stdin, capture_output=True, text=True, env=env
        )

    for args, stdin in (
        (("principal", "set-password", "p-nobody", "--password-stdin"), PASSWORD),
        (("principal", "set-password", pid, "--password-stdin"), "short"),
        (("principal", "set-password", pid, "--password-stdin"), "x" * 10_000),
        (("principal", "set-password", pid, "--password-stdin"), f"{PASSWORD}\nsecond line"),
        (("principal", "set-password", pid, "--password-stdin"), "amina"),
        (("principal", "add", "--role", "clinic", "--name", "B", "--login", "AMINA"), ""),
        (("principal", "add", "--role", "clinic", "--name", "B", "--login", "two words"), ""),
        (("principal", "add", "--role", "clinic", "--name", "B", "--login", "x" * 300), ""),
        (("principal", "invite", "p-nobody"), ""),
        (("principal", "set-login", "p-nobody", "someone"), ""),
    ):
        result = process(*args, "--home", home, stdin=stdin)
        assert_one_sentence_error(result)
        assert result.returncode == 1
        assert "amina" not in result.stderr.lower()  # the message never echoes a login
    for args in (
        ("principal", "add", "--role", "clinic", "--name", "B", "--password-stdin"),  # a password needs a login
        ("principal", "invite", pid, "--base-url", "ftp://example.org"),
        ("principal", "invite", pid, "--base-url", "https://x.org/?next=evil"),
        ("principal", "set-password", pid, "--password", PASSWORD),  # never on the command line
    ):
        result = process(*args, "--home", home)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    # Nothing was created by the refused adds.
    assert len(json.loads(run("principal", "list", "--json", "--home", home).stdout)) == 1


def test_the_demo_gives_logins_passwords_and_totp_secrets(home):
    first = run("demo", "--if-new", "--home", home)
    assert first.exit_code == 0
    people = json.loads((home / "demo-tokens.json").read_text())
    by_login = {p["login"]: p for p in people}
    assert set(by_login) == {"amina", "tomasz", "grace", "riverside", "harbour", "compliance", "operator", "northside"}
    assert {p["role"] for p in people if "totp_secret" in p} == {"clinic", "landlord", "agency", "compliance", "admin"}
    for person in people:
        assert f"login={person['login']} password={person['password']}" in first.output
    assert by_login["riverside"]["totp_secret"] in first.output
    assert signs_in(home, "amina", by_login["amina"]["password"]).second_factor == sign_in.DONE
    clinic = by_login["riverside"]
    started = signs_in(home, "Riverside", clinic["password"])
    assert started.second_factor == sign_in.CODE
    vault = Vault.open(Settings.from_env(home, environ={}))
    try:
        with vault.transaction() as session:
            code = pyotp.TOTP(clinic["totp_secret"]).now()
            done = sign_in.give_code(
                session, vault.keys, started.token, code, now=vault.now(), policy=vault.settings.web_sessions
            )
        assert done.accepted
    finally:
        vault.close()
    # A second load in the same vault picks free logins.
    assert run("demo", "--home", home).exit_code == 0
    again = json.loads((home / "demo-tokens.json").read_text())[len(people) :]
    assert {p["login"] for p in again} == {f"{login}-2" for login in by_login}
    reprinted = run("demo", "--if-new", "--home", home)
    assert "login=amina password=" in reprinted.output
