"""Hostile and malformed requests: each gets a problem+json 4xx and changes nothing."""

import json

import pytest

from tests.api.helpers import assert_problem
from vault.core.clock import utcnow
from vault.identity import principals


@pytest.fixture
def resident(make_actor):
    return make_actor("resident")


@pytest.fixture
def record_id(client, resident):
    response = client.post(
        f"/api/v1/subjects/{resident.id}/records",
        json={"category": "health.notes", "content": {"n": 1}},
        headers=resident.auth,
    )
    return response.get_json()["id"]


def records_url(actor):
    return f"/api/v1/subjects/{actor.id}/records"


def stored_count(client, actor) -> int:
    return client.get(records_url(actor), headers=actor.auth).get_json()["total"]


def post_raw(client, actor, data, content_type="application/json"):
    return client.post(records_url(actor), data=data, headers={**actor.auth, "Content-Type": content_type})


@pytest.mark.parametrize(
    "data",
    ["{", '{"category": "health.notes", "content": {}', "[1, 2", "nul", "\ufeff{}", '{"a": 1}}', "'single'"],
)
def test_malformed_json_is_400(client, resident, data):
    body = assert_problem(post_raw(client, resident, data), 400)
    assert body["detail"] == "The request body is not valid JSON."
    assert stored_count(client, resident) == 0


def test_body_that_is_not_utf8_is_400(client, resident):
    assert_problem(post_raw(client, resident, b'{"category": "\xff\xfe"}'), 400)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_standard_json_constants_are_400(client, resident, constant):
    data = '{"category": "health.notes", "content": {"x": ' + constant + "}}"
    assert_problem(post_raw(client, resident, data), 400)
    assert stored_count(client, resident) == 0


def test_deeply_nested_json_is_400_not_a_crash(client, resident):
    deep = '{"category": "health.notes", "content": ' + '{"a": ' * 50_000 + "1" + "}" * 50_001
    assert_problem(post_raw(client, resident, deep), 400)
    moderately_deep = {"category": "health.notes", "content": json.loads('{"a": ' * 40 + "1" + "}" * 40)}
    assert_problem(client.post(records_url(resident), json=moderately_deep, headers=resident.auth), 400)
    assert stored_count(client, resident) == 0


def test_unknown_fields_are_refused(client, resident):
    body = assert_problem(
        client.post(
            records_url(resident), json={"category": "health.notes", "content": {}, "owner": "x"}, headers=resident.auth
        ),
        400,
    )
    assert body["errors"] == {"json": {"owner": ["Unknown field."]}}
    assert stored_count(client, resident) == 0


def test_unknown_query_parameters_are_refused(client, resident, record_id):
    assert_problem(client.get(f"/api/v1/records/{record_id}?debug=1", headers=resident.auth), 400)
    assert_problem(client.get(records_url(resident) + "?limit=5", headers=resident.auth), 400)


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"category": 5, "content": {}}, "category"),
        ({"category": "health.notes", "content": [1, 2]}, "content"),
        ({"category": "health.notes", "content": "text"}, "content"),
        ({"category": "health.notes", "content": {}, "title": 7}, "title"),
        ({"category": "health.gossip", "content": {}}, "category"),
        ({"category": "health.*", "content": {}}, "category"),
        ({"content": {}}, "category"),
        ({"category": "health.notes"}, "content"),
        ({"category": "health.notes", "content": {}, "title": "x" * 201}, "title"),
    ],
)
def test_wrong_types_and_values_name_the_field(client, resident, payload, field):
    body = assert_problem(client.post(records_url(resident), json=payload, headers=resident.auth), 400)
    assert field in body["errors"]["json"]
    assert stored_count(client, resident) == 0


def test_a_json_array_body_is_400(client, resident):
    assert_problem(client.post(records_url(resident), json=[1, 2], headers=resident.auth), 400)


def test_missing_body_is_400(client, resident):
    assert_problem(client.post(records_url(resident), headers=resident.auth), 400)


def test_form_body_is_415(client, resident):
    assert_problem(post_raw(client, resident, "category=health.notes", "application/x-www-form-urlencoded"), 415)


@pytest.mark.parametrize(
    "payload",
    [
        {"content": {}, "expected_version": "1"},
        {"content": {}, "expected_version": 0},
        {"content": {}, "expected_version": True},
        {"content": {}, "category": "health.labs"},
        {},
    ],
)
def test_bad_update_bodies_are_400_and_change_nothing(client, resident, record_id, payload):
    assert_problem(client.put(f"/api/v1/records/{record_id}", json=payload, headers=resident.auth), 400)
    assert client.get(f"/api/v1/records/{record_id}", headers=resident.auth).get_json()["version"] == 1


def test_oversized_body_is_413(client, app, resident):
    limit = app.config["MAX_CONTENT_LENGTH"]
    payload = json.dumps({"category": "health.notes", "content": {"blob": "x" * limit}})
    assert_problem(post_raw(client, resident, payload), 413)
    assert stored_count(client, resident) == 0


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer cvt_not-a-real-token",
        "Token abc",
        "Bearer " + "x" * 5000,
    ],
)
def test_bad_tokens_are_401(client, resident, header):
    headers = {} if header is None else {"Authorization": header}
    for method, url in (("get", "/api/v1/me"), ("get", records_url(resident)), ("post", records_url(resident))):
        response = getattr(client, method)(url, headers=headers, json={"category": "health.notes", "content": {}})
        body = assert_problem(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "token" in body["detail"].lower() or "authorization" in body["detail"].lower()
    assert stored_count(client, resident) == 0


def test_revoked_token_is_401(client, vault_, resident):
    assert client.get("/api/v1/me", headers=resident.auth).status_code == 200
    with vault_.transaction() as session:
        assert principals.revoke_tokens(session, resident.id, now=utcnow()) == 1
    assert_problem(client.get("/api/v1/me", headers=resident.auth), 401)
    with vault_.transaction() as session:
        fresh = principals.issue_token(session, resident.id, now=utcnow())
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {fresh}"}).status_code == 200


def test_unauthenticated_request_with_a_bad_body_is_401_first(client, resident):
    response = client.post(records_url(resident), data="{", headers={"Content-Type": "application/json"})
    assert_problem(response, 401)


@pytest.mark.parametrize(
    "method, url",
    [
        ("get", "/api/v1/records/r_unknown"),
        ("put", "/api/v1/records/r_unknown"),
        ("get", "/api/v1/subjects/p_unknown/records"),
        ("post", "/api/v1/subjects/p_unknown/records"),
        ("get", "/api/v1/records/%00%ff"),
        ("get", "/api/v1/records/" + "a" * 3000),
    ],
)
def test_unknown_ids_are_404(client, resident, method, url):
    body = {"content": {}} if method == "put" else {"category": "health.notes", "content": {}}
    response = getattr(client, method)(url, headers=resident.auth, json=body)
    assert_problem(response, 404)


def test_unknown_route_and_wrong_method_are_problems(client, resident):
    assert_problem(client.get("/api/v1/nothing-here", headers=resident.auth), 404)
    response = client.delete("/api/v1/me", headers=resident.auth)
    assert_problem(response, 405)
    assert "GET" in response.headers["Allow"]


@pytest.mark.parametrize(
    "raw",
    [
        '{"category": "health.notes", "content": {"x": "\\ud800"}}',
        '{"category": "health.notes", "content": {"\\udfff": 1}}',
        '{"category": "health.notes", "content": {}, "title": "a\\ud800b"}',
        '{"category": "health.notes", "content": {}, "title": "a\\u007fb"}',
    ],
)
def test_lone_surrogates_and_control_characters_are_400(client, resident, raw):
    assert_problem(post_raw(client, resident, raw), 400)
    assert stored_count(client, resident) == 0
