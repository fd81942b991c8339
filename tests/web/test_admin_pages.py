"""The admin pages (api/web/admin.py): principals, invitations, revocation, two-step reset, key status."""

import re

import pytest

from tests.web.conftest import PASSWORD
from tests.web.test_compliance_pages import PAGES as COMPLIANCE_PAGES
from tests.web.test_compliance_pages import form_token

ADMIN_PAGES = ("/admin/", "/admin/?role=clinic", "/admin/keys")
RESIDENT_PAGES = (
    "/resident/",
    "/resident/history",
    "/resident/requests",
    "/resident/grants",
    "/resident/records",
    "/resident/delegates",
    "/resident/rights",
)


def text(answer) -> str:
    return answer.get_data(as_text=True)


@pytest.fixture
def admin(person, signed_in):
    who = person("admin", "City Data Operator")
    client = signed_in(who)
    client.who = who
    return client


def link_of(body: str) -> str:
    found = re.search(r'<code id="invitation-link">([^<]+)</code>', body)
    assert found, body[:3000]
    return found.group(1)


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_admin_pages_render(admin, path):
    answer = admin.get(path)
    assert answer.status_code == 200, text(answer)[:500]
    body = text(answer)
    assert body.count("<h1") == 1 and "style=" not in body


def test_the_list_shows_principals_with_login_tokens_and_two_step(admin, person, make_actor):
    clinic = person("clinic", "Riverside Clinic", login="riverside")
    bare = make_actor("landlord", "Harbour Housing")
    body = text(admin.get("/admin/"))
    row = re.search(rf'<tr id="principal-{clinic.id}">(.*?)</tr>', body, re.S).group(1)
    assert "Riverside Clinic" in row and "riverside" in row and "<td>on</td>" in row and "<td>1</td>" in row
    bare_row = re.search(rf'<tr id="principal-{bare.id}">(.*?)</tr>', body, re.S).group(1)
    assert "<td>none</td>" in bare_row and "<td>off</td>" in bare_row
    only = text(admin.get("/admin/?role=landlord"))
    assert bare.id in only and clinic.id not in only


def test_creating_a_principal_gives_a_working_invitation_link(admin, app, vault_):
    token = form_token(text(admin.get("/admin/")), "/admin/principals")
    answer = admin.post(
        "/admin/principals",
        data={"role": "clinic", "name": "Northside Clinic", "login": "northside@example.org", "csrf_token": token},
    )
    assert answer.status_code == 201, text(answer)[:2000]
    body = text(answer)
    url = link_of(body)
    assert url.startswith("http://localhost/invite/cvi_")
    # The new principal is listed, with its login and no usable API token.
    row = re.search(r'<tr id="principal-(p-[a-z0-9-]+)">\s*<th scope="row">Northside Clinic', body)
    assert row
    listed = re.search(rf'<tr id="principal-{row.group(1)}">(.*?)</tr>', body, re.S).group(1)
    assert "northside@example.org" in listed and "<td>0</td>" in listed
    # The link shows once: the list page does not have it.
    assert url not in text(admin.get("/admin/"))

    # The person follows the link and sets a password, then signs in (and is asked to set up two-step).
    stranger = app.test_client()
    path = url.removeprefix("http://localhost")
    form = stranger.get(path)
    assert form.status_code == 200 and "northside@example.org" in text(form)
    done = stranger.post(path, data={"password": PASSWORD, "password_again": PASSWORD})
    assert done.status_code == 303 and "password-set" in done.headers["Location"]
    signed = stranger.post("/signin", data={"login": "northside@example.org", "password": PASSWORD})
    assert signed.status_code == 303 and "/signin/enrol" in signed.headers["Location"]
    # Used once: the link is dead now.
    assert stranger.get(path).status_code == 404


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"role": "emperor", "name": "X", "login": "x1"}, "role"),
        ({"role": "clinic", "name": "  ", "login": "x2"}, "name"),
        ({"role": "clinic", "name": "No Login", "login": ""}, "login"),
        ({"role": "clinic", "name": "Bad Login", "login": "two words"}, "login"),
    ],
)
def test_bad_creations_are_a_400_page(admin, data, field):
    answer = admin.post("/admin/principals", data={**data, "csrf_token": admin.csrf})
    assert answer.status_code == 400
    assert f'id="{field}-error"' in text(answer)
    assert "invitation-link" not in text(answer)


def test_a_taken_login_is_refused_and_nothing_is_created(admin, person):
    taken = person("clinic", "Riverside Clinic", login="riverside")
    answer = admin.post(
        "/admin/principals",
        data={"role": "clinic", "name": "Copycat Clinic", "login": taken.login, "csrf_token": admin.csrf},
    )
    assert answer.status_code == 400 and "already taken" in text(answer)
    assert "Copycat Clinic" not in text(admin.get("/admin/"))


def test_create_needs_csrf(admin):
    answer = admin.post("/admin/principals", data={"role": "clinic", "name": "Sneaky", "login": "sneaky"})
    assert answer.status_code == 403
    assert "Sneaky" not in text(admin.get("/admin/"))


def test_a_new_invitation_for_an_existing_principal_and_a_login_for_one_without(admin, app, make_actor, person):
    clinic = person("clinic", "Riverside Clinic", login="riverside")
    answer = admin.post(f"/admin/principals/{clinic.id}/invite", data={"csrf_token": admin.csrf})
    assert answer.status_code == 200
    url = link_of(text(answer))
    assert app.test_client().get(url.removeprefix("http://localhost")).status_code == 200
    # A newer link ends the older one.
    newer = link_of(text(admin.post(f"/admin/principals/{clinic.id}/invite", data={"csrf_token": admin.csrf})))
    assert app.test_client().get(url.removeprefix("http://localhost")).status_code == 404
    assert app.test_client().get(newer.removeprefix("http://localhost")).status_code == 200

    bare = make_actor("landlord", "Harbour Housing")
    refused = admin.post(f"/admin/principals/{bare.id}/invite", data={"csrf_token": admin.csrf})
    assert refused.status_code == 400 and "no login yet" in text(refused)
    given = admin.post(f"/admin/principals/{bare.id}/invite", data={"login": "harbour", "csrf_token": admin.csrf})
    assert given.status_code == 200 and "<strong>harbour</strong>" in text(given)
    assert admin.post("/admin/principals/p-doesnotexist/invite", data={"csrf_token": admin.csrf}).status_code == 404


def test_revoke_ends_tokens_and_web_sessions(admin, app, person, signed_in):
    clinic = person("clinic", "Riverside Clinic", login="riverside")
    browser = signed_in(clinic)
    assert app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {clinic.token}"}).status_code == 200
    assert admin.post(f"/admin/principals/{clinic.id}/revoke").status_code == 403  # no CSRF
    token = form_token(text(admin.get("/admin/")), f"/admin/principals/{clinic.id}/revoke")
    answer = admin.post(f"/admin/principals/{clinic.id}/revoke", data={"csrf_token": token})
    assert answer.status_code == 303 and "notice=tokens-revoked" in answer.headers["Location"]
    assert app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {clinic.token}"}).status_code == 401
    ended = browser.get("/account")
    assert ended.status_code == 302 and "/signin" in ended.headers["Location"]
    assert admin.post("/admin/principals/p-doesnotexist/revoke", data={"csrf_token": admin.csrf}).status_code == 404


def test_reset_totp_makes_them_enrol_again(admin, app, person):
    clinic = person("clinic", "Riverside Clinic", login="riverside")
    answer = admin.post(f"/admin/principals/{clinic.id}/reset-totp", data={"csrf_token": admin.csrf})
    assert answer.status_code == 303 and "notice=totp-reset" in answer.headers["Location"]
    assert "Two-step sign-in is reset" in text(admin.get(answer.headers["Location"]))
    signed = app.test_client().post("/signin", data={"login": clinic.login, "password": clinic.password})
    assert "/signin/enrol" in signed.headers["Location"]  # the old secret is forgotten: they enrol again
    assert admin.post("/admin/principals/p-doesnotexist/reset-totp", data={"csrf_token": admin.csrf}).status_code == 404


def test_keys_page_shows_counts_not_keys(admin, vault_, make_actor):
    make_actor("resident", "Amina Yusuf")
    body = text(admin.get("/admin/keys"))
    assert "current version 1" in body and "Master key versions and what each protects" in body
    assert "Ledger signing key" in body
    master = vault_.settings.master_key
    if isinstance(master, str):
        assert master not in body


def test_other_roles_get_404_on_admin_pages(person, signed_in):
    for role in ("resident", "clinic", "compliance"):
        client = signed_in(person(role))
        for path in ADMIN_PAGES:
            assert client.get(path).status_code == 404, (role, path)
        answer = client.post(
            "/admin/principals", data={"role": "admin", "name": "Me", "login": "me-too", "csrf_token": client.csrf}
        )
        assert answer.status_code == 404


def test_an_admin_gets_404_on_every_resident_and_compliance_page(admin, make_actor, app):
    """Admins never see records, grants, requests or the trail."""
    amina = make_actor("resident", "Amina Yusuf")
    paths = [*RESIDENT_PAGES, *COMPLIANCE_PAGES, f"/compliance/residents/{amina.id}/disclosures"]
    routes = [
        rule.rule
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(("/resident", "/compliance")) and "GET" in rule.methods and not rule.arguments
    ]
    for path in {*paths, *routes}:
        assert admin.get(path).status_code == 404, path
    answer = admin.post("/compliance/lookup", data={"by": "name", "value": "Amina Yusuf", "csrf_token": admin.csrf})
    assert answer.status_code == 404


def test_a_long_list_is_cut_and_says_so(admin, make_actor, monkeypatch):
    from api.web import admin as admin_pages

    for i in range(3):
        make_actor("resident", f"Resident {i}")
    monkeypatch.setattr(admin_pages, "SHOWN", 2)
    body = text(admin.get("/admin/"))
    assert "Showing the first 2" in body and len(re.findall(r'<tr id="principal-', body)) == 2
    assert "Principals (4)" in body  # the admin and three residents
    residents = text(admin.get("/admin/?role=resident"))
    assert "Principals (3)" in residents
