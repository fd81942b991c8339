"""GET /api/v1/audit/events: the compliance search over HTTP, its CSV export, its refusals."""

import csv
import io
import random
import threading
from datetime import timedelta

import pytest

from crypto import merkle
from tests.api.conftest import add_record, grant
from tests.api.helpers import assert_problem
from tests.bulk_events import append_many, generate, make_cast
from vault.compliance.audit_csv import row_of, safe_cell
from vault.compliance.audit_search import EventLine
from vault.ledger.events import DomainEvent, emit

URL = "/api/v1/audit/events"


@pytest.fixture
def trail(client, cast, clock):
    """Real traffic: records, a grant, permitted and refused reads, a break-glass declaration."""
    labs = add_record(client, cast.amina, "health.labs")
    lease = add_record(client, cast.amina, "tenancy.lease")
    grant(client, cast.amina, cast.clinic, clock, categories=("health.*",), purpose="treatment")
    clock.advance(minutes=5)
    assert client.get(f"/api/v1/records/{labs}?purpose=treatment", headers=cast.clinic.auth).status_code == 200
    assert client.get(f"/api/v1/records/{labs}?purpose=research", headers=cast.clinic.auth).status_code == 403
    assert (
        client.get(f"/api/v1/records/{lease}?purpose=tenancy-screening", headers=cast.landlord.auth).status_code == 404
    )
    clock.advance(minutes=5)
    response = client.post(
        f"/api/v1/subjects/{cast.tomasz.id}/break-glass", json={"reason": "unconscious"}, headers=cast.clinic.auth
    )
    assert response.status_code == 201
    return {"labs": labs, "lease": lease}


def search(client, cast, query="", **headers):
    return client.get(f"{URL}?{query}", headers={**cast.compliance.auth, **headers})


def test_search_by_resident_actor_kind_outcome_purpose_category(client, cast, trail):
    body = search(client, cast, f"subject_id={cast.amina.id}").get_json()
    kinds = [item["kind"] for item in body["items"]]
    # Each record write is an access (the resident's own, basis self) and a record event.
    assert kinds == ["access.permitted", "record.created"] * 2 + [
        "consent.granted",
        "access.permitted",
        "access.refused",
        "access.refused",
    ]
    assert body["total"] == 8 and body["next"] is None
    refused = search(client, cast, f"outcome=refused&subject_id={cast.amina.id}").get_json()
    assert [(i["actor_id"], i["purpose"], i["data"]["reason"]) for i in refused["items"]] == [
        (cast.clinic.id, "research", "wrong-purpose"),
        (cast.landlord.id, "tenancy-screening", "no-grant"),
    ]
    by_clinic = search(client, cast, f"actor_id={cast.clinic.id}&kind=access.*").get_json()
    assert [i["outcome"] for i in by_clinic["items"]] == ["permitted", "refused"]
    # A grant of health.* concerns health.labs; a tenancy refusal does not.
    labs = search(client, cast, "category=health.labs").get_json()
    assert [i["kind"] for i in labs["items"]] == [
        "access.permitted",
        "record.created",
        "consent.granted",
        "access.permitted",
        "access.refused",
    ]
    assert search(client, cast, "category=tenancy.*&purpose=tenancy-screening").get_json()["total"] == 1
    glass = search(client, cast, "kind=break-glass.declared&kind=consent.granted").get_json()
    assert [i["kind"] for i in glass["items"]] == ["consent.granted", "break-glass.declared"]
    # Events hold ids and codes: no reason text, no content.
    assert "unconscious" not in search(client, cast).get_data(as_text=True)


def test_time_range_is_from_inclusive_to_exclusive(client, cast, clock, trail):
    items = search(client, cast).get_json()["items"]
    read_at = next(i["occurred_at"] for i in items if i["kind"] == "access.permitted" and i["data"]["basis"] == "grant")
    same = search(client, cast, f"from={read_at}&to={read_at}").get_json()
    assert same["total"] == 0
    at_read = search(client, cast, f"from={read_at}&kind=access.*").get_json()
    assert [i["occurred_at"] for i in at_read["items"]] == [read_at] * 3
    before = search(client, cast, f"to={read_at}").get_json()
    assert {i["kind"] for i in before["items"]} == {"access.permitted", "record.created", "consent.granted"}
    assert {i["data"]["basis"] for i in before["items"] if i["kind"] == "access.permitted"} == {"self"}


def test_each_line_proves_against_the_ledger(client, cast, trail):
    page = search(client, cast, "limit=3").get_json()
    assert len(page["items"]) == 3 and page["next_after"] == page["items"][-1]["ledger_index"]
    for item in page["items"]:
        proof = client.get(
            f"/api/v1/ledger/proofs/inclusion?leaf_index={item['ledger_index']}&tree_size={page['as_of']}",
            headers=cast.compliance.auth,
        ).get_json()
        assert proof["leaf_hash"] == item["leaf_hash"]
        merkle.verify_inclusion(
            item["ledger_index"],
            page["as_of"],
            bytes.fromhex(item["leaf_hash"]),
            [bytes.fromhex(h) for h in proof["audit_path"]],
            bytes.fromhex(proof["root_hash"]),
        )


def test_next_links_walk_every_page_once(client, cast, trail):
    seen, url, total = [], f"{URL}?limit=2&kind=access.*&kind=record.*", None
    while url:
        body = client.get(url, headers=cast.compliance.auth).get_json()
        total = body["total"] if total is None else total
        assert body["total"] == total
        seen += [i["ledger_index"] for i in body["items"]]
        url = body["next"]
    assert len(seen) == len(set(seen)) == total == 7


def test_pages_stay_stable_while_another_thread_appends(app, vault_, cast, clock):
    rng = random.Random(11)
    people = make_cast(rng, residents=3, clinics=2, landlords=1)
    with vault_.transaction() as session:
        append_many(session, generate(rng, people, 400, start=clock.now, span=timedelta(hours=5)))
    stop = threading.Event()

    def append_forever():
        n = 0
        while not stop.is_set():
            with vault_.transaction() as session:
                emit(
                    session,
                    DomainEvent(
                        kind="access.refused",
                        occurred_at=clock.now,
                        actor_id=people.clinics[0],
                        subject_id=people.residents[0],
                        data={
                            "action": "read",
                            "category": "health.labs",
                            "purpose": "treatment",
                            "actor_role": "clinic",
                            "reason": "no-grant",
                            "record_id": f"r-{n}",
                        },
                    ),
                )
            n += 1

    writer = threading.Thread(target=append_forever)
    writer.start()
    try:
        client = app.test_client()
        seen, url, first = [], f"{URL}?limit=25&outcome=refused", None
        while url:
            body = client.get(url, headers=cast.compliance.auth).get_json()
            first = first or body
            assert body["total"] == first["total"] and body["as_of"] == first["as_of"]
            seen += [i["ledger_index"] for i in body["items"]]
            url = body["next"]
    finally:
        stop.set()
        writer.join()
    assert len(seen) == len(set(seen)) == first["total"]
    assert seen == sorted(seen) and seen[-1] < first["as_of"]
    after = client.get(f"{URL}?outcome=refused&limit=1", headers=cast.compliance.auth).get_json()
    assert after["as_of"] > first["as_of"] and after["total"] > first["total"]  # the writer really was appending


def test_csv_export_of_a_search(client, cast, trail):
    json_body = search(client, cast, f"subject_id={cast.amina.id}").get_json()
    for response in (
        search(client, cast, f"subject_id={cast.amina.id}&format=csv"),
        search(client, cast, f"subject_id={cast.amina.id}", Accept="text/csv"),
    ):
        assert response.status_code == 200 and response.mimetype == "text/csv"
        assert "attachment" in response.headers["Content-Disposition"]
        rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
        rows = [r for r in rows if r["kind"] != "trail.searched"]  # the searches before it are on her trail
        assert [int(r["ledger_index"]) for r in rows] == [i["ledger_index"] for i in json_body["items"]]
        assert [r["leaf_hash"] for r in rows] == [i["leaf_hash"] for i in json_body["items"]]
        assert (
            rows[6]["outcome"] == "refused"
            and rows[6]["purpose"] == "research"
            and rows[0]["categories"] == "health.labs"
        )
    # */* and JSON stay JSON.
    assert search(client, cast, "", Accept="*/*").mimetype == "application/json"
    assert search(client, cast, "", Accept="application/json, text/csv;q=0.5").mimetype == "application/json"


def test_csv_streams_large_exports_in_batches(client, vault_, cast, clock):
    rng = random.Random(3)
    with vault_.transaction() as session:
        append_many(session, generate(rng, make_cast(rng), 2500, start=clock.now, span=timedelta(days=1)))
    response = search(client, cast, "format=csv")
    assert response.is_streamed
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0][0] == "ledger_index" and len(rows) == 2501
    assert [int(r[0]) for r in rows[1:]] == list(range(2500))
    assert int(response.headers["X-CivicVault-As-Of"]) == 2500
    # The as_of and after cursor work for CSV too.
    tail = list(
        csv.reader(io.StringIO(search(client, cast, "format=csv&after=2399&as_of=2450").get_data(as_text=True)))
    )
    assert [int(r[0]) for r in tail[1:]] == list(range(2400, 2450))


@pytest.mark.parametrize(
    "value, safe",
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+2", "'+1+2"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("p-abc", "p-abc"),
        ("", ""),
        (None, ""),
        (42, "42"),
    ],
)
def test_csv_cells_cannot_start_a_formula(value, safe):
    assert safe_cell(value) == safe


def test_csv_rows_neutralise_every_column(clock):
    line = EventLine(
        ledger_index=1,
        leaf_hash="ab",
        occurred_at=clock.now,
        kind="access.refused",
        outcome="refused",
        actor_id="=cmd|' /C calc'!A0",
        subject_id="@x",
        purpose="-y",
        categories=("+z",),
        data={"k": "=1"},
        erased=False,
    )
    row = row_of(line)
    assert all(not cell.startswith(("=", "+", "-", "@")) for cell in row)
    assert row[5] == "'=cmd|' /C calc'!A0" and row[6] == "'@x" and row[7] == "'-y" and row[8] == "'+z"


ROLES = ("amina", "clinic", "landlord", "admin", "witness")


@pytest.mark.parametrize("who", ROLES)
def test_other_roles_are_refused(client, cast, who):
    actor = getattr(cast, who)
    for query in ("", "format=csv", f"subject_id={actor.id}"):
        body = assert_problem(client.get(f"{URL}?{query}", headers=actor.auth), 403)
        assert body["type"] == "urn:civicvault:problem:forbidden"


def test_no_token_is_401(client):
    assert_problem(client.get(URL), 401)
    assert_problem(client.get(URL, headers={"Authorization": "Bearer cvt_nope"}), 401)


@pytest.mark.parametrize(
    "query",
    [
        "from=yesterday",
        "from=2026-11-25T10:00:00",
        "to=2026-13-01T00:00:00Z",
        "from=2026-11-26T00:00:00Z&to=2026-11-25T00:00:00Z",
        "kind=access.granted",
        "kind=nope.*",
        "kind=",
        "outcome=maybe",
        "purpose=curiosity",
        "category=health.everything",
        "limit=1001",
        "limit=0",
        "limit=ten",
        "after=-1",
        "as_of=99999",
        "format=xml",
        "colour=blue",
        "debug=1&limit=5",
        "subject_id=" + "x" * 41,
        "actor_id=p-'%20OR%201=1",
        "format=csv&limit=10",
    ],
)
def test_malformed_filters_are_400(client, cast, query):
    body = assert_problem(search(client, cast, query), 400)
    assert body["detail"]


def test_unknown_ids_simply_match_nothing(client, cast, trail):
    body = search(client, cast, "subject_id=p-doesnotexist").get_json()
    assert body == {"items": [], "total": 0, "as_of": body["as_of"], "limit": 100, "next_after": None, "next": None}


def test_openapi_documents_the_audit_endpoints(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    for path in (
        "/api/v1/audit/events",
        "/api/v1/audit/break-glass",
        "/api/v1/audit/break-glass/{break_glass_id}/acknowledge",
        "/api/v1/audit/flags",
    ):
        assert path in paths
    events = paths["/api/v1/audit/events"]["get"]
    assert {p["name"] for p in events["parameters"]} >= {
        "subject_id",
        "actor_id",
        "kind",
        "outcome",
        "purpose",
        "category",
        "from",
        "to",
        "limit",
        "after",
        "as_of",
        "format",
    }
    assert "text/csv" in events["responses"]["200"]["content"]
