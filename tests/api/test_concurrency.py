"""Concurrent writers: version numbers stay unique and gap-free, stale writes lose."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from vault.storage.models import RecordVersion

WRITERS = 20


@pytest.fixture
def resident(make_actor):
    return make_actor("resident")


@pytest.fixture
def record_id(client, resident):
    response = client.post(
        f"/api/v1/subjects/{resident.id}/records",
        json={"category": "health.notes", "content": {"v": 0}},
        headers=resident.auth,
    )
    return response.get_json()["id"]


def put_many(app, resident, record_id, bodies):
    def put(body):
        with app.test_client() as c:
            return c.put(f"/api/v1/records/{record_id}", json=body, headers=resident.auth)

    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        return list(pool.map(put, bodies))


def test_concurrent_versions_are_unique_and_gap_free(app, vault_, resident, record_id):
    responses = put_many(app, resident, record_id, [{"content": {"writer": i}} for i in range(WRITERS)])
    assert [r.status_code for r in responses] == [200] * WRITERS
    assert sorted(r.get_json()["version"] for r in responses) == list(range(2, WRITERS + 2))
    with vault_.transaction() as session:
        versions = session.scalars(select(RecordVersion.version).where(RecordVersion.record_id == record_id)).all()
    assert sorted(versions) == list(range(1, WRITERS + 2))
    # Each writer's content is stored under the version it was told.
    client = app.test_client()
    for response in responses[:5]:
        version = response.get_json()["version"]
        read = client.get(f"/api/v1/records/{record_id}?version={version}", headers=resident.auth).get_json()
        assert read["content"] == {"writer": responses.index(response)}


def test_concurrent_writers_with_the_same_expected_version_one_wins(app, resident, record_id):
    responses = put_many(
        app, resident, record_id, [{"content": {"writer": i}, "expected_version": 1} for i in range(WRITERS)]
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [409] * (WRITERS - 1)
    winner = next(i for i, r in enumerate(responses) if r.status_code == 200)
    current = app.test_client().get(f"/api/v1/records/{record_id}", headers=resident.auth).get_json()
    assert current["version"] == 2 and current["content"] == {"writer": winner}


def test_concurrent_creates_all_land(app, vault_, resident):
    def post(i):
        with app.test_client() as c:
            return c.post(
                f"/api/v1/subjects/{resident.id}/records",
                json={"category": "health.notes", "content": {"i": i}},
                headers=resident.auth,
            )

    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        responses = list(pool.map(post, range(WRITERS)))
    assert [r.status_code for r in responses] == [201] * WRITERS
    listing = app.test_client().get(f"/api/v1/subjects/{resident.id}/records", headers=resident.auth).get_json()
    assert listing["total"] == WRITERS
