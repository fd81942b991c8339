"""The resident's share-code page: make a code, see it once, large and grouped, with its end."""

import re

from sqlalchemy import select

from tests.web.conftest import csrf_of
from vault.storage.models import ShareCode


def code_on(html: str) -> str:
    found = re.search(r'data-testid="share-code">([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{2})<', html)
    assert found, "no code on the page"
    return found.group(1)


def test_the_page_offers_a_code_and_shows_none_before_asked(signed_in, person, vault_):
    browser = signed_in(person("resident"))
    answer = browser.get("/share-code")
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "Make a code" in html and 'data-testid="share-code"' not in html
    assert "valid once, for 10 minutes" in html.lower()
    assert 'href="/share-code"' in html and 'aria-current="page"' in html  # in the resident's navigation
    with vault_.read_transaction() as session:
        assert session.scalars(select(ShareCode)).all() == []  # a GET makes nothing


def test_making_a_code_shows_it_once_and_a_clinic_can_use_it(client, signed_in, person, vault_):
    amina, clinic = person("resident", "Amina Yusuf"), person("clinic")
    browser = signed_in(amina)
    page = browser.get("/share-code").get_data(as_text=True)
    form = re.search(r'<form[^>]*action="/share-code".*?</form>', page, re.S).group(0)
    answer = browser.post("/share-code", data={"csrf_token": csrf_of(form)})  # the token the form carries
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "Your code" in html and "<time" in html and "Make a new code" in html
    code = code_on(html)
    assert code not in browser.get("/share-code").get_data(as_text=True)  # shown once, never again
    redeemed = client.post(
        "/api/v1/share-codes/redeem",
        json={"code": code, "categories": ["health.labs"], "purpose": "treatment", "reason": "Blood test"},
        headers={"Authorization": f"Bearer {clinic.token}"},
    )
    assert redeemed.status_code == 201 and redeemed.get_json()["subject_id"] == amina.id


def test_a_new_code_ends_the_earlier_one(client, signed_in, person):
    amina, clinic = person("resident"), person("clinic")
    browser = signed_in(amina)
    first = code_on(browser.post("/share-code", data={"csrf_token": browser.csrf}).get_data(as_text=True))
    second = code_on(browser.post("/share-code", data={"csrf_token": browser.csrf}).get_data(as_text=True))
    body = {"categories": ["health.labs"], "purpose": "treatment", "reason": "Blood test"}
    headers = {"Authorization": f"Bearer {clinic.token}"}
    assert client.post("/api/v1/share-codes/redeem", json={**body, "code": first}, headers=headers).status_code == 404
    assert client.post("/api/v1/share-codes/redeem", json={**body, "code": second}, headers=headers).status_code == 201


def test_without_csrf_no_code_is_made(signed_in, person, vault_):
    browser = signed_in(person("resident"))
    assert browser.post("/share-code", data={}).status_code == 403
    with vault_.read_transaction() as session:
        assert session.scalars(select(ShareCode)).all() == []


def test_other_roles_have_no_share_code_page(signed_in, person):
    clinic = signed_in(person("clinic"))
    assert clinic.get("/share-code").status_code == 404
    assert clinic.post("/share-code", data={"csrf_token": clinic.csrf}).status_code == 404


def test_a_stranger_is_sent_to_sign_in(client):
    answer = client.get("/share-code")
    assert answer.status_code == 302 and "/signin" in answer.headers["Location"]
