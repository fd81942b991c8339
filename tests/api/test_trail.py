"""Residents' view of the trail: access log, accounting of disclosures, export."""

import base64
import csv
import io
import json

import pytest
from fhir.resources.bundle import Bundle
from sqlalchemy import text

import crypto
from tests.api.conftest import add_record, grant
from tests.api.helpers import assert_problem
from vault.ledger import ledger
from vault.storage.models import Event


def read(client, actor, record_id, purpose="treatment"):
    query = f"?purpose={purpose}" if purpose else ""
    return client.get(f"/api/v1/records/{record_id}{query}", headers=actor.auth)


@pytest.fixture
def story(client, cast, clock, make_actor):
    """Amina's records read by her clinic under a grant, by an ER clinic under break-glass, by herself;
    refused attempts by a landlord and by the clinic for the wrong purpose; a write by the clinic; Tomasz elsewhere."""
    er = make_actor("clinic", "St Mary ER")
    labs = add_record(client, cast.amina, "health.labs", content={"hb": 13.2}, title="Blood count")
    lease = add_record(client, cast.amina, "tenancy.lease", content={"rent": 950})
    other = add_record(client, cast.tomasz, "health.labs", content={"hb": 15.0})
    grant(client, cast.amina, cast.clinic, clock, categories=["health.*"], actions=["read", "write"])
    receipts = {"third_party_reads": [], "other": []}

    def note(response, kind):
        assert response.status_code in (200, 201), response.get_json()
        body = response.get_json()
        if "receipt" in body:
            receipts[kind].append(body["receipt"]["leaf_index"])
        return body

    clock.advance(minutes=1)
    note(read(client, cast.clinic, labs), "third_party_reads")
    clock.advance(minutes=1)
    note(read(client, cast.clinic, labs), "third_party_reads")
    note(read(client, cast.amina, labs, purpose=None), "other")  # her own read: not a disclosure
    note(read(client, cast.tomasz, other, purpose=None), "other")
    assert read(client, cast.landlord, lease, purpose="tenancy-screening").status_code == 404  # refused: no grant
    assert read(client, cast.clinic, labs, purpose="research").status_code == 403  # refused: wrong purpose
    clock.advance(minutes=1)
    put = client.put(
        f"/api/v1/records/{labs}", json={"content": {"hb": 12.9}, "purpose": "treatment"}, headers=cast.clinic.auth
    )
    assert put.status_code == 200, put.get_json()  # a write, not a disclosure
    declared = client.post(
        f"/api/v1/subjects/{cast.amina.id}/break-glass", json={"reason": "Unconscious in the ER"}, headers=er.auth
    )
    assert declared.status_code == 201, declared.get_json()
    clock.advance(minutes=1)
    note(read(client, er, labs, purpose="emergency"), "third_party_reads")
    return {"er": er, "labs": labs, "lease": lease, "other": other, "receipts": receipts}


# --- Access log ---------------------------------------------------------------


def test_the_resident_sees_every_access_and_attempt_newest_first(client, cast, story, vault_):
    response = client.get(f"/api/v1/subjects/{cast.amina.id}/access-log", headers=cast.amina.auth)
    assert response.status_code == 200
    log = response.get_json()
    items = log["items"]
    assert log["total"] == len(items) == 10 and log["next_before"] is None
    assert [i["ledger_index"] for i in items] == sorted((i["ledger_index"] for i in items), reverse=True)
    outcomes = [(i["outcome"], i["action"], i["actor"]["name"], i["purpose"]) for i in items]
    assert outcomes == [
        ("permitted", "read", "St Mary ER", "emergency"),
        ("declared", None, "St Mary ER", None),
        ("permitted", "write", "Riverside Clinic", "treatment"),
        ("refused", "read", "Riverside Clinic", "research"),
        ("refused", "read", "Harbour Housing", "tenancy-screening"),
        ("permitted", "read", "Amina Yusuf", None),
        ("permitted", "read", "Riverside Clinic", "treatment"),
        ("permitted", "read", "Riverside Clinic", "treatment"),
        ("permitted", "write", "Amina Yusuf", None),
        ("permitted", "write", "Amina Yusuf", None),
    ]
    newest = items[0]
    assert newest["basis"] == "break-glass" and newest["flagged"] is True and newest["record_id"] == story["labs"]
    assert items[3]["reason"] == "wrong-purpose" and items[4]["reason"] == "no-grant"
    assert items[-3]["grant_id"] and items[-3]["basis"] == "grant" and items[-3]["category"] == "health.labs"
    # Each line is the ledger entry it claims to be.
    with vault_.read_transaction() as session:
        for item in items:
            assert ledger.receipt_for(session, item["ledger_index"]).leaf_hash == item["leaf_hash"]
            assert session.get(Event, item["ledger_index"]).subject_id == cast.amina.id


def test_access_log_pages_back_with_exact_totals(client, cast, story):
    seen, before = [], None
    while True:
        url = f"/api/v1/subjects/{cast.amina.id}/access-log?limit=3" + (
            f"&before={before}" if before is not None else ""
        )
        page = client.get(url, headers=cast.compliance.auth).get_json()
        assert page["total"] == 10
        seen += [i["ledger_index"] for i in page["items"]]
        before = page["next_before"]
        if before is None:
            break
    full = client.get(f"/api/v1/subjects/{cast.amina.id}/access-log", headers=cast.compliance.auth).get_json()
    assert seen == [i["ledger_index"] for i in full["items"]] and len(set(seen)) == 10


def test_access_log_is_for_the_resident_their_delegate_and_compliance_only(client, cast, story, clock):
    url = f"/api/v1/subjects/{cast.amina.id}/access-log"
    for outsider in (cast.tomasz, cast.clinic, cast.landlord, cast.admin, cast.witness, story["er"]):
        assert_problem(client.get(url, headers=outsider.auth), 404)
    unknown = assert_problem(
        client.get("/api/v1/subjects/p-aaaaaaaaaaaaaaaaaaaaaaaaaa/access-log", headers=cast.compliance.auth), 404
    )
    foreign = assert_problem(client.get(url, headers=cast.tomasz.auth), 404)
    assert unknown["detail"] == foreign["detail"]
    delegated = client.post(
        "/api/v1/delegations",
        json={"delegate_id": cast.tomasz.id, "expires_at": clock.at(days=10)},
        headers=cast.amina.auth,
    )
    assert delegated.status_code == 201
    assert client.get(url, headers=cast.tomasz.auth).status_code == 200
    # Tomasz's log holds none of Amina's lines.
    own = client.get(f"/api/v1/subjects/{cast.tomasz.id}/access-log", headers=cast.tomasz.auth).get_json()
    assert own["total"] == 2 and {i["record_id"] for i in own["items"]} == {story["other"]}


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "limit=x", "before=-1", "before=1e3", "colour=red"])
def test_access_log_refuses_malformed_queries(client, cast, story, query):
    assert_problem(client.get(f"/api/v1/subjects/{cast.amina.id}/access-log?{query}", headers=cast.amina.auth), 400)


# --- Disclosures --------------------------------------------------------------


def _verify_line(client, auth, item, report):
    proof = client.get(item["proof"], headers=auth).get_json()
    assert proof["leaf_hash"] == item["leaf_hash"] and proof["root_hash"] == report["root_hash"]
    crypto.verify_inclusion(
        item["ledger_index"],
        report["tree_size"],
        bytes.fromhex(item["leaf_hash"]),
        [bytes.fromhex(h) for h in proof["audit_path"]],
        bytes.fromhex(report["root_hash"]),
    )


def test_disclosures_list_every_third_party_read_and_nothing_else(client, cast, story):
    response = client.get(f"/api/v1/subjects/{cast.amina.id}/disclosures", headers=cast.amina.auth)
    assert response.status_code == 200
    report = response.get_json()
    assert sorted(i["ledger_index"] for i in report["items"]) == sorted(story["receipts"]["third_party_reads"])
    assert report["total"] == 3
    recipients = [(i["recipient"]["name"], i["purpose"], i["basis"]) for i in report["items"]]
    assert recipients == [("Riverside Clinic", "treatment", "grant")] * 2 + [("St Mary ER", "emergency", "break-glass")]
    first = report["items"][0]
    assert first["description"] == f"Laboratory results (health.labs): record {story['labs']}, version 1"
    assert first["date"].endswith("Z") and report["period_start"] < first["date"] <= report["period_end"]
    for item in report["items"]:
        _verify_line(client, cast.amina.auth, item, report)


def test_disclosures_cover_six_years_only(client, cast, clock, vault_):
    record = add_record(client, cast.amina, "health.notes")
    clock.advance(days=-(7 * 365))  # an old grant and read, seven years ago
    grant(client, cast.amina, cast.clinic, clock, categories=["health.notes"])
    old = read(client, cast.clinic, record).get_json()["receipt"]["leaf_index"]
    clock.advance(days=7 * 365 - 30)
    grant(client, cast.amina, cast.clinic, clock, categories=["health.notes"])
    recent = read(client, cast.clinic, record).get_json()["receipt"]["leaf_index"]
    clock.advance(days=30)
    report = client.get(f"/api/v1/subjects/{cast.amina.id}/disclosures", headers=cast.compliance.auth).get_json()
    assert [i["ledger_index"] for i in report["items"]] == [recent] and old not in [
        i["ledger_index"] for i in report["items"]
    ]


def test_disclosures_as_csv_hold_the_same_lines_and_cannot_run_formulas(client, cast, clock, make_actor):
    sly = make_actor("clinic", '=HYPERLINK("http://x","click")')
    record = add_record(client, cast.amina, "health.labs")
    grant(client, cast.amina, sly, clock, categories=["health.labs"])
    assert read(client, sly, record).status_code == 200
    as_json = client.get(f"/api/v1/subjects/{cast.amina.id}/disclosures", headers=cast.amina.auth).get_json()
    response = client.get(f"/api/v1/subjects/{cast.amina.id}/disclosures?format=csv", headers=cast.amina.auth)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [int(r["ledger_index"]) for r in rows] == [i["ledger_index"] for i in as_json["items"]]
    assert rows[0]["recipient_name"].startswith("'=") and rows[0]["proof"] == as_json["items"][0]["proof"]
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row.values())


def test_disclosures_are_refused_to_outsiders_and_on_bad_format(client, cast, story):
    url = f"/api/v1/subjects/{cast.amina.id}/disclosures"
    for outsider in (cast.tomasz, cast.clinic, cast.landlord, cast.admin):
        assert_problem(client.get(url, headers=outsider.auth), 404)
    assert_problem(client.get(url + "?format=xml", headers=cast.amina.auth), 400)
    assert_problem(client.get(url + "?since=2020", headers=cast.amina.auth), 400)


# --- Export -------------------------------------------------------------------


def test_export_holds_everything_about_the_resident_and_is_on_the_ledger(client, cast, story, vault_):
    response = client.get(f"/api/v1/subjects/{cast.amina.id}/export", headers=cast.amina.auth)
    assert response.status_code == 200 and response.mimetype == "application/json"
    document = response.get_json()
    assert document["format"] == "civicvault-export-v1"
    assert document["subject"]["id"] == cast.amina.id and document["subject"]["name"] == "Amina Yusuf"
    records = {r["id"]: r for r in document["records"]}
    assert set(records) == {story["labs"], story["lease"]}
    labs = records[story["labs"]]
    assert [v["content"] for v in labs["versions"]] == [{"hb": 13.2}, {"hb": 12.9}]
    assert labs["versions"][0]["title"] == "Blood count" and labs["current_version"] == 2
    assert records[story["lease"]]["versions"][0]["content"] == {"rent": 950}
    # Health records as a valid FHIR R4 Bundle; tenancy records stay out of it.
    bundle = Bundle(document["health_records"], strict=True)
    resources = [e.resource for e in bundle.entry]
    assert [r.resource_type for r in resources] == ["Patient", "DocumentReference"]
    doc = resources[1]
    assert doc.id == story["labs"] and doc.meta.versionId == "2"
    assert json.loads(base64.b64decode(doc.content[0].attachment.data)) == {"hb": 12.9}
    assert len(document["grants"]) == 1 and document["grants"][0]["fhir"]["resourceType"] == "Consent"
    assert len(document["break_glass"]) == 1 and document["break_glass"][0]["reason"] == "Unconscious in the ER"
    assert len(document["access_log"]) == 10
    assert story["other"] not in response.get_data(as_text=True) and cast.tomasz.id not in response.get_data(
        as_text=True
    )
    receipt = document["receipt"]
    with vault_.read_transaction() as session:
        event = session.get(Event, receipt["leaf_index"])
        assert event.kind == "subject.exported" and event.subject_id == cast.amina.id
        assert json.loads(event.data) == {"records": 2, "versions": 3, "grants": 1, "access_log_entries": 10}
        assert ledger.receipt_for(session, receipt["leaf_index"]).leaf_hash == receipt["leaf_hash"]


def test_only_the_resident_may_export(client, cast, story, clock):
    url = f"/api/v1/subjects/{cast.amina.id}/export"
    client.post(
        "/api/v1/delegations",
        json={"delegate_id": cast.tomasz.id, "expires_at": clock.at(days=10)},
        headers=cast.amina.auth,
    )
    for other in (cast.tomasz, cast.clinic, cast.compliance, cast.admin, story["er"]):
        assert_problem(client.get(url, headers=other.auth), 404)
    assert_problem(client.get("/api/v1/subjects/not-an-id/export", headers=cast.amina.auth), 404)


def test_no_export_leaves_when_the_ledger_cannot_record_it(client, cast, story, vault_):
    with vault_.engine.begin() as connection:
        connection.execute(text("DELETE FROM ledger_head"))
    response = client.get(f"/api/v1/subjects/{cast.amina.id}/export", headers=cast.amina.auth)
    assert response.status_code == 503 and "13.2" not in response.get_data(as_text=True)
    assert response.get_json()["type"] == "urn:civicvault:problem:ledger-unavailable"
