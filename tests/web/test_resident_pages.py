"""The resident's pages with the test client: every page, the decisions they make, and what they refuse."""

import re

import pytest

from tests.api.conftest import add_record, grant


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
