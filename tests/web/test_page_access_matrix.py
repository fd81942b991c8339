"""Every page, as every role: a page of another role does not exist for you (404), and a page with an id
you may not see answers exactly as one with an id that does not exist.

The routes come from the app's own URL map, so a page added later is covered without a change here.
"""

import re

import pytest

PREFIX_ROLES = {
    "/resident": {"resident"},
    "/provider": {"clinic", "landlord"},
    "/compliance": {"compliance"},
    "/admin": {"admin"},
    "/agency": {"agency"},
}
ROLES = ("resident", "clinic", "landlord", "compliance", "admin", "agency")
# Pages narrower than their prefix: emergency access is for clinics only.
ONLY = {"/provider/break-glass": {"clinic"}}
# A page about a resident id that shows only what the caller holds about that resident: for an id that
# does not exist it is the same page as for a resident who gave nothing (test_an_unknown_resident_...).
SAME_FOR_UNKNOWN = {"/provider/residents/<subject_id>", "/provider/records/<record_id>"}


def _page_rules(app):
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("web.") or "GET" not in rule.methods:
            continue
        prefix = next((p for p in PREFIX_ROLES if rule.rule.startswith(p + "/") or rule.rule == p), None)
        if prefix is not None:
            yield rule, ONLY.get(rule.rule, PREFIX_ROLES[prefix])


def _url(rule, value: str) -> str:
    return re.sub(r"<(?:[^:>]+:)?[^>]+>", value, rule.rule)


@pytest.fixture
def everyone(person, signed_in):
    return {role: signed_in(person(role)) for role in ROLES}


def test_no_page_answers_another_role(app, everyone):
    rules = list(_page_rules(app))
    assert len(rules) >= 4
    for rule, owners in rules:
        for role, client in everyone.items():
            if role in owners:
                continue
            answer = client.get(_url(rule, "p-aaaaaaaaaaaaaaaaaaaaaaaaaa"))
            assert answer.status_code == 404, (role, rule.rule, answer.status_code)
            assert answer.mimetype == "text/html"


def test_an_unknown_id_on_your_own_pages_is_a_page_never_a_500(app, everyone):
    for rule, owners in _page_rules(app):
        if not rule.arguments or rule.rule in SAME_FOR_UNKNOWN:
            continue
        for role in owners:
            for value in ("p-aaaaaaaaaaaaaaaaaaaaaaaaaa", "r-aaaaaaaaaaaaaaaaaaaaaaaaaa", "x" * 300, "..%2F", "0"):
                answer = everyone[role].get(_url(rule, value))
                if value == "..%2F" and answer.status_code == 308:
                    continue  # the path was normalised away from this route: the router's redirect, not the page
                assert answer.status_code in (400, 404), (role, rule.rule, value, answer.status_code)
                assert answer.mimetype == "text/html"


def test_every_own_page_without_ids_renders(app, everyone):
    for rule, owners in _page_rules(app):
        if rule.arguments:
            continue
        for role in owners:
            answer = everyone[role].get(rule.rule)
            assert answer.status_code == 200, (role, rule.rule, answer.status_code)
            if answer.mimetype != "text/html":
                continue  # a download (CSV)
            html = answer.get_data(as_text=True)
            assert html.count("<h1") == 1, (role, rule.rule)
            assert " style=" not in html and "<script>" not in html, (role, rule.rule)


def test_a_stranger_is_sent_to_sign_in_from_every_page(app, client):
    for rule, _ in _page_rules(app):
        answer = client.get(_url(rule, "p-aaaaaaaaaaaaaaaaaaaaaaaaaa"))
        assert answer.status_code == 302 and "/signin" in answer.headers["Location"], rule.rule


def test_no_form_of_another_role_can_be_posted(app, everyone):
    posts = [
        (rule, owners)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("web.") and "POST" in rule.methods
        for prefix, owners in PREFIX_ROLES.items()
        if rule.rule.startswith(prefix + "/")
    ]
    posts = [(rule, ONLY.get(rule.rule, owners)) for rule, owners in posts]
    for rule, owners in posts:
        for role, client in everyone.items():
            if role in owners:
                continue
            answer = client.post(_url(rule, "p-aaaaaaaaaaaaaaaaaaaaaaaaaa"), data={"csrf_token": client.csrf})
            assert answer.status_code == 404, (role, rule.rule, answer.status_code)


def test_an_unknown_resident_id_and_a_resident_who_gave_nothing_look_the_same(person, signed_in, make_actor):
    harbour = signed_in(person("landlord"))
    stranger = make_actor("resident", "Someone Else")
    real = harbour.get(f"/provider/residents/{stranger.id}").get_data(as_text=True)
    unknown_id = "p-" + "a" * 26
    unknown = harbour.get(f"/provider/residents/{unknown_id}").get_data(as_text=True)
    assert "Someone Else" not in real
    assert real.replace(stranger.id, "ID") == unknown.replace(unknown_id, "ID")


def test_an_unknown_record_id_and_a_record_not_granted_look_the_same(person, signed_in, make_actor, client):
    harbour = signed_in(person("landlord"))
    stranger = make_actor("resident", "Someone Else")
    made = client.post(
        f"/api/v1/subjects/{stranger.id}/records",
        json={"category": "tenancy.lease", "content": {"rent": 900}, "title": "Private lease"},
        headers=stranger.auth,
    )
    record_id = made.get_json()["id"]
    unknown_id = "r-" + "a" * 26
    real = harbour.get(f"/provider/records/{record_id}").get_data(as_text=True)
    unknown = harbour.get(f"/provider/records/{unknown_id}").get_data(as_text=True)
    assert "Private lease" not in real and "900" not in real
    assert real.replace(record_id, "ID") == unknown.replace(unknown_id, "ID")
