"""The real thing: ``civicvault init``, ``demo`` and ``serve`` (gunicorn), driven over HTTP."""

import contextlib
import http.client
import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import new_master_key
from tests.served import CLI, serving


def request(port, method, path, *, token=None, body=None, headers=None, raw=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    hdrs = dict(headers or {})
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=hdrs)
    response = conn.getresponse()
    payload = response.read()
    conn.close()
    return response.status, response.getheader("Content-Type"), payload


@pytest.fixture
def server(tmp_path, database_url):
    env = {
        **os.environ,
        "CIVICVAULT_HOME": str(tmp_path / "home"),
        "CIVICVAULT_DATABASE_URL": database_url,
        "CIVICVAULT_MASTER_KEY": new_master_key(),
    }
    subprocess.run([*CLI, "init"], env=env, check=True, capture_output=True)
    demo = subprocess.run([*CLI, "demo", "--if-new"], env=env, check=True, capture_output=True, text=True)
    assert "Demo data loaded" in demo.stdout
    people = json.loads((tmp_path / "home" / "demo-tokens.json").read_text())
    assert oct((tmp_path / "home" / "demo-tokens.json").stat().st_mode & 0o777) == "0o600"
    with served_on_a_free_port(env) as port:
        yield port, people


@contextlib.contextmanager
def served_on_a_free_port(env, workers: int = 2):
    """``civicvault serve`` with ``env``, once ``/healthz`` answers; its port. Stopped at the end."""
    with serving(env, workers=workers) as base:
        yield int(base.rsplit(":", 1)[1])


def test_served_api_stores_and_reads_a_record(server):
    port, people = server
    amina = next(p for p in people if p["name"] == "Amina Yusuf")
    status, _, body = request(port, "GET", "/api/v1/me", token=amina["token"])
    assert status == 200 and json.loads(body)["id"] == amina["id"]

    status, _, body = request(port, "GET", f"/api/v1/subjects/{amina['id']}/records", token=amina["token"])
    listing = json.loads(body)
    assert status == 200 and listing["total"] == 5
    assert {"health.allergies", "health.medications", "tenancy.lease", "tenancy.income"} <= {
        i["category"] for i in listing["items"]
    }

    status, _, body = request(
        port,
        "POST",
        f"/api/v1/subjects/{amina['id']}/records",
        token=amina["token"],
        body={"category": "health.immunizations", "content": {"vaccine": "MMR", "dose": 2}},
    )
    assert status == 201
    record_id = json.loads(body)["id"]
    status, _, body = request(port, "GET", f"/api/v1/records/{record_id}", token=amina["token"])
    assert status == 200 and json.loads(body)["content"] == {"vaccine": "MMR", "dose": 2}

    # The demo's landlord holds tenancy.income consent only: a health record does not exist for it.
    landlord = next(p for p in people if p["role"] == "landlord")
    status, ctype, body = request(
        port, "GET", f"/api/v1/records/{record_id}?purpose=tenancy-screening", token=landlord["token"]
    )
    assert status == 404 and ctype == "application/problem+json" and b"MMR" not in body


def test_served_api_refuses_an_oversized_chunked_body(server):
    port, people = server
    amina = people[0]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.putrequest("POST", f"/api/v1/subjects/{amina['id']}/records")
    conn.putheader("Authorization", f"Bearer {amina['token']}")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    chunk = b'{"category": "health.notes", "content": {"blob": "' + b"x" * (2 * 1024 * 1024) + b'"}}'
    # The server may answer and close before reading everything.
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        conn.send(hex(len(chunk))[2:].encode() + b"\r\n" + chunk + b"\r\n0\r\n\r\n")
    response = conn.getresponse()
    assert response.status == 413
    assert response.getheader("Content-Type") == "application/problem+json"
    conn.close()


def test_two_workers_take_concurrent_writes(server, database_url):
    port, people = server
    amina = people[0]

    def post(i):
        return request(
            port,
            "POST",
            f"/api/v1/subjects/{amina['id']}/records",
            token=amina["token"],
            body={"category": "health.notes", "content": {"i": i}},
        )[0]

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(post, range(24))) == [201] * 24
    status, _, body = request(
        port, "GET", f"/api/v1/subjects/{amina['id']}/records?category=health.notes", token=amina["token"]
    )
    assert json.loads(body)["total"] == 24
    # The ledger's indices stayed unique and gap-free across both workers.
    from sqlalchemy import text

    from vault.storage.db import make_engine

    engine = make_engine(database_url)
    with engine.connect() as connection:
        indices = [row[0] for row in connection.execute(text("SELECT ledger_index FROM events ORDER BY ledger_index"))]
        size = connection.execute(text("SELECT size FROM ledger_head")).scalar()
    engine.dispose()
    assert indices == list(range(size)) and size > 48


def test_the_demo_story_holds_over_http(server):
    port, people = server
    by_name = {p["name"]: p for p in people}
    amina, clinic, landlord = (
        by_name["Amina Yusuf"],
        by_name["Riverside Community Clinic"],
        by_name["Harbour Housing Association"],
    )
    grants = json.loads(request(port, "GET", "/api/v1/consents", token=amina["token"])[2])["items"]
    assert sorted((g["grantee_id"], g["status"]) for g in grants) == sorted(
        [(clinic["id"], "active"), (landlord["id"], "active")]
    )
    status, _, body = request(
        port, "GET", f"/api/v1/subjects/{amina['id']}/records?purpose=treatment", token=clinic["token"]
    )
    assert status == 200 and {i["category"] for i in json.loads(body)["items"]} == {
        "health.allergies",
        "health.medications",
        "health.conditions",
    }
    status, _, body = request(
        port, "GET", f"/api/v1/subjects/{amina['id']}/records?purpose=tenancy-screening", token=landlord["token"]
    )
    income = json.loads(body)["items"]
    assert status == 200 and [i["category"] for i in income] == ["tenancy.income"]
    status, _, body = request(
        port, "GET", f"/api/v1/records/{income[0]['id']}?purpose=tenancy-screening", token=landlord["token"]
    )
    assert status == 200 and json.loads(body)["content"]["type"] == "income-statement"
    grace = by_name["Grace Okafor"]
    revoked = json.loads(request(port, "GET", "/api/v1/consents?status=revoked", token=grace["token"])[2])
    assert revoked["total"] == 1 and revoked["items"][0]["grantee_id"] == landlord["id"]
