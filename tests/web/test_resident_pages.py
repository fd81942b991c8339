"""The resident's pages with the test client: every page, the decisions they make, and what they refuse."""

import re
from datetime import timedelta

import pytest

from tests.api.conftest import add_record, grant
from tests.web.conftest import csrf_of
from vault.core.vocabulary import CATEGORIES


@pytest.fixture
def story(person, make_actor, client, clock):
    """Amina (a signed-in resident) with records, a clinic's grant and read, a landlord's pending request."""
    amina = person("resident", "Amina Yusuf")
    clinic = make_actor("clinic", "Riverside Community Clinic")
    landlord = make_actor("landlord", "Harbour Housing Association")
    from tests.conftest import Actor

    amina_actor = Actor(amina.id, "resident", amina.name, amina.token)
    allergy = add_record(
        client,
        amina_actor,
        "health.allergies",
        {
            "resourceType": "AllergyIntolerance",
            "code": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "display": "Penicillin G"}]},
            "reaction": [{"manifestation": [{"text": "Anaphylaxis"}], "severity": "severe"}],
            "criticality": "high",
        },
        "Penicillin allergy",
    )
    lease = add_record(
        client,
        amina_actor,
        "tenancy.lease",
        {"type": "residential-lease", "address": "12 Quay Street", "monthly_rent": {"amount": 940, "currency": "EUR"}},
        "Lease, Quay Street",
    )
    income = add_record(
        client, amina_actor, "tenancy.income", {"type": "income-statement", "tax_year": 2025}, "Income 2025"
    )
    treatment = grant(client, amina_actor, clinic, clock, categories=("health.*",))
    read = client.get(f"/api/v1/records/{allergy}?purpose=treatment", headers=clinic.auth)
    assert read.status_code == 200
    asked = client.post(
        "/api/v1/access-requests",
        json={
            "subject_id": amina.id,
            "categories": ["tenancy.*"],
            "purpose": "tenancy-screening",
            "reason": "Tenancy application for 7 Harbour Row",
            "expires_at": clock.at(days=20),
        },
        headers=landlord.auth,
    )
    assert asked.status_code == 201, asked.get_json()

    class Story:
        pass

    s = Story()
    s.amina, s.amina_actor, s.clinic, s.landlord = amina, amina_actor, clinic, landlord
    s.allergy, s.lease, s.income = allergy, lease, income
    s.grant_id, s.request_id = treatment["id"], asked.get_json()["id"]
    return s


PAGES = [
    "/resident/",
    "/resident/history",
    "/resident/requests",
    "/resident/sharing",
    "/resident/records",
    "/resident/records/new",
    "/resident/delegates",
    "/resident/rights",
]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders_for_the_resident(story, signed_in, path):
    web = signed_in(story.amina)
    answer = web.get(path)
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200, html[:2000]
    assert html.count("<h1") == 1
    assert "style=" not in html and "<script>" not in html
    # Every form that posts carries this session's CSRF token (an empty one would be refused).
    tokens = re.findall(r'name="csrf_token" value="([^"]*)"', html)
    assert tokens and set(tokens) == {web.csrf}


def test_the_pages_show_what_happened(story, signed_in):
    web = signed_in(story.amina)
    home = web.get("/resident/").get_data(as_text=True)
    assert "Riverside Community Clinic" in home and "Harbour Housing Association" in home
    history = web.get("/resident/history").get_data(as_text=True)
    assert "Riverside Community Clinic" in history and "Penicillin allergy" in history
    assert 'role="img"' in history and "<title" in history  # the chart, described
    assert "cv-proof" in history
    requests = web.get("/resident/requests").get_data(as_text=True)
    assert "Tenancy application" not in requests  # the reason is on the request's own page
    detail = web.get(f"/resident/requests/{story.request_id}").get_data(as_text=True)
    assert "Tenancy application for 7 Harbour Row" in detail
    assert "Lease, Quay Street" in detail and "Income 2025" in detail and "Penicillin allergy" not in detail
    sharing = web.get("/resident/sharing").get_data(as_text=True)
    assert "Riverside Community Clinic" in sharing
    record = web.get(f"/resident/records/{story.allergy}").get_data(as_text=True)
    assert "Penicillin G" in record and "Anaphylaxis" in record and "resourceType" not in record
    assert "{" not in re.sub(r"<script.*?</script>", "", record.split("<main", 1)[1])


def _post(web, path, data=None, **kwargs):
    return web.post(path, data={"csrf_token": web.csrf, **(data or {})}, **kwargs)


def test_another_residents_ids_are_not_found(story, person, signed_in, client, clock):
    tomasz = person("resident", "Tomasz Nowak")
    web = signed_in(tomasz)
    for path in (
        f"/resident/records/{story.allergy}",
        f"/resident/sharing/{story.grant_id}/revoke",
        f"/resident/requests/{story.request_id}",
        "/resident/records/r_unknown",
        "/resident/sharing/g_unknown/revoke",
        "/resident/requests/q_unknown",
    ):
        answer = web.get(path)
        assert answer.status_code == 404, path
    # Nor can they act on them.
    assert _post(web, f"/resident/sharing/{story.grant_id}/revoke").status_code == 404
    assert _post(web, f"/resident/requests/{story.request_id}/deny").status_code == 404
    assert (
        _post(web, f"/resident/requests/{story.request_id}/approve", {"categories": "tenancy.lease"}).status_code == 404
    )
    pending = client.get(f"/api/v1/access-requests/{story.request_id}", headers=story.amina_actor.auth).get_json()
    assert pending["status"] == "pending"
    live = client.get(f"/api/v1/consents/{story.grant_id}", headers=story.amina_actor.auth).get_json()
    assert live["status"] == "active"


def test_other_roles_get_404_and_strangers_go_to_sign_in(story, person, signed_in, app):
    assert app.test_client().get("/resident/history").status_code == 302
    clinic = signed_in(person("clinic"))
    assert clinic.get("/resident/").status_code == 404
    assert clinic.get("/resident/history").status_code == 404


def test_approving_narrowed_grants_only_the_ticked_categories_until_the_earlier_end(story, signed_in, client, clock):
    web = signed_in(story.amina)
    earlier = (clock.now + timedelta(days=5)).date()
    answer = _post(
        web,
        f"/resident/requests/{story.request_id}/approve",
        {"categories": ["tenancy.income"], "expires_on": earlier.isoformat(), "max_uses": "2"},
    )
    assert answer.status_code == 303 and "notice=approved" in answer.headers["Location"]
    decided = client.get(f"/api/v1/access-requests/{story.request_id}", headers=story.amina_actor.auth).get_json()
    assert decided["status"] == "approved"
    made = client.get(f"/api/v1/consents/{decided['grant_id']}", headers=story.amina_actor.auth).get_json()
    assert made["categories"] == ["tenancy.income"]
    assert made["expires_at"].startswith(earlier.isoformat()) and made["max_uses"] == 2
    # The landlord reads the income statement, not the lease.
    auth = story.landlord.auth
    assert client.get(f"/api/v1/records/{story.income}?purpose=tenancy-screening", headers=auth).status_code == 200
    assert client.get(f"/api/v1/records/{story.lease}?purpose=tenancy-screening", headers=auth).status_code == 404
    # Deciding twice is refused.
    assert _post(web, f"/resident/requests/{story.request_id}/deny").status_code == 409


def test_approving_everything_keeps_the_family_and_the_preview_follows_the_ticks(story, signed_in, client):
    web = signed_in(story.amina)
    preview = web.get(f"/resident/requests/{story.request_id}?preview=1&categories=tenancy.income").get_data(
        as_text=True
    )
    section = preview.split('id="preview-heading"', 1)[1]
    assert "Income 2025" in section and "Lease, Quay Street" not in section
    everything = [c for c in CATEGORIES if c.startswith("tenancy.")]
    answer = _post(web, f"/resident/requests/{story.request_id}/approve", {"categories": everything})
    assert answer.status_code == 303
    decided = client.get(f"/api/v1/access-requests/{story.request_id}", headers=story.amina_actor.auth).get_json()
    made = client.get(f"/api/v1/consents/{decided['grant_id']}", headers=story.amina_actor.auth).get_json()
    assert made["categories"] == ["tenancy.*"]


@pytest.mark.parametrize(
    "form, message",
    [
        ({"categories": ["health.allergies"]}, "Approve only categories the request asked for."),
        ({}, "Tick at least one category"),
        ({"categories": ["tenancy.income"], "max_uses": "many"}, "Enter a whole number"),
        ({"categories": ["tenancy.income"], "max_uses": "\u00b2"}, "Enter a whole number"),
        ({"categories": ["tenancy.income"], "max_uses": "0"}, "Enter a whole number"),
        ({"categories": ["tenancy.income"], "expires_on": "next week"}, "YYYY-MM-DD"),
        ({"categories": ["tenancy.income"], "expires_on": "2001-01-01"}, "must"),
    ],
)
def test_a_bad_approval_is_a_400_form_and_nothing_is_granted(story, signed_in, client, form, message):
    web = signed_in(story.amina)
    answer = _post(web, f"/resident/requests/{story.request_id}/approve", form)
    assert answer.status_code == 400
    assert message in answer.get_data(as_text=True)
    still = client.get(f"/api/v1/access-requests/{story.request_id}", headers=story.amina_actor.auth).get_json()
    assert still["status"] == "pending"


def test_the_api_approves_narrowed_too_and_refuses_wider(story, client):
    auth = story.amina_actor.auth
    wider = client.post(
        f"/api/v1/access-requests/{story.request_id}/approve", json={"categories": ["health.labs"]}, headers=auth
    )
    assert wider.status_code == 400
    done = client.post(
        f"/api/v1/access-requests/{story.request_id}/approve", json={"categories": ["tenancy.lease"]}, headers=auth
    )
    assert done.status_code == 200
    made = client.get(f"/api/v1/consents/{done.get_json()['grant_id']}", headers=auth).get_json()
    assert made["categories"] == ["tenancy.lease"]


def test_deny(story, signed_in, client):
    web = signed_in(story.amina)
    answer = _post(web, f"/resident/requests/{story.request_id}/deny")
    assert answer.status_code == 303 and "notice=denied" in answer.headers["Location"]
    decided = client.get(f"/api/v1/access-requests/{story.request_id}", headers=story.landlord.auth).get_json()
    assert decided["status"] == "denied" and decided["grant_id"] is None
    page = web.get("/resident/requests").get_data(as_text=True)
    assert "Denied" in page and "No request is waiting." in page


def test_revoking_names_what_stops_and_the_clinics_next_read_is_refused(story, signed_in, client):
    web = signed_in(story.amina)
    confirm = web.get(f"/resident/sharing/{story.grant_id}/revoke").get_data(as_text=True)
    assert "Riverside Community Clinic will no longer be able to read your health records" in confirm
    # The confirmation's own form, as a browser sends it.
    action = re.search(r'<form method="post" action="([^"]+/revoke[^"]*)"', confirm).group(1)
    answer = web.post(action, data={"csrf_token": csrf_of(confirm)})
    assert answer.status_code == 303 and "notice=revoked" in answer.headers["Location"]
    refused = client.get(f"/api/v1/records/{story.allergy}?purpose=treatment", headers=story.clinic.auth)
    assert refused.status_code in (403, 404)
    assert "Revoked" in web.get("/resident/sharing").get_data(as_text=True)


def test_a_post_without_csrf_is_refused_and_changes_nothing(story, signed_in, client):
    web = signed_in(story.amina)
    answer = web.post(f"/resident/sharing/{story.grant_id}/revoke")
    assert answer.status_code == 403
    answer = web.post(f"/resident/sharing/{story.grant_id}/revoke", data={"csrf_token": "cvc_forged"})
    assert answer.status_code == 403
    answer = web.post("/resident/rights/erase", data={"phrase": "erase my records", "understood": "yes"})
    assert answer.status_code == 403
    live = client.get(f"/api/v1/consents/{story.grant_id}", headers=story.amina_actor.auth).get_json()
    assert live["status"] == "active"
    assert client.get("/api/v1/me", headers=story.amina_actor.auth).status_code == 200


def test_creating_a_grant_from_the_directory(story, signed_in, client, clock):
    web = signed_in(story.amina)
    found = web.get("/resident/sharing?q=harbour").get_data(as_text=True)
    assert "Harbour Housing Association" in found and "Riverside Community Clinic</label>" not in found
    end = (clock.now + timedelta(days=10)).date().isoformat()
    answer = _post(
        web,
        "/resident/sharing",
        {
            "grantee_id": story.landlord.id,
            "categories": ["tenancy.lease"],
            "purpose": "tenancy-management",
            "expires_on": end,
            "max_uses": "3",
        },
    )
    assert answer.status_code == 303 and "notice=granted" in answer.headers["Location"]
    grants = client.get(f"/api/v1/consents?grantee_id={story.landlord.id}", headers=story.amina_actor.auth).get_json()
    made = grants["items"][0]
    assert made["categories"] == ["tenancy.lease"] and made["max_uses"] == 3 and made["actions"] == ["read"]
    assert made["expires_at"].startswith(end)
    lease = client.get(f"/api/v1/records/{story.lease}?purpose=tenancy-management", headers=story.landlord.auth)
    assert lease.status_code == 200


def test_a_grant_to_someone_outside_the_directory_is_refused(story, person, signed_in, client):
    web = signed_in(story.amina)
    tomasz = person("resident")
    answer = _post(
        web,
        "/resident/sharing",
        {
            "grantee_id": tomasz.id,
            "categories": ["health.allergies"],
            "purpose": "treatment",
            "expires_on": "2099-01-01",
        },
    )
    assert answer.status_code == 400
    answer = _post(web, "/resident/sharing", {"grantee_id": story.clinic.id})
    assert answer.status_code == 400
    assert "Tick at least one kind of record." in answer.get_data(as_text=True)
    grants = client.get(f"/api/v1/consents?subject_id={story.amina.id}", headers=story.amina_actor.auth).get_json()
    assert grants["total"] == 1


def test_adding_a_note_and_reading_it(story, signed_in, client):
    web = signed_in(story.amina)
    answer = _post(
        web,
        "/resident/records/new",
        {"category": "health.notes", "title": "Dentist visit", "format": "note", "note": "Check-up.\nAll fine."},
    )
    assert answer.status_code == 303 and "notice=record-added" in answer.headers["Location"]
    shown = web.get(answer.headers["Location"]).get_data(as_text=True)
    assert "Dentist visit" in shown and "All fine." in shown and "The record is added." in shown
    listing = client.get(f"/api/v1/subjects/{story.amina.id}/records", headers=story.amina_actor.auth).get_json()
    assert "Dentist visit" in [r["title"] for r in listing["items"]]


def test_adding_a_record_refuses_bad_input(story, signed_in, client):
    web = signed_in(story.amina)
    bad_json = {"category": "health.notes", "title": "X", "format": "json", "content_json": "{not json"}
    assert _post(web, "/resident/records/new", bad_json).status_code == 400
    no_title = {"category": "health.notes", "title": " ", "format": "note", "note": "text"}
    assert _post(web, "/resident/records/new", no_title).status_code == 400
    bad_category = {"category": "health.secret", "title": "X", "format": "note", "note": "text"}
    assert _post(web, "/resident/records/new", bad_category).status_code == 400
    listing = client.get(f"/api/v1/subjects/{story.amina.id}/records", headers=story.amina_actor.auth).get_json()
    assert listing["total"] == 3


def test_a_record_shows_its_versions(story, signed_in, client):
    put = client.put(
        f"/api/v1/records/{story.lease}",
        json={"content": {"type": "residential-lease", "address": "12 Quay Street, Flat 3"}, "expected_version": 1},
        headers=story.amina_actor.auth,
    )
    assert put.status_code == 200, put.get_json()
    web = signed_in(story.amina)
    current = web.get(f"/resident/records/{story.lease}").get_data(as_text=True)
    assert "Version 2 of 2" in current and "Flat 3" in current and "940 EUR" not in current
    first = web.get(f"/resident/records/{story.lease}?version=1").get_data(as_text=True)
    assert "Version 1 of 2" in first and "940 EUR" in first


def test_erasure_needs_the_phrase_and_the_box(story, signed_in, client):
    web = signed_in(story.amina)
    for form in ({}, {"phrase": "erase", "understood": "yes"}, {"phrase": "erase my records"}):
        answer = _post(web, "/resident/rights/erase", form)
        assert answer.status_code == 400
    assert client.get("/api/v1/me", headers=story.amina_actor.auth).status_code == 200
    assert client.get(f"/api/v1/records/{story.allergy}", headers=story.amina_actor.auth).status_code == 200
    assert web.get("/resident/").status_code == 200  # still signed in


def test_erasure_with_the_phrase_erases_and_signs_out(story, signed_in, client):
    web = signed_in(story.amina)
    answer = _post(web, "/resident/rights/erase", {"phrase": "  Erase my records ", "understood": "yes"})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "Commitment nonce" in html
    assert "civicvault_session=;" in answer.headers.get("Set-Cookie", "")
    assert web.get("/resident/").status_code == 302
    assert client.get("/api/v1/me", headers=story.amina_actor.auth).status_code == 401


def test_a_delegate_acts_for_the_resident_and_a_stranger_cannot(story, person, signed_in, client, clock):
    grace = person("resident", "Grace Okafor")
    appointed = client.post(
        "/api/v1/delegations",
        json={"delegate_id": grace.id, "expires_at": clock.at(days=30)},
        headers=story.amina_actor.auth,
    )
    assert appointed.status_code == 201
    web = signed_in(grace)
    home = web.get("/resident/").get_data(as_text=True)
    assert "Acting for" in home and "Amina Yusuf" in home
    history = web.get(f"/resident/history?for={story.amina.id}")
    html = history.get_data(as_text=True)
    assert history.status_code == 200 and "You are acting for <strong>Amina Yusuf</strong>" in html
    assert "Riverside Community Clinic" in html
    requests = web.get(f"/resident/requests?for={story.amina.id}").get_data(as_text=True)
    assert "Harbour Housing Association" in requests
    # A delegate may deny for her; the resident-only pages are not theirs.
    answer = _post(web, f"/resident/requests/{story.request_id}/deny?for={story.amina.id}")
    assert answer.status_code == 303 and f"for={story.amina.id}" in answer.headers["Location"]
    assert web.get(f"/resident/records/new?for={story.amina.id}").status_code == 404
    assert _post(web, f"/resident/rights/export?for={story.amina.id}").status_code == 404
    # Records: the delegate states a purpose.
    asked = web.get(f"/resident/records?for={story.amina.id}").get_data(as_text=True)
    assert "Why are you looking?" in asked
    listed = web.get(f"/resident/records?for={story.amina.id}&purpose=treatment").get_data(as_text=True)
    assert "Penicillin allergy" in listed
    # Someone who is not her delegate gets a 404, as for an unknown page.
    tomasz = signed_in(person("resident", "Tomasz Nowak"))
    for path in ("/resident/", "/resident/history", "/resident/requests", "/resident/sharing", "/resident/rights"):
        assert tomasz.get(f"{path}?for={story.amina.id}").status_code == 404, path
    assert tomasz.get("/resident/history?for=p_nobody").status_code == 404


def test_emergency_access_is_an_alert_on_the_home_page(story, signed_in, client):
    declared = client.post(
        f"/api/v1/subjects/{story.amina.id}/break-glass",
        json={"reason": "Unconscious in the emergency room", "code": "unconscious"},
        headers=story.clinic.auth,
    )
    assert declared.status_code == 201, declared.get_json()
    web = signed_in(story.amina)
    home = web.get("/resident/").get_data(as_text=True)
    alert = home.split('role="alert"', 1)[1].split("</div>", 1)[0]
    assert "Emergency access" in alert and "Unconscious in the emergency room" in alert
    assert "Riverside Community Clinic" in alert


def test_history_filters_by_who_and_date_and_refuses_a_bad_date(story, signed_in, clock):
    web = signed_in(story.amina)
    by_clinic = web.get(f"/resident/history?who={story.clinic.id}").get_data(as_text=True)
    lines = by_clinic.split('id="history-lines"', 1)[1]
    assert "Riverside Community Clinic" in lines and "Harbour Housing Association</" not in lines
    tomorrow = (clock.now + timedelta(days=1)).date().isoformat()
    later = web.get(f"/resident/history?since={tomorrow}").get_data(as_text=True)
    assert "No access matches." in later
    assert web.get("/resident/history?since=yesterday").status_code == 400
    assert web.get("/resident/history?who=p_someone_else").status_code == 400


def test_rights_downloads(story, signed_in):
    web = signed_in(story.amina)
    csv = web.get("/resident/rights/disclosures.csv")
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    assert "Riverside Community Clinic" in csv.get_data(as_text=True)
    exported = _post(web, "/resident/rights/export")
    assert exported.status_code == 200 and "attachment" in exported.headers["Content-Disposition"]
    document = exported.get_json()
    assert document["format"] == "civicvault-export-v1" and document["health_records"]["resourceType"] == "Bundle"
    bundle = _post(web, "/resident/rights/audit-bundle")
    assert bundle.status_code == 200
    if bundle.mimetype == "application/json":
        assert bundle.get_json()["format"] == "civicvault-audit-bundle/1"
        assert bundle.get_json()["subject_id"] == story.amina.id
    else:  # no checkpoint signed yet in this vault: the page says so
        assert "No checkpoint has been signed yet" in bundle.get_data(as_text=True)


def test_appointing_and_ending_a_delegate(story, person, signed_in, client):
    grace = person("resident", "Grace Okafor")
    web = signed_in(story.amina)
    nobody = _post(web, "/resident/delegates", {"login": "nobody-at-all", "expires_on": "2099-01-01"})
    assert nobody.status_code == 400 and "No resident has that login." in nobody.get_data(as_text=True)
    clinic_login = _post(web, "/resident/delegates", {"login": story.amina.login, "expires_on": "2099-01-01"})
    assert clinic_login.status_code == 400  # herself
    from datetime import date

    end = (date.today() + timedelta(days=30)).isoformat()
    answer = _post(web, "/resident/delegates", {"login": grace.login, "expires_on": end})
    assert answer.status_code == 303, answer.get_data(as_text=True)[:3000]
    listed = client.get("/api/v1/delegations", headers=story.amina_actor.auth).get_json()
    delegation = listed["items"][0]
    assert delegation["delegate_id"] == grace.id and delegation["status"] == "active"
    confirm = web.get(f"/resident/delegates/{delegation['id']}/end").get_data(as_text=True)
    assert "Grace Okafor" in confirm
    assert _post(web, f"/resident/delegates/{delegation['id']}/end").status_code == 303
    ended = client.get(f"/api/v1/delegations/{delegation['id']}", headers=story.amina_actor.auth).get_json()
    assert ended["status"] == "revoked"


def test_the_chart_is_an_described_image_with_one_bar_per_busy_day():
    from datetime import date

    from api.web.resident_chart import bar_chart

    days = [(date(2026, 11, 1) + timedelta(days=n), n % 3, 1 if n == 4 else 0) for n in range(30)]
    svg = str(bar_chart(days, title="Accesses <per> day"))
    assert svg.startswith("<svg") and 'role="img"' in svg and "aria-labelledby" in svg
    assert '<title id="cv-chart-title">Accesses &lt;per&gt; day</title>' in svg
    assert svg.count('class="cv-bars__refused"') == 1
    assert svg.count('class="cv-bars__permitted"') == sum(1 for _, p, _ in days if p)
    assert "the busiest day" in svg and "style=" not in svg
    empty = str(bar_chart([(date(2026, 11, 1), 0, 0)], title="Nothing"))
    assert "<rect" not in empty and "0 entries" in empty


def test_readable_content_never_shows_json():
    from api.web.resident_render import readable

    lease = readable(
        {"type": "residential-lease", "monthly_rent": {"amount": 940, "currency": "EUR"}, "term": {"months": 12}}
    )
    assert lease.kind == "Lease"
    assert [(f.label, f.text) for f in lease.fields][0] == ("Monthly rent", "940 EUR")
    observation = readable(
        {
            "resourceType": "Observation",
            "code": {"text": "HbA1c"},
            "valueQuantity": {"value": 6.9, "unit": "%"},
            "text": {"div": "<div xmlns='http://www.w3.org/1999/xhtml'>HbA1c <b>6.9%</b></div>"},
        }
    )
    shown = {f.label: f.text for f in observation.fields}
    assert shown == {"Summary": "HbA1c 6.9%", "What": "HbA1c", "Result": "6.9 %"}
    note = readable({"type": "note", "text": "Hello"})
    assert note.kind == "Note" and note.note == "Hello" and note.fields == []
    odd = readable({"a": [{"b": 1}, {"c": [1, 2]}], "deep": {"x": {"y": None}}})
    labels = [f.label for f in odd.fields]
    assert labels == ["A", "Deep"] and odd.fields[0].children[1].children[0].text == "1; 2"


def test_odd_numbers_in_addresses_are_ignored_not_errors(story, signed_in):
    web = signed_in(story.amina)
    assert web.get("/resident/history?before=\u00b2").status_code == 200
    assert web.get("/resident/history?before=99999999999999999999999").status_code == 200
    shown = web.get(f"/resident/records/{story.allergy}?version=\u00b2")
    assert shown.status_code == 200 and "Version 1 of 1" in shown.get_data(as_text=True)
    assert web.get(f"/resident/records/{story.allergy}?version=7").status_code == 404
    assert web.get("/resident/records/..%2f..%2fadmin").status_code == 404
