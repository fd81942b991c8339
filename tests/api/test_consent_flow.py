"""Consent end to end: grants, revocation, expiry, use limits, requests, delegation, break-glass."""

import json
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select

from tests.api.conftest import add_record, grant
from tests.api.helpers import assert_problem
from vault.storage.models import Event


def read(client, actor, record_id, purpose="treatment"):
    query = f"?purpose={purpose}" if purpose else ""
    return client.get(f"/api/v1/records/{record_id}{query}", headers=actor.auth)


def events(vault_, kind=None):
    with vault_.transaction() as session:
        rows = session.scalars(select(Event).order_by(Event.ledger_index)).all()
    return [(e.kind, e.actor_id, e.subject_id, json.loads(e.data)) for e in rows if kind is None or e.kind == kind]


def test_a_grant_lets_the_clinic_read_for_its_purpose_only(client, cast, clock):
    allergy = add_record(client, cast.amina, "health.allergies", {"substance": "penicillin"})
    lease = add_record(client, cast.amina, "tenancy.lease", {"rent": 940})
    g = grant(client, cast.amina, cast.clinic, clock, categories=["health.*"], purpose="treatment")
    assert g["status"] == "active" and g["categories"] == ["health.*"] and g["uses"] == 0

    ok = read(client, cast.clinic, allergy)
    assert ok.status_code == 200 and ok.get_json()["content"] == {"substance": "penicillin"}
    body = assert_problem(read(client, cast.clinic, allergy, purpose="research"), 403)
    assert body["reason"] == "wrong-purpose" and "content" not in body
    # A category the grant does not cover is, for the clinic, a record that does not exist.
    assert read(client, cast.clinic, lease).get_json() == read(client, cast.clinic, "r-unknown").get_json()
    assert_problem(read(client, cast.clinic, allergy, purpose=None), 400)  # non-residents state a purpose

    listing = client.get(
        f"/api/v1/subjects/{cast.amina.id}/records?purpose=treatment", headers=cast.clinic.auth
    ).get_json()
    assert [item["id"] for item in listing["items"]] == [allergy] and listing["total"] == 1
    assert client.get(f"/api/v1/consents/{g['id']}", headers=cast.amina.auth).get_json()["uses"] == 1


def test_revocation_takes_effect_on_the_next_request(client, cast, clock):
    record = add_record(client, cast.amina)
    g = grant(client, cast.amina, cast.clinic, clock)
    assert read(client, cast.clinic, record).status_code == 200
    revoked = client.post(f"/api/v1/consents/{g['id']}/revoke", headers=cast.amina.auth)
    assert revoked.status_code == 200 and revoked.get_json()["status"] == "revoked"
    assert assert_problem(read(client, cast.clinic, record), 403)["reason"] == "revoked"
    again = client.post(f"/api/v1/consents/{g['id']}/revoke", headers=cast.amina.auth)
    assert again.status_code == 200 and again.get_json()["revoked_at"] == revoked.get_json()["revoked_at"]
    assert len(events(client.application.extensions["civicvault"], "consent.revoked")) == 1
    # The grantee sees the grant but cannot revoke it.
    assert_problem(client.post(f"/api/v1/consents/{g['id']}/revoke", headers=cast.clinic.auth), 403)


def test_expiry_is_exact_to_the_millisecond(client, cast, clock):
    record = add_record(client, cast.amina)
    g = grant(client, cast.amina, cast.clinic, clock, days=1)
    clock.advance(days=1, milliseconds=-1)
    assert read(client, cast.clinic, record).status_code == 200
    clock.advance(milliseconds=1)
    assert assert_problem(read(client, cast.clinic, record), 403)["reason"] == "expired"
    assert client.get(f"/api/v1/consents/{g['id']}", headers=cast.amina.auth).get_json()["status"] == "expired"


def test_a_grant_is_not_valid_before_it_starts(client, cast, clock):
    record = add_record(client, cast.amina)
    grant(client, cast.amina, cast.clinic, clock, valid_from=clock.at(hours=2))
    assert assert_problem(read(client, cast.clinic, record), 403)["reason"] == "not-yet-valid"
    clock.advance(hours=2)
    assert read(client, cast.clinic, record).status_code == 200


def test_max_uses_one_allows_exactly_one_read_under_twenty_concurrent_readers(app, client, cast, clock):
    record = add_record(client, cast.amina)
    g = grant(client, cast.amina, cast.clinic, clock, max_uses=1)

    def attempt(_):
        with app.test_client() as c:
            return read(c, cast.clinic, record)

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(attempt, range(20)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [403] * 19
    assert all(r.get_json()["reason"] == "used-up" for r in responses if r.status_code == 403)
    state = client.get(f"/api/v1/consents/{g['id']}", headers=cast.amina.auth).get_json()
    assert state["uses"] == 1 and state["status"] == "used-up"


def test_write_grant_lets_a_clinic_add_records_and_versions(client, cast, clock):
    grant(client, cast.amina, cast.clinic, clock, categories=["health.labs"], actions=["read", "write"])
    created = client.post(
        f"/api/v1/subjects/{cast.amina.id}/records",
        json={"category": "health.labs", "content": {"hba1c": 6.1}, "purpose": "treatment"},
        headers=cast.clinic.auth,
    )
    assert created.status_code == 201
    record = created.get_json()["id"]
    put = client.put(
        f"/api/v1/records/{record}", json={"content": {"hba1c": 5.9}, "purpose": "treatment"}, headers=cast.clinic.auth
    )
    assert put.status_code == 200 and put.get_json()["version"] == 2
    # The resident sees what the clinic wrote.
    assert read(client, cast.amina, record, purpose=None).get_json()["content"] == {"hba1c": 5.9}
    # A read-only grant does not allow writing.
    grant(client, cast.amina, cast.landlord, clock, categories=["tenancy.*"], purpose="tenancy-screening")
    lease = add_record(client, cast.amina, "tenancy.lease")
    refused = client.put(
        f"/api/v1/records/{lease}", json={"content": {}, "purpose": "tenancy-screening"}, headers=cast.landlord.auth
    )
    assert assert_problem(refused, 403)["reason"] == "wrong-action"


def test_access_request_approved_creates_the_grant(client, cast, clock):
    income = add_record(client, cast.amina, "tenancy.income", {"gross": 41200})
    asked = client.post(
        "/api/v1/access-requests",
        json={
            "subject_id": cast.amina.id,
            "categories": ["tenancy.income"],
            "purpose": "tenancy-screening",
            "reason": "Screening for the flat at 12 Quay Street",
            "expires_at": clock.at(days=14),
        },
        headers=cast.landlord.auth,
    )
    assert asked.status_code == 201
    request = asked.get_json()
    assert request["status"] == "pending" and request["reason"] == "Screening for the flat at 12 Quay Street"
    assert_problem(read(client, cast.landlord, income, purpose="tenancy-screening"), 404)

    pending = client.get("/api/v1/access-requests?status=pending", headers=cast.amina.auth).get_json()
    assert [r["id"] for r in pending["items"]] == [request["id"]]
    assert_problem(client.post(f"/api/v1/access-requests/{request['id']}/approve", headers=cast.landlord.auth), 403)
    approved = client.post(
        f"/api/v1/access-requests/{request['id']}/approve", json={"max_uses": 3}, headers=cast.amina.auth
    )
    assert approved.status_code == 200
    outcome = client.get(f"/api/v1/access-requests/{request['id']}", headers=cast.landlord.auth).get_json()
    assert outcome["status"] == "approved" and outcome["grant_id"]
    g = client.get(f"/api/v1/consents/{outcome['grant_id']}", headers=cast.landlord.auth).get_json()
    assert g["categories"] == ["tenancy.income"] and g["max_uses"] == 3 and g["request_id"] == request["id"]
    assert g["expires_at"] == clock.at(days=14)
    assert read(client, cast.landlord, income, purpose="tenancy-screening").get_json()["content"] == {"gross": 41200}
    assert_problem(client.post(f"/api/v1/access-requests/{request['id']}/deny", headers=cast.amina.auth), 409)


def test_access_request_denied(client, cast, clock):
    asked = client.post(
        "/api/v1/access-requests",
        json={
            "subject_id": cast.amina.id,
            "categories": ["health.*"],
            "purpose": "research",
            "reason": "Diabetes cohort study",
        },
        headers=cast.clinic.auth,
    ).get_json()
    denied = client.post(f"/api/v1/access-requests/{asked['id']}/deny", headers=cast.amina.auth)
    assert (
        denied.status_code == 200 and denied.get_json()["status"] == "denied" and denied.get_json()["grant_id"] is None
    )
    assert (
        client.get(f"/api/v1/access-requests/{asked['id']}", headers=cast.clinic.auth).get_json()["status"] == "denied"
    )
    assert client.get("/api/v1/consents", headers=cast.clinic.auth).get_json()["total"] == 0


def test_delegate_manages_consent_and_reads_until_revoked(client, cast, clock):
    record = add_record(client, cast.amina, "health.medications", {"drug": "metformin"})
    made = client.post(
        "/api/v1/delegations",
        json={"delegate_id": cast.tomasz.id, "expires_at": clock.at(days=90)},
        headers=cast.amina.auth,
    )
    assert made.status_code == 201
    delegation = made.get_json()
    assert read(client, cast.tomasz, record, purpose="treatment").get_json()["content"] == {"drug": "metformin"}
    assert_problem(read(client, cast.tomasz, record, purpose=None), 400)  # a delegate states a purpose
    # The delegate gives consent on Amina's behalf and sees her grants.
    g = grant(client, cast.tomasz, cast.clinic, clock, subject_id=cast.amina.id)
    assert g["subject_id"] == cast.amina.id and g["created_by"] == cast.tomasz.id
    assert read(client, cast.clinic, record).status_code == 200
    assert client.get(f"/api/v1/consents?subject_id={cast.amina.id}", headers=cast.tomasz.auth).get_json()["total"] == 1
    # Delegates read but do not write.
    assert (
        assert_problem(
            client.put(
                f"/api/v1/records/{record}", json={"content": {}, "purpose": "treatment"}, headers=cast.tomasz.auth
            ),
            403,
        )["reason"]
        == "wrong-action"
    )
    client.post(f"/api/v1/delegations/{delegation['id']}/revoke", headers=cast.amina.auth)
    assert assert_problem(read(client, cast.tomasz, record), 403)["reason"] == "revoked"
    # Once the delegation ends, the grants of the resident are none of his business.
    assert_problem(client.post(f"/api/v1/consents/{g['id']}/revoke", headers=cast.tomasz.auth), 404)


def test_break_glass_reads_health_for_the_window_and_is_flagged(client, vault_, cast, clock):
    allergy = add_record(client, cast.amina, "health.allergies", {"substance": "penicillin"})
    lease = add_record(client, cast.amina, "tenancy.lease")
    assert_problem(read(client, cast.clinic, allergy, purpose="emergency"), 404)
    declared = client.post(
        f"/api/v1/subjects/{cast.amina.id}/break-glass",
        json={"reason": "Unconscious in the ER"},
        headers=cast.clinic.auth,
    )
    assert declared.status_code == 201
    assert declared.get_json()["expires_at"] == clock.at(hours=4)
    assert read(client, cast.clinic, allergy, purpose="emergency").status_code == 200
    assert assert_problem(read(client, cast.clinic, allergy, purpose="treatment"), 403)["reason"] == "wrong-purpose"
    assert_problem(read(client, cast.clinic, lease, purpose="emergency"), 404)
    flagged = [e for e in events(vault_, "access.permitted") if e[3].get("basis") == "break-glass"]
    assert len(flagged) == 1 and flagged[0][3]["flagged"] is True and flagged[0][3]["record_id"] == allergy
    seen = client.get(f"/api/v1/subjects/{cast.amina.id}/break-glass", headers=cast.amina.auth).get_json()
    assert seen["items"][0]["uses"] == 1 and seen["items"][0]["reason"] == "Unconscious in the ER"
    clock.advance(hours=4)
    assert assert_problem(read(client, cast.clinic, allergy, purpose="emergency"), 403)["reason"] == "expired"
    # Landlords cannot break the glass.
    assert_problem(
        client.post(f"/api/v1/subjects/{cast.amina.id}/break-glass", json={"reason": "x"}, headers=cast.landlord.auth),
        403,
    )


def test_compliance_sees_grants_but_never_contents(client, cast, clock):
    record = add_record(client, cast.amina)
    g = grant(client, cast.amina, cast.clinic, clock)
    assert client.get(f"/api/v1/consents/{g['id']}", headers=cast.compliance.auth).status_code == 200
    assert client.get("/api/v1/consents", headers=cast.compliance.auth).get_json()["total"] == 1
    for actor in (cast.compliance, cast.admin):
        assert_problem(read(client, actor, record), 404)
        assert_problem(client.get(f"/api/v1/subjects/{cast.amina.id}/records?purpose=legal", headers=actor.auth), 404)


def test_every_decision_is_an_event_without_content(client, vault_, cast, clock):
    record = add_record(client, cast.amina, content={"secret": "MARKER-CONTENT"}, title="MARKER-TITLE")
    g = grant(client, cast.amina, cast.clinic, clock)
    read(client, cast.clinic, record)
    read(client, cast.clinic, record, purpose="research")
    read(client, cast.landlord, record, purpose="tenancy-screening")
    client.post(f"/api/v1/consents/{g['id']}/revoke", headers=cast.amina.auth)
    kinds = [e[0] for e in events(vault_)]
    assert kinds == [
        "access.permitted",
        "record.created",
        "consent.granted",
        "access.permitted",
        "access.refused",
        "access.refused",
        "consent.revoked",
    ]
    refused = [e for e in events(vault_) if e[0] == "access.refused"]
    assert [e[3]["reason"] for e in refused] == ["wrong-purpose", "no-grant"]
    assert refused[1][1] == cast.landlord.id and refused[1][2] == cast.amina.id
    assert "MARKER" not in json.dumps(events(vault_))


def test_configured_limits_apply(client, vault_, cast, clock):
    from vault.core.config import ConsentLimits

    vault_.limits = ConsentLimits(max_grant_days=7, default_grant_days=7, max_delegation_days=2, break_glass_minutes=15)
    record = add_record(client, cast.amina)
    declared = client.post(
        f"/api/v1/subjects/{cast.amina.id}/break-glass", json={"reason": "Seizure"}, headers=cast.clinic.auth
    )
    assert declared.get_json()["expires_at"] == clock.at(minutes=15)
    clock.advance(minutes=15)
    assert assert_problem(read(client, cast.clinic, record, purpose="emergency"), 403)["reason"] == "expired"
    too_long = {
        "grantee_id": cast.clinic.id,
        "categories": ["health.*"],
        "purpose": "treatment",
        "expires_at": clock.at(days=8),
    }
    assert_problem(client.post("/api/v1/consents", json=too_long, headers=cast.amina.auth), 400)
    delegation = {"delegate_id": cast.tomasz.id, "expires_at": clock.at(days=3)}
    assert_problem(client.post("/api/v1/delegations", json=delegation, headers=cast.amina.auth), 400)
