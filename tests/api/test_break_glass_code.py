"""The break-glass declaration's coded reason over HTTP: sent, checked against the vocabulary, shown back."""

from tests.api.helpers import assert_problem
from vault.core.vocabulary import BREAK_GLASS_CODES


def test_a_declaration_carries_its_code(client, make_actor):
    resident, clinic = make_actor("resident"), make_actor("clinic")
    url = f"/api/v1/subjects/{resident.id}/break-glass"
    response = client.post(url, json={"code": "unconscious", "reason": "Found collapsed"}, headers=clinic.auth)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["code"] == "unconscious"
    listed = client.get(url, headers=resident.auth).get_json()["items"]
    assert [item["code"] for item in listed] == ["unconscious"]
    queue = client.get("/api/v1/audit/break-glass", headers=make_actor("compliance").auth)
    assert queue.status_code == 200, queue.get_json()
    assert [item["code"] for item in queue.get_json()["items"]] == ["unconscious"]


def test_a_code_outside_the_vocabulary_is_refused_and_none_is_other(client, make_actor):
    resident, clinic = make_actor("resident"), make_actor("clinic")
    url = f"/api/v1/subjects/{resident.id}/break-glass"
    for bad in ("bored", "", "UNCONSCIOUS", 1, ["unconscious"]):
        problem = assert_problem(client.post(url, json={"code": bad, "reason": "x"}, headers=clinic.auth), 400)
        assert "code" in problem["errors"]["json"], problem
    assert client.get(url, headers=resident.auth).get_json()["total"] == 0
    for body in ({"reason": "an older client"}, {"code": None, "reason": "null is not sent"}):
        response = client.post(url, json=body, headers=clinic.auth)
        assert response.status_code == 201 and response.get_json()["code"] == "other" in BREAK_GLASS_CODES
