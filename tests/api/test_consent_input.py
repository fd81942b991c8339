"""Bad input to the consent endpoints: a problem+json 4xx each time, and nothing stored."""

import pytest

from tests.api.conftest import grant
from tests.api.helpers import assert_problem


def grants_total(client, actor):
    return client.get("/api/v1/consents", headers=actor.auth).get_json()["total"]


def body(cast, clock, **change):
    return {
        "grantee_id": cast.clinic.id,
        "categories": ["health.*"],
        "purpose": "treatment",
        "actions": ["read"],
        "expires_at": clock.at(days=30),
        **change,
    }


@pytest.mark.parametrize(
    "change, status",
    [
        ({"categories": []}, 400),
        ({"categories": ["health.**"]}, 400),
        ({"categories": ["*"]}, 400),
        ({"categories": "health.*"}, 400),
        ({"categories": ["finance.*"]}, 400),
        ({"purpose": "marketing"}, 400),
        ({"actions": []}, 400),
        ({"actions": ["delete"]}, 400),
        ({"expires_at": "2027-01-01T00:00:00"}, 400),  # no time zone
        ({"expires_at": "next week"}, 400),
        ({"expires_at": None}, 400),
        ({"max_uses": 0}, 400),
        ({"max_uses": "3"}, 400),
        ({"max_uses": 10**9}, 400),
        ({"extra": True}, 400),
        ({"grantee_id": 42}, 400),
    ],
)
def test_malformed_grants_are_refused(client, cast, clock, change, status):
    assert_problem(client.post("/api/v1/consents", json=body(cast, clock, **change), headers=cast.amina.auth), status)
    assert grants_total(client, cast.amina) == 0


@pytest.mark.parametrize("days, hours", [(0, -1), (0, 0), (366, 0)])
def test_grant_windows_are_bounded(client, cast, clock, days, hours):
    response = client.post(
        "/api/v1/consents", json=body(cast, clock, expires_at=clock.at(days=days, hours=hours)), headers=cast.amina.auth
    )
    assert_problem(response, 400)
    assert grants_total(client, cast.amina) == 0


def test_a_grant_must_end_after_it_starts(client, cast, clock):
    response = client.post(
        "/api/v1/consents",
        json=body(cast, clock, valid_from=clock.at(days=5), expires_at=clock.at(days=4)),
        headers=cast.amina.auth,
    )
    assert_problem(response, 400)


@pytest.mark.parametrize("who", ["unknown", "self", "compliance", "admin", "witness"])
def test_grantees_must_be_real_clinics_landlords_or_residents(client, cast, clock, who):
    grantee = {
        "unknown": "p-nobody",
        "self": cast.amina.id,
        "compliance": cast.compliance.id,
        "admin": cast.admin.id,
        "witness": cast.witness.id,
    }[who]
    assert_problem(
        client.post("/api/v1/consents", json=body(cast, clock, grantee_id=grantee), headers=cast.amina.auth), 400
    )
    assert grants_total(client, cast.amina) == 0


@pytest.mark.parametrize("role", ["clinic", "landlord", "compliance", "admin", "witness"])
def test_only_residents_or_delegates_give_consent(client, cast, clock, role):
    actor = getattr(cast, role)
    assert_problem(
        client.post("/api/v1/consents", json=body(cast, clock, subject_id=cast.amina.id), headers=actor.auth), 404
    )
    assert grants_total(client, cast.amina) == 0


def test_a_resident_cannot_grant_for_someone_else(client, cast, clock):
    assert_problem(
        client.post("/api/v1/consents", json=body(cast, clock, subject_id=cast.tomasz.id), headers=cast.amina.auth), 404
    )
    assert grants_total(client, cast.tomasz) == 0


def test_categories_are_normalised(client, cast, clock):
    g = grant(
        client,
        cast.amina,
        cast.clinic,
        clock,
        categories=["health.labs", "health.labs", "tenancy.lease"],
        actions=["read", "read"],
    )
    assert g["categories"] == ["health.labs", "tenancy.lease"] and g["actions"] == ["read"]


@pytest.mark.parametrize(
    "change",
    [
        {"reason": ""},
        {"reason": "   "},
        {"reason": "x" * 1001},
        {"reason": "a\x00b"},
        {"subject_id": None},
        {"categories": []},
        {"purpose": "spying"},
        {"expires_at": "2020-01-01T00:00:00Z"},
        {"actions": ["erase"]},
        {"grant_id": "g-x"},
    ],
)
def test_malformed_access_requests_are_refused(client, cast, clock, change):
    payload = {
        "subject_id": cast.amina.id,
        "categories": ["tenancy.income"],
        "purpose": "tenancy-screening",
        "reason": "Screening",
        **change,
    }
    assert_problem(client.post("/api/v1/access-requests", json=payload, headers=cast.landlord.auth), 400)
    assert client.get("/api/v1/access-requests", headers=cast.amina.auth).get_json()["total"] == 0


@pytest.mark.parametrize("role", ["amina", "tomasz", "compliance", "admin", "witness"])
def test_only_clinics_and_landlords_request_access(client, cast, role):
    payload = {
        "subject_id": cast.amina.id,
        "categories": ["tenancy.income"],
        "purpose": "tenancy-screening",
        "reason": "Screening",
    }
    assert_problem(client.post("/api/v1/access-requests", json=payload, headers=getattr(cast, role).auth), 403)


def test_a_request_to_a_non_resident_is_404(client, cast):
    payload = {
        "subject_id": cast.clinic.id,
        "categories": ["tenancy.income"],
        "purpose": "tenancy-screening",
        "reason": "Screening",
    }
    assert_problem(client.post("/api/v1/access-requests", json=payload, headers=cast.landlord.auth), 404)


def test_approval_body_is_checked(client, cast, clock):
    payload = {
        "subject_id": cast.amina.id,
        "categories": ["tenancy.income"],
        "purpose": "tenancy-screening",
        "reason": "Screening",
    }
    request = client.post("/api/v1/access-requests", json=payload, headers=cast.landlord.auth).get_json()
    for bad in ({"max_uses": -1}, {"expires_at": clock.at(days=400)}, {"grant": "all"}):
        assert_problem(
            client.post(f"/api/v1/access-requests/{request['id']}/approve", json=bad, headers=cast.amina.auth), 400
        )
    assert (
        client.get(f"/api/v1/access-requests/{request['id']}", headers=cast.amina.auth).get_json()["status"]
        == "pending"
    )


@pytest.mark.parametrize(
    "change",
    [{"expires_at": None}, {"delegate_id": "p-nobody"}, {"expires_at": "2020-01-01T00:00:00Z"}, {"other": 1}],
)
def test_malformed_delegations_are_refused(client, cast, clock, change):
    payload = {"delegate_id": cast.tomasz.id, "expires_at": clock.at(days=30), **change}
    assert_problem(client.post("/api/v1/delegations", json=payload, headers=cast.amina.auth), 400)
    assert client.get("/api/v1/delegations", headers=cast.amina.auth).get_json()["total"] == 0


def test_delegates_must_be_other_residents_and_appointed_by_residents(client, cast, clock):
    for delegate in (cast.amina.id, cast.clinic.id):
        assert_problem(
            client.post(
                "/api/v1/delegations",
                json={"delegate_id": delegate, "expires_at": clock.at(days=3)},
                headers=cast.amina.auth,
            ),
            400,
        )
    assert_problem(
        client.post(
            "/api/v1/delegations",
            json={"delegate_id": cast.tomasz.id, "expires_at": clock.at(days=3)},
            headers=cast.clinic.auth,
        ),
        403,
    )
    assert_problem(
        client.post(
            "/api/v1/delegations",
            json={"delegate_id": cast.tomasz.id, "expires_at": clock.at(days=400)},
            headers=cast.amina.auth,
        ),
        400,
    )


@pytest.mark.parametrize("reason", ["", " ", "x" * 1001, "line\x07bell"])
def test_break_glass_needs_a_real_reason(client, cast, reason):
    assert_problem(
        client.post(f"/api/v1/subjects/{cast.amina.id}/break-glass", json={"reason": reason}, headers=cast.clinic.auth),
        400,
    )
    assert client.get(f"/api/v1/subjects/{cast.amina.id}/break-glass", headers=cast.amina.auth).get_json()["total"] == 0


@pytest.mark.parametrize("query", ["status=lost", "limit=0", "limit=100000", "offset=-1", "color=red"])
def test_list_queries_are_checked(client, cast, query):
    for path in ("/api/v1/consents", "/api/v1/access-requests", "/api/v1/delegations"):
        if "status" in query and path.endswith("delegations"):
            continue
        assert_problem(client.get(f"{path}?{query}", headers=cast.amina.auth), 400)


def test_pagination_is_stable_with_exact_totals(client, cast, clock):
    made = [grant(client, cast.amina, cast.clinic, clock, days=d + 1)["id"] for d in range(7)]
    clock.advance(seconds=1)
    pages = [client.get(f"/api/v1/consents?limit=3&offset={o}", headers=cast.amina.auth).get_json() for o in (0, 3, 6)]
    assert all(p["total"] == 7 for p in pages)
    seen = [g["id"] for p in pages for g in p["items"]]
    assert sorted(seen) == sorted(made) and len(seen) == len(set(seen))
    active = client.get("/api/v1/consents?status=active", headers=cast.amina.auth).get_json()["total"]
    clock.advance(days=3, seconds=1)
    assert client.get("/api/v1/consents?status=expired", headers=cast.amina.auth).get_json()["total"] == 3
    assert client.get("/api/v1/consents?status=active", headers=cast.amina.auth).get_json()["total"] == active - 3
