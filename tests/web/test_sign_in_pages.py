"""Signing in through the pages: cookies, the second factor, CSRF, other roles' pages, headers and assets."""

import re

import pyotp
import pytest

from tests.web.conftest import csrf_of
from vault.identity import invitations

CLIENT_PAGES = {"resident": "/resident/", "clinic": "/provider/", "compliance": "/compliance/", "admin": "/admin/"}


def test_the_root_sends_a_stranger_to_sign_in(client):
    answer = client.get("/")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/signin")
    page = client.get("/signin")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert b"Sign in to CivicVault" in page.data


def test_a_resident_signs_in_with_a_password_and_gets_a_safe_cookie(client, person):
    amina = person("resident", "Amina Yusuf")
    answer = client.post("/signin", data={"login": amina.login, "password": amina.password})
    assert answer.status_code == 303 and answer.headers["Location"] == "/"
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith("civicvault_session=cvs_")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP here; over TLS it is __Host- and Secure
    assert "Expires" not in cookie and "Max-Age" not in cookie  # gone when the browser closes
    home = client.get("/", follow_redirects=True)
    assert home.status_code == 200 and b"Amina Yusuf" in home.data


def test_over_tls_the_cookie_is_secure_and_host_only(client, person):
    amina = person("resident")
    answer = client.post(
        "/signin", data={"login": amina.login, "password": amina.password}, base_url="https://vault.example"
    )
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith("__Host-civicvault_session=") and "Secure" in cookie and "Domain" not in cookie


@pytest.mark.parametrize("login_of", [lambda p: p.login, lambda p: "nobody-here"])
def test_a_wrong_login_or_password_gets_one_message_and_no_cookie(client, person, login_of):
    amina = person("resident")
    answer = client.post("/signin", data={"login": login_of(amina), "password": "wrong password here"})
    assert answer.status_code == 401 and "Set-Cookie" not in answer.headers
    assert b"The login or password is wrong." in answer.data
    assert login_of(amina).encode() in answer.data  # the login is kept in the form


def test_an_empty_form_says_what_is_missing(client):
    answer = client.post("/signin", data={})
    assert answer.status_code == 400
    assert b"Enter your login." in answer.data and b"Enter your password." in answer.data


def test_a_clinic_needs_its_code_and_a_wrong_one_does_not_sign_in(client, person, vault_):
    clinic = person("clinic")
    answer = client.post("/signin", data={"login": clinic.login, "password": clinic.password})
    assert answer.status_code == 303 and "/signin/code" in answer.headers["Location"]
    half = answer.headers["Set-Cookie"].split(";")[0]
    waiting = client.get("/provider/")  # not signed in without the code: asked for it
    assert waiting.status_code == 302 and "/signin/code" in waiting.headers["Location"]
    page = client.get("/signin/code")
    wrong = client.post("/signin/code", data={"code": "000000", "csrf_token": csrf_of(page.get_data(as_text=True))})
    assert wrong.status_code == 401 and b"That code is not right" in wrong.data
    right = client.post(
        "/signin/code", data={"code": clinic.code(vault_.now()), "csrf_token": csrf_of(page.get_data(as_text=True))}
    )
    assert right.status_code == 303
    assert right.headers["Set-Cookie"].split(";")[0] != half  # a new token once the second factor is given
    assert client.get("/provider/").status_code == 200


def test_a_clinic_without_totp_enrols_at_sign_in(client, person, vault_):
    clinic = person("clinic", with_totp=False)
    answer = client.post("/signin", data={"login": clinic.login, "password": clinic.password})
    assert "/signin/enrol" in answer.headers["Location"]
    page = client.get("/signin/enrol").get_data(as_text=True)
    assert "<svg" in page
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7]+)<', page).group(1)
    done = client.post(
        "/signin/code",
        data={"code": pyotp.TOTP(secret).at(vault_.now()), "csrf_token": csrf_of(page), "enrolling": "1"},
    )
    assert done.status_code == 303 and "notice=enrolled" in done.headers["Location"]
    assert client.get("/provider/").status_code == 200


def test_each_role_reaches_its_pages_and_no_other(app, person, signed_in):
    people = {role: person(role) for role in CLIENT_PAGES}
    for role, who in people.items():
        client = signed_in(who)
        for other, url in CLIENT_PAGES.items():
            answer = client.get(url)
            if other == role:
                assert answer.status_code == 200, (role, url)
            else:
                assert answer.status_code == 404, (role, url)  # another role's page does not exist for them
                assert b"There is no such page" in answer.data


def test_a_post_without_the_csrf_token_is_refused(person, signed_in):
    client = signed_in(person("resident"))
    refused = client.post("/account/signout-everywhere", data={})
    assert refused.status_code == 403 and b"reload the page" in refused.data
    assert client.get("/resident/").status_code == 200  # still signed in: nothing happened
    foreign = client.post("/account/signout-everywhere", data={"csrf_token": "A" * 43})
    assert foreign.status_code == 403


def test_a_post_from_another_site_is_refused(person, signed_in):
    client = signed_in(person("resident"))
    answer = client.post(
        "/account/signout-everywhere", data={"csrf_token": client.csrf}, headers={"Origin": "https://evil.example"}
    )
    assert answer.status_code == 403
    assert client.get("/resident/").status_code == 200


def test_sign_out_ends_the_session_on_the_server(app, person, signed_in):
    client = signed_in(person("resident"))
    cookie = client.get_cookie("civicvault_session").value
    answer = client.post("/signout", data={"csrf_token": client.csrf})
    assert answer.status_code == 303 and "notice=signed-out" in answer.headers["Location"]
    replay = app.test_client()
    replay.set_cookie("civicvault_session", cookie)
    assert replay.get("/resident/").status_code == 302  # the old cookie is worth nothing


def test_sign_out_everywhere_ends_every_session(person, signed_in):
    amina = person("resident")
    laptop, phone = signed_in(amina), signed_in(amina)
    assert laptop.post("/account/signout-everywhere", data={"csrf_token": laptop.csrf}).status_code == 303
    assert phone.get("/resident/").status_code == 302


def test_an_idle_session_ends(person, signed_in, vault_, clock):
    client = signed_in(person("resident"))
    assert client.get("/resident/").status_code == 200
    clock.advance(minutes=vault_.settings.web_sessions.idle_minutes, seconds=1)
    answer = client.get("/resident/")
    assert answer.status_code == 302 and "/signin" in answer.headers["Location"]


def test_next_keeps_the_page_asked_for_and_never_another_host(client, person):
    amina = person("resident")
    assert "next=/resident/" in client.get("/resident/").headers["Location"]
    answer = client.post("/signin?next=/resident/", data={"login": amina.login, "password": amina.password})
    assert answer.headers["Location"] == "/resident/"
    for hostile in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        other = client.post(f"/signin?next={hostile}", data={"login": amina.login, "password": amina.password})
        assert other.headers["Location"] == "/", hostile


def test_an_invitation_sets_a_password_once(client, person, vault_):
    amina = person("resident")
    with vault_.transaction() as session:
        link = invitations.create(session, vault_.keys, amina.id, now=vault_.now())
    page = client.get(f"/invite/{link.token}")
    assert page.status_code == 200 and amina.login.encode() in page.data
    mismatch = client.post(f"/invite/{link.token}", data={"password": "a new long passphrase", "password_again": "x"})
    assert mismatch.status_code == 400 and b"not the same" in mismatch.data
    short = client.post(f"/invite/{link.token}", data={"password": "short", "password_again": "short"})
    assert short.status_code == 400
    new = "a new long passphrase"
    done = client.post(f"/invite/{link.token}", data={"password": new, "password_again": new})
    assert done.status_code == 303 and "notice=password-set" in done.headers["Location"]
    assert client.get(f"/invite/{link.token}").status_code == 404  # used
    assert client.post("/signin", data={"login": amina.login, "password": new}).status_code == 303


def test_an_unknown_invitation_is_a_page_not_a_problem(client):
    answer = client.get("/invite/cvi_nothing")
    assert answer.status_code == 404 and answer.mimetype == "text/html"
    assert b"not valid" in answer.data


def test_pages_carry_a_strict_content_security_policy(client):
    answer = client.get("/signin")
    policy = dict(d.strip().split(" ", 1) for d in answer.headers["Content-Security-Policy"].split(";"))
    assert policy["default-src"] == "'none'" and policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["form-action"] == "'self'" and policy["frame-ancestors"] == "'none'"
    assert answer.headers["Cache-Control"] == "no-store" and answer.headers["X-Frame-Options"] == "DENY"
    html = answer.get_data(as_text=True)
    assert (
        "<script>" not in html
        and " style=" not in html
        and "http" not in html.split("</head>")[0].replace("http-equiv", "")
    )


def test_every_asset_of_a_page_is_served_here(client):
    html = client.get("/signin").get_data(as_text=True)
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assets = [u for u in urls if u.startswith("/assets/")]
    assert len(assets) >= 5
    for url in assets:
        answer = client.get(url)
        assert answer.status_code == 200, url
    css = client.get("/assets/vendor/uswds/css/uswds.min.css").get_data(as_text=True)
    for ref in set(re.findall(r"url\(([^)]+)\)", css)):
        ref = ref.strip("\"'")
        if ref.startswith("data:"):
            continue
        target = "/assets/vendor/uswds/" + ref.replace("../", "")
        assert client.get(target).status_code == 200, target


@pytest.mark.parametrize(
    "name", ["vendor/uswds/LICENSE.md", "../session.py", "..%2F__init__.py", "vendor/versions.json", "nothing.js"]
)
def test_only_the_app_assets_are_served(client, name):
    assert client.get(f"/assets/{name}").status_code == 404


def test_an_unknown_page_is_a_page_and_the_api_keeps_problem_json(client):
    page = client.get("/no-such-page", headers={"Accept": "text/html"})
    assert page.status_code == 404 and page.mimetype == "text/html"
    api = client.get("/api/v1/no-such-thing", headers={"Accept": "text/html"})
    assert api.status_code == 404 and api.mimetype == "application/problem+json"


def test_the_api_ignores_the_session_cookie(person, signed_in):
    client = signed_in(person("resident"))
    answer = client.get("/api/v1/me")
    assert answer.status_code == 401  # a cookie is not a bearer token: no CSRF-able API


def test_failed_sign_ins_are_limited_per_login(app, person, vault_):
    from limits import parse_many

    from api.context import THROTTLE

    throttle = app.extensions[THROTTLE]
    throttle.failed_sign_in = parse_many("3/hour")
    amina = person("resident")
    client = app.test_client()
    for _ in range(3):
        assert client.post("/signin", data={"login": amina.login, "password": "wrong guess here"}).status_code == 401
    # Past the limit, even the right password is refused: otherwise the limit would not slow a guesser.
    locked = client.post("/signin", data={"login": amina.login, "password": amina.password})
    assert locked.status_code == 429 and "Retry-After" in locked.headers
    assert b"Too many failed sign-ins" in locked.data
    other = person("resident")
    assert client.post("/signin", data={"login": other.login, "password": other.password}).status_code == 303


def test_a_resident_turns_on_two_step_sign_in(app, person, signed_in, vault_):
    amina = person("resident")
    client = signed_in(amina)
    page = client.get("/account/two-step").get_data(as_text=True)
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7]+)<', page).group(1)
    wrong = client.post("/account/two-step", data={"code": "000000", "csrf_token": client.csrf})
    assert wrong.status_code == 400 and b"That code is not right" in wrong.data
    # The wrong code's page showed a new key: the first one no longer counts.
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7]+)<', wrong.get_data(as_text=True)).group(1)
    code = pyotp.TOTP(secret).at(vault_.now())
    assert client.post("/account/two-step", data={"code": code, "csrf_token": client.csrf}).status_code == 303
    assert b"Two-step sign-in</dt><dd>On" in client.get("/account").data
    again = app.test_client()
    answer = again.post("/signin", data={"login": amina.login, "password": amina.password})
    assert "/signin/code" in answer.headers["Location"]  # the next sign-in asks for a code
    assert client.get("/account/two-step").status_code == 409  # on already: an operator resets it
