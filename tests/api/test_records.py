"""The records endpoints, used as a resident would."""

import pytest

from tests.api.helpers import assert_problem

ALLERGY = {
    "resourceType": "AllergyIntolerance",
    "code": {
        "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "7980", "display": "Penicillin G"}]
    },
    "criticality": "high",
}


@pytest.fixture
def resident(make_actor):
    return make_actor("resident", "Amina Yusuf")


def create(client, actor, **body):
    body = {"category": "health.allergies", "content": ALLERGY, **body}
    return client.post(f"/api/v1/subjects/{actor.id}/records", json=body, headers=actor.auth)


def test_me_returns_the_caller(client, resident):
    response = client.get("/api/v1/me", headers=resident.auth)
    assert response.status_code == 200
    assert response.get_json() == {
        "id": resident.id,
        "role": "resident",
        "name": "Amina Yusuf",
        "created_at": response.get_json()["created_at"],
    }
    assert response.get_json()["created_at"].endswith("Z")


def test_create_then_read_round_trips_content(client, resident):
    created = create(client, resident, title="Penicillin allergy")
    assert created.status_code == 201
    meta = created.get_json()
    assert meta["subject_id"] == resident.id and meta["version"] == 1 and meta["title"] == "Penicillin allergy"
    assert "content" not in meta
    assert created.headers["Location"].endswith(f"/api/v1/records/{meta['id']}")

    read = client.get(f"/api/v1/records/{meta['id']}", headers=resident.auth)
    assert read.status_code == 200
    body = read.get_json()
    assert body["content"] == ALLERGY
    assert body["category"] == "health.allergies" and body["title"] == "Penicillin allergy"
    assert body["created_at"] == meta["created_at"]


def test_list_shows_metadata_and_filters_by_category(client, resident):
    create(client, resident, title="Allergy")
    create(client, resident, category="tenancy.lease", content={"rent": 940})
    listing = client.get(f"/api/v1/subjects/{resident.id}/records", headers=resident.auth).get_json()
    assert listing["total"] == 2
    assert {item["category"] for item in listing["items"]} == {"health.allergies", "tenancy.lease"}
    assert all("content" not in item for item in listing["items"])
    only = client.get(
        f"/api/v1/subjects/{resident.id}/records?category=tenancy.lease", headers=resident.auth
    ).get_json()
    assert only["total"] == 1 and only["items"][0]["category"] == "tenancy.lease"


def test_put_adds_a_version_and_keeps_the_old_one(client, resident):
    record_id = create(client, resident, title="Allergy").get_json()["id"]
    updated = client.put(f"/api/v1/records/{record_id}", json={"content": {"v": 2}}, headers=resident.auth)
    assert updated.status_code == 200
    assert updated.get_json()["version"] == 2
    assert updated.get_json()["title"] == "Allergy"  # kept when not given
    current = client.get(f"/api/v1/records/{record_id}", headers=resident.auth).get_json()
    assert current["version"] == 2 and current["content"] == {"v": 2}
    first = client.get(f"/api/v1/records/{record_id}?version=1", headers=resident.auth).get_json()
    assert first["version"] == 1 and first["content"] == ALLERGY
    missing = client.get(f"/api/v1/records/{record_id}?version=3", headers=resident.auth)
    assert_problem(missing, 404)


def test_put_with_a_stale_expected_version_conflicts(client, resident):
    record_id = create(client, resident).get_json()["id"]
    ok = client.put(
        f"/api/v1/records/{record_id}", json={"content": {"v": 2}, "expected_version": 1}, headers=resident.auth
    )
    assert ok.status_code == 200
    stale = client.put(
        f"/api/v1/records/{record_id}", json={"content": {"v": 3}, "expected_version": 1}, headers=resident.auth
    )
    assert_problem(stale, 409)
    assert client.get(f"/api/v1/records/{record_id}", headers=resident.auth).get_json()["content"] == {"v": 2}


def test_put_can_change_the_title(client, resident):
    record_id = create(client, resident, title="Old").get_json()["id"]
    client.put(f"/api/v1/records/{record_id}", json={"content": {}, "title": "New"}, headers=resident.auth)
    assert client.get(f"/api/v1/records/{record_id}", headers=resident.auth).get_json()["title"] == "New"
    assert client.get(f"/api/v1/records/{record_id}?version=1", headers=resident.auth).get_json()["title"] == "Old"


def test_resident_may_state_a_purpose_and_it_is_validated(client, resident):
    record_id = create(client, resident).get_json()["id"]
    assert client.get(f"/api/v1/records/{record_id}?purpose=treatment", headers=resident.auth).status_code == 200
    assert_problem(client.get(f"/api/v1/records/{record_id}?purpose=curiosity", headers=resident.auth), 400)


def test_unicode_content_survives(client, resident):
    content = {"note": "Allergie à la pénicilline — 青霉素过敏 🩺", "n": [1, 2.5, None, True]}
    record_id = create(client, resident, content=content, title="Żółć").get_json()["id"]
    body = client.get(f"/api/v1/records/{record_id}", headers=resident.auth).get_json()
    assert body["content"] == content and body["title"] == "Żółć"


@pytest.mark.parametrize("role", ["clinic", "landlord", "compliance", "admin", "witness", "resident"])
def test_other_principals_get_the_same_404_as_for_unknown_ids(client, make_actor, resident, role):
    record_id = create(client, resident).get_json()["id"]
    other = make_actor(role)
    foreign_read = client.get(f"/api/v1/records/{record_id}?purpose=treatment", headers=other.auth)
    unknown_read = client.get("/api/v1/records/r_doesnotexist?purpose=treatment", headers=other.auth)
    assert_problem(foreign_read, 404)
    assert foreign_read.get_json() == unknown_read.get_json()

    foreign_list = client.get(f"/api/v1/subjects/{resident.id}/records?purpose=treatment", headers=other.auth)
    unknown_list = client.get("/api/v1/subjects/p_doesnotexist/records?purpose=treatment", headers=other.auth)
    assert_problem(foreign_list, 404)
    assert foreign_list.get_json() == unknown_list.get_json()

    foreign_put = client.put(
        f"/api/v1/records/{record_id}", json={"content": {"x": 1}, "purpose": "treatment"}, headers=other.auth
    )
    assert_problem(foreign_put, 404)
    foreign_post = client.post(
        f"/api/v1/subjects/{resident.id}/records",
        json={"category": "health.notes", "content": {"x": 1}, "purpose": "treatment"},
        headers=other.auth,
    )
    assert_problem(foreign_post, 404)
    # Nothing they sent was stored and the record is unchanged.
    listing = client.get(f"/api/v1/subjects/{resident.id}/records", headers=resident.auth).get_json()
    assert listing["total"] == 1 and listing["items"][0]["version"] == 1


def test_healthz_needs_no_token(client):
    response = client.get("/healthz")
    body = response.get_json()
    assert response.status_code == 200 and body["status"] == "ok"
    assert body["ledger"]["pending"] == 0 and body["ledger"]["oldest_pending_seconds"] is None


def test_openapi_documents_the_endpoints(client):
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    for path in ("/api/v1/me", "/api/v1/subjects/{subject_id}/records", "/api/v1/records/{record_id}", "/healthz"):
        assert path in spec["paths"], path
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    create_schema = spec["paths"]["/api/v1/subjects/{subject_id}/records"]["post"]
    assert "requestBody" in create_schema
    assert set(spec["components"]["schemas"]["ProblemOut"]["properties"]) >= {"type", "title", "status", "detail"}
    assert client.get("/docs").status_code == 200


def test_put_title_null_removes_it_and_omitted_keeps_it(client, resident):
    record_id = create(client, resident, title="Keep me").get_json()["id"]
    kept = client.put(f"/api/v1/records/{record_id}", json={"content": {"v": 2}}, headers=resident.auth).get_json()
    assert kept["title"] == "Keep me"
    removed = client.put(
        f"/api/v1/records/{record_id}", json={"content": {"v": 3}, "title": None}, headers=resident.auth
    ).get_json()
    assert removed["title"] is None
    assert client.get(f"/api/v1/records/{record_id}", headers=resident.auth).get_json()["title"] is None
    assert client.get(f"/api/v1/records/{record_id}?version=2", headers=resident.auth).get_json()["title"] == "Keep me"


def test_an_old_version_reports_when_it_was_written(client, resident):
    record_id = create(client, resident).get_json()["id"]
    v2 = client.put(f"/api/v1/records/{record_id}", json={"content": {"v": 2}}, headers=resident.auth).get_json()
    first = client.get(f"/api/v1/records/{record_id}?version=1", headers=resident.auth).get_json()
    assert first["updated_at"] == first["created_at"] <= v2["updated_at"]
    assert (
        client.get(f"/api/v1/records/{record_id}", headers=resident.auth).get_json()["updated_at"] == v2["updated_at"]
    )


def test_authentication_and_health_do_not_wait_for_a_writer(client, vault_, resident, database_url):
    """On SQLite, read-only transactions begin DEFERRED and pass a held write lock."""
    import time

    from sqlalchemy import text

    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite locking")
    with vault_.transaction() as session:
        session.execute(text("UPDATE principals SET role = role"))  # holds the write lock
        start = time.monotonic()
        assert client.get("/healthz").status_code == 200
        assert client.get("/api/v1/me", headers=resident.auth).status_code == 200
        assert time.monotonic() - start < 5
