"""GET /api/v1/audit/flags on real traffic: each rule fires on its scenario, normal use raises nothing."""

import dataclasses

import pytest

from tests.api.conftest import add_record, grant
from tests.api.helpers import assert_problem
from vault.core.config import FlagThresholds

URL = "/api/v1/audit/flags"


def get_flags(client, cast, query=""):
    response = client.get(f"{URL}?{query}", headers=cast.compliance.auth)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@pytest.fixture
def records(client, cast):
    return [add_record(client, cast.amina, c) for c in ("health.labs", "health.allergies", "health.notes")]


def test_normal_use_raises_no_flag(client, cast, clock, records):
    grant(client, cast.amina, cast.clinic, clock, days=30)
    for hour in range(8):
        clock.advance(hours=1)
        for record in records:
            assert (
                client.get(f"/api/v1/records/{record}?purpose=treatment", headers=cast.clinic.auth).status_code == 200
            )
        if hour % 3 == 0:  # the odd mistake: a wrong purpose now and then
            assert (
                client.get(f"/api/v1/records/{records[0]}?purpose=research", headers=cast.clinic.auth).status_code
                == 403
            )
    body = get_flags(client, cast)
    assert body["items"] == [] and body["total"] == 0
    assert body["thresholds"]["refusal_count"] == 5 and body["thresholds"]["volume_factor"] == 5.0


def test_each_rule_fires_on_its_scenario(client, vault_, cast, clock, records):
    # Small thresholds so that a handful of requests makes each scenario.
    vault_.settings = dataclasses.replace(
        vault_.settings,
        flags=FlagThresholds(
            refusal_count=4,
            refusal_minutes=10,
            volume_window_hours=1,
            volume_baseline_windows=3,
            volume_factor=2,
            volume_min_reads=5,
            expiry_hours=2,
        ),
    )
    grant(client, cast.amina, cast.clinic, clock, days=0.25)  # ends in 6 hours
    for _ in range(3):  # usual volume: 3 reads an hour
        clock.advance(hours=1)
        for record in records:
            client.get(f"/api/v1/records/{record}?purpose=treatment", headers=cast.clinic.auth)
    clock.advance(minutes=90)  # 1.5 hours before the grant ends
    for _ in range(3):  # a spike near expiry: 9 reads in an hour
        for record in records:
            assert (
                client.get(f"/api/v1/records/{record}?purpose=treatment", headers=cast.clinic.auth).status_code == 200
            )
    clock.advance(hours=2)  # the grant has ended
    assert client.get(f"/api/v1/records/{records[0]}?purpose=treatment", headers=cast.clinic.auth).status_code == 403
    for n in range(4):  # the landlord tries record after record within minutes
        clock.advance(minutes=1)
        assert (
            client.get(
                f"/api/v1/records/{records[n % 3]}?purpose=tenancy-screening", headers=cast.landlord.auth
            ).status_code
            == 404
        )
    declaration = client.post(
        f"/api/v1/subjects/{cast.tomasz.id}/break-glass", json={"reason": "collapsed"}, headers=cast.clinic.auth
    )
    assert declaration.status_code == 201

    body = get_flags(client, cast, f"from={clock.at(days=-1)}&to={clock.at(minutes=1)}")
    by_rule = {f["rule"]: f for f in body["items"]}
    assert set(by_rule) == {"read-volume", "near-expiry", "after-expiry", "refusal-burst", "break-glass"}
    assert by_rule["read-volume"]["principal_id"] == cast.clinic.id and by_rule["read-volume"]["count"] == 9
    assert by_rule["read-volume"]["detail"]["usual"] == 3.0
    assert by_rule["near-expiry"]["count"] == 9 and by_rule["near-expiry"]["subject_id"] == cast.amina.id
    assert by_rule["after-expiry"]["count"] == 1 and by_rule["after-expiry"]["principal_id"] == cast.clinic.id
    assert by_rule["refusal-burst"]["principal_id"] == cast.landlord.id and by_rule["refusal-burst"]["count"] == 4
    assert by_rule["refusal-burst"]["detail"]["reasons"] == ["no-grant"]
    assert by_rule["break-glass"]["detail"] == {
        "break_glass_id": declaration.get_json()["id"],
        "reads": 0,
        "acknowledged": False,
    }
    # Every listed index is an event the officer can look up and prove.
    events = client.get(
        f"/api/v1/audit/events?actor_id={cast.landlord.id}&outcome=refused", headers=cast.compliance.auth
    ).get_json()
    assert by_rule["refusal-burst"]["ledger_indices"] == [i["ledger_index"] for i in events["items"]]
    # Only that rule, when asked.
    only = get_flags(
        client, cast, f"from={clock.at(days=-1)}&to={clock.at(minutes=1)}&rule=break-glass&rule=after-expiry"
    )
    assert [f["rule"] for f in only["items"]] == ["after-expiry", "break-glass"]
    # Acknowledged break-glass still shows, marked as such.
    client.post(
        f"/api/v1/audit/break-glass/{declaration.get_json()['id']}/acknowledge",
        json={"note": "ok"},
        headers=cast.compliance.auth,
    )
    again = get_flags(client, cast, f"from={clock.at(days=-1)}&to={clock.at(minutes=1)}&rule=break-glass")
    assert again["items"][0]["detail"]["acknowledged"] is True


@pytest.mark.parametrize("who", ("amina", "clinic", "landlord", "admin", "witness"))
def test_other_roles_are_refused(client, cast, who):
    assert_problem(client.get(URL, headers=getattr(cast, who).auth), 403)


@pytest.mark.parametrize(
    "query",
    [
        "from=2026-11-26T00:00:00Z&to=2026-11-25T00:00:00Z",
        "from=2025-01-01T00:00:00Z&to=2026-11-25T00:00:00Z",
        "from=2026-11-25",
        "to=2026-11-25T00:00:00",
        "rule=everything",
        "limit=5",
    ],
)
def test_malformed_flag_queries_are_400(client, cast, query):
    assert_problem(client.get(f"{URL}?{query}", headers=cast.compliance.auth), 400)
