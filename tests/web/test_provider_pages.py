"""Clinic and landlord pages: requests (by share code or id), residents, reads for a stated purpose, break-glass."""

import json
import re

import pytest
from sqlalchemy import func, select

from vault.consent.share_codes import INVALID
from vault.storage.models import AccessRequest, BreakGlass, Event, ShareCode


def auth(who) -> dict:
    return {"Authorization": f"Bearer {who.token}"}


@pytest.fixture
def amina(person):
    return person("resident", "Amina Yusuf")


@pytest.fixture
def clinic(person):
    return person("clinic", "Riverside Clinic")


@pytest.fixture
def landlord(person):
    return person("landlord", "Harbour Housing")


ALLERGY = {
    "resourceType": "AllergyIntolerance",
    "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org", "code": "active", "display": "Active"}]},
    "code": {"text": "Penicillin"},
    "reaction": [{"manifestation": [{"text": "Hives"}], "severity": "moderate"}],
}


def add_record(client, owner, category="health.allergies", content=None, title="Penicillin allergy"):
    answer = client.post(
        f"/api/v1/subjects/{owner.id}/records",
        json={"category": category, "content": content or ALLERGY, "title": title},
        headers=auth(owner),
    )
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["id"]


def give(client, subject, grantee, clock, *, categories=("health.*",), purpose="treatment", **extra):
    body = {
        "grantee_id": grantee.id,
        "categories": list(categories),
        "purpose": purpose,
        "expires_at": clock.at(days=30),
        **extra,
    }
    answer = client.post("/api/v1/consents", json=body, headers=auth(subject))
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def events(vault_, kind: str) -> int:
    with vault_.read_transaction() as session:
        return session.execute(select(func.count()).select_from(Event).where(Event.kind == kind)).scalar_one()


def text(answer) -> str:
    return answer.get_data(as_text=True)


def one_h1(html: str) -> str:
    found = re.findall(r"<h1[^>]*>(.*?)</h1>", html, re.S)
    assert len(found) == 1, found
    return found[0]


def test_every_page_answers_the_clinic(client, signed_in, clinic, amina, clock):
    give(client, amina, clinic, clock)
    browser = signed_in(clinic)
    for url in (
        "/provider/",
        "/provider/requests/new",
        "/provider/requests",
        "/provider/residents",
        f"/provider/residents/{amina.id}",
        "/provider/records/r-aaaaaaaaaaaaaaaaaaaaaaaaaa",
        "/provider/break-glass",
        "/provider/history",
    ):
        answer = browser.get(url)
        assert answer.status_code == 200, url
        html = text(answer)
        one_h1(html)
        assert "style=" not in html and "<script>" not in html, url
        for form in re.findall(r'<form[^>]*method="post".*?</form>', html, re.S):
            assert f'name="csrf_token" value="{browser.csrf}"' in form, (url, form[:200])  # every form posts it


def test_home_counts_and_lists(client, signed_in, clinic, amina, clock):
    give(client, amina, clinic, clock)
    client.post(
        "/api/v1/access-requests",
        json={"subject_id": amina.id, "categories": ["health.labs"], "purpose": "treatment", "reason": "Check-up"},
        headers=auth(clinic),
    )
    html = text(signed_in(clinic).get("/provider/"))
    assert 'data-testid="pending-count">1<' in html and 'data-testid="grants-count">1<' in html
    assert "Amina Yusuf" in html  # she gave a grant: her name is shown


def test_a_landlord_has_no_break_glass_page(signed_in, landlord):
    browser = signed_in(landlord)
    assert browser.get("/provider/break-glass").status_code == 404
    answer = browser.post("/provider/break-glass", data={"csrf_token": browser.csrf, "subject_id": "x"})
    assert answer.status_code == 404
    assert "Break-glass" not in text(browser.get("/provider/"))  # not in the navigation either


def test_other_roles_do_not_reach_the_provider_pages(signed_in, amina, person):
    for who in (amina, person("compliance")):
        assert signed_in(who).get("/provider/residents").status_code == 404


def test_a_request_by_share_code_reaches_the_resident(client, signed_in, amina, landlord, vault_):
    made = client.post("/api/v1/share-codes", json={}, headers=auth(amina)).get_json()
    browser = signed_in(landlord)
    form = {
        "csrf_token": browser.csrf,
        "code": made["code"].lower(),
        "categories": ["tenancy.income", "tenancy.rental-history"],
        "purpose": "tenancy-screening",
        "reason": "Application for flat 2",
        "until": "",
    }
    answer = browser.post("/provider/requests/new", data=form)
    assert answer.status_code == 303 and "notice=requested" in answer.headers["Location"]
    page = text(browser.get(answer.headers["Location"]))
    assert "The request is sent" in page and amina.id in page  # no grant yet: the id, not her name
    seen = client.get("/api/v1/access-requests?status=pending", headers=auth(amina)).get_json()["items"]
    assert [(r["requester_id"], r["categories"]) for r in seen] == [
        (landlord.id, ["tenancy.income", "tenancy.rental-history"])
    ]
    again = browser.post("/provider/requests/new", data=form)  # used once
    assert again.status_code == 404 and INVALID in text(again)


def test_a_request_by_resident_id_with_a_period(client, signed_in, amina, clinic, vault_):
    browser = signed_in(clinic)
    form = {
        "csrf_token": browser.csrf,
        "subject_id": amina.id,
        "categories": ["health.*"],
        "purpose": "treatment",
        "reason": "Referral",
        "until": "2099-01-01",
    }
    answer = browser.post("/provider/requests/new", data=form)
    assert answer.status_code == 400 and "365" in text(answer)  # the service's window check, on the form
    form["until"] = ""
    assert browser.post("/provider/requests/new", data=form).status_code == 303
    with vault_.read_transaction() as session:
        assert session.scalars(select(AccessRequest.subject_id)).all() == [amina.id]


def test_a_bad_code_says_so_and_is_counted(signed_in, landlord, vault_):
    browser = signed_in(landlord)
    form = {
        "csrf_token": browser.csrf,
        "code": "ABCD-EFGH-JK",
        "categories": ["tenancy.income"],
        "purpose": "tenancy-screening",
        "reason": "Application",
    }
    answer = browser.post("/provider/requests/new", data=form)
    assert answer.status_code == 404
    assert "That code is not valid: it may have been used or have expired. Ask the resident for a new one." in text(
        answer
    )
    assert 'value="ABCD-EFGH-JK"' in text(answer)  # the form is kept


def test_the_request_form_needs_a_purpose_and_says_what_is_missing(signed_in, clinic, amina, vault_):
    browser = signed_in(clinic)
    page = text(browser.get("/provider/requests/new"))
    assert '<option value="">Choose a purpose</option>' in page and "selected" not in page  # no default
    answer = browser.post(
        "/provider/requests/new",
        data={"csrf_token": browser.csrf, "subject_id": amina.id, "categories": ["health.labs"], "purpose": ""},
    )
    html = text(answer)
    assert answer.status_code == 400
    assert "Choose a purpose." in html and "Tell the resident why you ask." in html
    empty = browser.post("/provider/requests/new", data={"csrf_token": browser.csrf})
    assert empty.status_code == 400 and "share code" in text(empty) and "Choose at least one" in text(empty)
    hostile = browser.post(
        "/provider/requests/new",
        data={"csrf_token": browser.csrf, "subject_id": amina.id, "categories": ["secrets.*"], "purpose": "x"},
    )
    assert hostile.status_code == 400
    with vault_.read_transaction() as session:
        assert session.scalars(select(AccessRequest)).all() == []


def test_an_unknown_resident_id_is_not_found(signed_in, clinic, person):
    browser = signed_in(clinic)
    form = {"csrf_token": browser.csrf, "categories": ["health.labs"], "purpose": "treatment", "reason": "x"}
    unknown = browser.post("/provider/requests/new", data={**form, "subject_id": "p-aaaaaaaaaaaaaaaaaaaaaaaaaa"})
    other_clinic = browser.post("/provider/requests/new", data={**form, "subject_id": person("clinic").id})
    assert unknown.status_code == other_clinic.status_code == 404
    assert "No resident has that id." in text(unknown) and "No resident has that id." in text(other_clinic)


def test_missing_csrf_is_refused(signed_in, clinic, amina, vault_):
    browser = signed_in(clinic)
    for url, data in (
        ("/provider/requests/new", {"subject_id": amina.id, "categories": ["health.labs"], "purpose": "treatment"}),
        ("/provider/break-glass", {"subject_id": amina.id, "code": "unconscious", "reason": "x", "confirm": "yes"}),
        ("/provider/records/r-aaaaaaaaaaaaaaaaaaaaaaaaaa", {"purpose": "treatment"}),
    ):
        assert browser.post(url, data=data).status_code == 403, url
    assert events(vault_, "break-glass.declared") == 0 and events(vault_, "access-request.created") == 0


def test_residents_lists_the_grants_with_uses_left(client, signed_in, clinic, amina, clock):
    give(client, amina, clinic, clock, max_uses=3)
    html = text(signed_in(clinic).get("/provider/residents"))
    assert "Amina Yusuf" in html and "3 of 3" in html and f"/provider/residents/{amina.id}" in html


def test_read_a_record_for_a_stated_purpose(client, signed_in, clinic, amina, clock, vault_):
    record_id = add_record(client, amina)
    give(client, amina, clinic, clock)
    browser = signed_in(clinic)
    page = text(browser.get(f"/provider/residents/{amina.id}"))
    assert "Choose a purpose" in page and record_id not in page  # listing needs a purpose first
    listed = browser.get(f"/provider/residents/{amina.id}?purpose=treatment")
    assert listed.status_code == 200 and "Penicillin allergy" in text(listed) and record_id in text(listed)
    form_page = text(browser.get(f"/provider/records/{record_id}?subject={amina.id}"))
    assert '<option value="">Choose a purpose</option>' in form_page and "Penicillin" not in form_page
    reads = events(vault_, "access.permitted")
    no_purpose = browser.post(f"/provider/records/{record_id}", data={"csrf_token": browser.csrf, "purpose": ""})
    assert no_purpose.status_code == 400 and "Choose a purpose" in text(no_purpose)
    assert "Penicillin" not in text(no_purpose)
    assert events(vault_, "access.permitted") == reads and events(vault_, "access.refused") == 0  # nothing logged
    read = browser.post(f"/provider/records/{record_id}", data={"csrf_token": browser.csrf, "purpose": "treatment"})
    html = text(read)
    assert read.status_code == 200
    assert "<dt>Code</dt>" in html and "<dd>Penicillin</dd>" in html  # labelled fields
    assert "<dd>Active</dd>" in html and "Hives" in html and "Kind of record" in html
    main = html.split("<main", 1)[1].split("</main>", 1)[0]
    assert "{&#34;" not in main and '{"' not in main and "resourceType" not in main  # never raw JSON
    assert events(vault_, "access.permitted") == reads + 1


def test_a_tenancy_document_reads_as_labelled_fields(client, signed_in, landlord, amina, clock):
    income = {"employer": "Port Authority", "annualIncome": {"value": 41000, "currency": "GBP"}, "year": 2025}
    record_id = add_record(client, amina, category="tenancy.income", content=income, title="Income 2025")
    give(client, amina, landlord, clock, categories=("tenancy.income",), purpose="tenancy-screening")
    browser = signed_in(landlord)
    html = text(
        browser.post(
            f"/provider/records/{record_id}", data={"csrf_token": browser.csrf, "purpose": "tenancy-screening"}
        )
    )
    assert "<dt>Employer</dt>" in html and "<dd>Port Authority</dd>" in html
    assert "<dt>Annual income</dt>" in html and "41000" in html and "<dt>Currency</dt>" in html


def test_after_the_resident_revokes_the_read_is_refused_with_403(client, signed_in, clinic, amina, clock, vault_):
    record_id = add_record(client, amina)
    grant = give(client, amina, clinic, clock)
    assert client.post(f"/api/v1/consents/{grant['id']}/revoke", json={}, headers=auth(amina)).status_code == 200
    browser = signed_in(clinic)
    read = browser.post(f"/provider/records/{record_id}", data={"csrf_token": browser.csrf, "purpose": "treatment"})
    assert read.status_code == 403
    html = text(read)
    assert "Access refused" in html and "The resident revoked this consent." in html and "Penicillin" not in html
    assert events(vault_, "access.refused") == 1  # the refusal is recorded, as the API's is
    listing = browser.get(f"/provider/residents/{amina.id}?purpose=treatment")
    assert listing.status_code == 403 and "The resident revoked this consent." in text(listing)


def test_used_up_and_wrong_purpose_are_refused_in_the_apis_words(client, signed_in, clinic, amina, clock):
    record_id = add_record(client, amina)
    give(client, amina, clinic, clock, max_uses=1)
    browser = signed_in(clinic)
    data = {"csrf_token": browser.csrf, "purpose": "treatment"}
    assert browser.post(f"/provider/records/{record_id}", data=data).status_code == 200
    used = browser.post(f"/provider/records/{record_id}", data=data)
    assert used.status_code == 403 and "used as many times as it allows" in text(used)
    wrong = browser.post(f"/provider/records/{record_id}", data={**data, "purpose": "research"})
    assert wrong.status_code == 403 and "does not cover this purpose" in text(wrong)


def test_a_resident_without_a_grant_looks_like_an_unknown_id(client, signed_in, clinic, amina, person):
    record_id = add_record(client, amina)
    browser = signed_in(clinic)
    stranger = browser.get(f"/provider/residents/{amina.id}?purpose=treatment")
    unknown = browser.get("/provider/residents/p-aaaaaaaaaaaaaaaaaaaaaaaaaa?purpose=treatment")
    assert stranger.status_code == unknown.status_code == 404
    assert "Amina" not in text(stranger)
    read = browser.post(f"/provider/records/{record_id}", data={"csrf_token": browser.csrf, "purpose": "treatment"})
    missing = browser.post(
        "/provider/records/r-aaaaaaaaaaaaaaaaaaaaaaaaaa", data={"csrf_token": browser.csrf, "purpose": "treatment"}
    )
    assert read.status_code == missing.status_code == 404 and "Penicillin" not in text(read)
    bad_purpose = browser.get(f"/provider/residents/{amina.id}?purpose=gossip")
    assert bad_purpose.status_code == 400 and "Choose a purpose." in text(bad_purpose)


def test_break_glass_needs_reason_code_and_confirmation_then_reads(client, signed_in, clinic, amina, vault_):
    record_id = add_record(client, amina)
    browser = signed_in(clinic)
    page = text(browser.get("/provider/break-glass"))
    assert "I confirm this is an emergency; this access is logged and will be reviewed" in page
    base = {"csrf_token": browser.csrf, "subject_id": amina.id, "code": "unconscious", "reason": "Collapsed in A&E"}
    unconfirmed = browser.post("/provider/break-glass", data=base)
    assert unconfirmed.status_code == 400 and "Confirm that this is an emergency." in text(unconfirmed)
    uncoded = browser.post("/provider/break-glass", data={**base, "code": "", "confirm": "yes"})
    assert uncoded.status_code == 400 and "Choose the kind of emergency." in text(uncoded)
    silent = browser.post("/provider/break-glass", data={**base, "reason": " ", "confirm": "yes"})
    assert silent.status_code == 400
    assert events(vault_, "break-glass.declared") == 0
    declared = browser.post("/provider/break-glass", data={**base, "confirm": "yes"})
    assert declared.status_code == 303 and "notice=break-glass" in declared.headers["Location"]
    assert f"/provider/residents/{amina.id}" in declared.headers["Location"]
    assert events(vault_, "break-glass.declared") == 1
    listed = browser.get(f"/provider/residents/{amina.id}?purpose=emergency")
    assert listed.status_code == 200 and "Penicillin allergy" in text(listed)
    read = browser.post(f"/provider/records/{record_id}", data={"csrf_token": browser.csrf, "purpose": "emergency"})
    assert read.status_code == 200 and "<dd>Penicillin</dd>" in text(read)
    history = text(browser.get("/provider/history"))
    assert "Emergency declared" in history and "flagged" in history and "Amina Yusuf" in history


def test_break_glass_by_share_code_and_a_bad_one(client, signed_in, clinic, amina, vault_):
    made = client.post("/api/v1/share-codes", json={}, headers=auth(amina)).get_json()
    browser = signed_in(clinic)
    base = {"csrf_token": browser.csrf, "code": "life-threatening", "reason": "Anaphylaxis", "confirm": "yes"}
    bad = browser.post("/provider/break-glass", data={**base, "share_code": "0000-0000-00"})
    assert bad.status_code == 404 and INVALID in text(bad)
    good = browser.post("/provider/break-glass", data={**base, "share_code": made["code"]})
    assert good.status_code == 303
    with vault_.read_transaction() as session:
        assert session.scalars(select(BreakGlass.subject_id)).all() == [amina.id]
        declared = session.scalars(select(Event.data).where(Event.kind == "break-glass.declared")).one()
        code_id = session.scalars(select(ShareCode.id)).one()
    assert json.loads(declared)["share_code_id"] == code_id  # the redemption is on the ledger
    again = browser.post("/provider/break-glass", data={**base, "share_code": made["code"]})
    assert again.status_code == 404 and INVALID in text(again)


def test_my_access_history_shows_my_reads_and_refusals_only(client, signed_in, clinic, amina, clock, person):
    record_id = add_record(client, amina)
    give(client, amina, clinic, clock)
    other = person("clinic")
    give(client, amina, other, clock)
    client.get(f"/api/v1/records/{record_id}?purpose=treatment", headers=auth(other))  # not ours
    client.get(f"/api/v1/records/{record_id}?purpose=treatment", headers=auth(clinic))
    client.get(f"/api/v1/records/{record_id}?purpose=research", headers=auth(clinic))  # refused: wrong purpose
    browser = signed_in(clinic)
    html = text(browser.get("/provider/history"))
    rows = re.findall(r"<tr>\s*<th scope=\"row\"", html)
    assert len(rows) == 2
    assert "permitted" in html and "refused" in html and "wrong-purpose" in html
    assert "Research" in html and "Treatment" in html
    assert browser.get("/provider/history?before=abc").status_code == 400


def test_history_never_names_a_resident_who_gave_no_consent(client, signed_in, clinic, amina):
    record_id = add_record(client, amina)
    client.get(f"/api/v1/records/{record_id}?purpose=treatment", headers=auth(clinic))  # refused, no grant
    html = text(signed_in(clinic).get("/provider/history"))
    assert "refused" in html and "Amina" not in html


def test_page_rate_limits_apply_to_break_glass(app, vault_, signed_in, clinic, amina):
    import dataclasses

    from api import limits

    throttle = app.extensions["civicvault.throttle"]
    throttle.rates = dataclasses.replace(throttle.rates, break_glass="1/hour")
    browser = signed_in(clinic)
    base = {"csrf_token": browser.csrf, "subject_id": amina.id, "code": "unconscious", "reason": "x", "confirm": "yes"}
    assert browser.post("/provider/break-glass", data=base).status_code == 303
    over = browser.post("/provider/break-glass", data=base)
    assert over.status_code == 429 and "Retry-After" in over.headers
    assert events(vault_, "break-glass.declared") == 1
    assert limits.PAGE_SCOPE == "page"


def test_failed_codes_on_the_page_are_counted_per_caller(app, vault_, signed_in, landlord, person):
    import dataclasses

    throttle = app.extensions["civicvault.throttle"]
    throttle.rates = dataclasses.replace(throttle.rates, share_codes="2/hour")
    browser = signed_in(landlord)
    form = {
        "csrf_token": browser.csrf,
        "code": "0000-0000-00",
        "categories": ["tenancy.income"],
        "purpose": "tenancy-screening",
        "reason": "Application",
    }
    assert [browser.post("/provider/requests/new", data=form).status_code for _ in range(3)] == [404, 404, 429]
    other = signed_in(person("landlord"))
    assert other.post("/provider/requests/new", data={**form, "csrf_token": other.csrf}).status_code == 404
