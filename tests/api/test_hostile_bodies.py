"""Hostile JSON bodies: nesting that would overflow the C stack, and repeated keys.

Regression tests for a worker killed by SIGSEGV: py_ecc raises the recursion
limit to 100,000 when imported, so ``json.loads`` of a few hundred kilobytes
of ``[`` overflowed the C stack instead of raising ``RecursionError``. The
crash test runs in a subprocess, so that a regression kills that process and
fails the test rather than taking pytest down.
"""

import json
import subprocess
import sys
import textwrap

import pytest

from api.parsing import MAX_JSON_DEPTH, DuplicateKey, JsonTooDeep, json_depth_exceeds, loads_strict
from tests.api.helpers import assert_problem


def nested(depth: int, *, opener: str = "[", closer: str = "]", inner: str = "1") -> str:
    return opener * depth + inner + closer * depth


# --- the depth scan ---------------------------------------------------------------------------------


def test_depth_scan_counts_arrays_and_objects_up_to_the_limit():
    assert not json_depth_exceeds(nested(MAX_JSON_DEPTH))
    assert json_depth_exceeds(nested(MAX_JSON_DEPTH + 1))
    mixed = '{"a":' * 40 + "[" * 25 + "0" + "]" * 25 + "}" * 40
    assert json_depth_exceeds(mixed)
    assert not json_depth_exceeds('{"a":' * 40 + "[" * 24 + "0" + "]" * 24 + "}" * 40)


def test_depth_scan_ignores_brackets_inside_strings_and_honours_escapes():
    inside = json.dumps(["[" * 1000 + "{" * 1000])
    assert not json_depth_exceeds(inside)
    # An escaped quote does not end the string; an escaped backslash before a quote does.
    assert not json_depth_exceeds('["\\"' + "[" * 100 + '"]')
    assert json_depth_exceeds('["\\\\", ' + "[" * 100 + "]" * 100 + "]")
    # Depth that closes and reopens is not depth: 1000 siblings at depth 2.
    assert not json_depth_exceeds("[" + ",".join(["[1]"] * 1000) + "]")


def test_depth_scan_does_not_depend_on_the_recursion_limit():
    limit = sys.getrecursionlimit()
    try:
        sys.setrecursionlimit(100_000)
        assert json_depth_exceeds(nested(200_000))
        sys.setrecursionlimit(200)
        assert json_depth_exceeds(nested(MAX_JSON_DEPTH + 1))
        assert not json_depth_exceeds(nested(MAX_JSON_DEPTH))
    finally:
        sys.setrecursionlimit(limit)


def test_loads_strict():
    assert loads_strict(nested(MAX_JSON_DEPTH)) is not None
    with pytest.raises(JsonTooDeep):
        loads_strict(nested(MAX_JSON_DEPTH + 1, opener='{"k":', closer="}"))
    with pytest.raises(DuplicateKey) as caught:
        loads_strict('{"a": [{"b": 1, "c": 2, "b": 3}]}')
    assert caught.value.key == "b"
    assert loads_strict('{"a": 1, "A": 2, "a\\u0000": 3}') == {"a": 1, "A": 2, "a\x00": 3}
    with pytest.raises(DuplicateKey):
        loads_strict('{"\\u0061": 1, "a": 2}')  # the same key, spelt two ways
    with pytest.raises(json.JSONDecodeError):
        loads_strict("[NaN]")


# --- over HTTP --------------------------------------------------------------------------------------


def test_a_body_nested_past_the_limit_is_a_400_problem_on_every_json_route(client, app, make_actor):
    resident = make_actor("resident")
    body = nested(MAX_JSON_DEPTH + 1)
    routes = [
        ("POST", "/api/v1/consents"),
        ("POST", "/api/v1/access-requests"),
        ("POST", f"/api/v1/subjects/{resident.id}/records"),
        ("POST", f"/api/v1/subjects/{resident.id}/break-glass"),
        ("POST", f"/api/v1/subjects/{resident.id}/erasure"),
    ]
    for method, url in routes:
        response = client.open(url, method=method, data=body, content_type="application/json", headers=resident.auth)
        problem = assert_problem(response, 400)
        assert problem["detail"] == JsonTooDeep.description, url


def test_a_body_at_exactly_the_limit_is_parsed(client, make_actor):
    """64 levels reach the schema and the service (which judge the content), not the depth refusal."""
    resident = make_actor("resident")
    content = json.loads(nested(MAX_JSON_DEPTH - 1, opener='{"k":', closer="}"))  # + the body's own level
    body = json.dumps({"category": "health.notes", "content": content})
    assert not json_depth_exceeds(body) and json_depth_exceeds(body, MAX_JSON_DEPTH - 1)
    response = client.post(
        f"/api/v1/subjects/{resident.id}/records", data=body, content_type="application/json", headers=resident.auth
    )
    problem = assert_problem(response, 400)
    assert problem["detail"] != JsonTooDeep.description
    assert problem["type"] == "urn:civicvault:problem:invalid-input"  # the content check (depth <= 32) spoke
    shallow = json.dumps({"category": "health.notes", "content": json.loads(nested(30, opener='{"k":', closer="}"))})
    response = client.post(
        f"/api/v1/subjects/{resident.id}/records", data=shallow, content_type="application/json", headers=resident.auth
    )
    assert response.status_code == 201, response.get_json()


def test_a_repeated_key_is_a_400_problem_naming_it_at_any_depth(client, make_actor):
    resident = make_actor("resident")
    clinic = make_actor("clinic")
    url = f"/api/v1/subjects/{resident.id}/records"
    top = '{"category": "health.notes", "content": {"a": 1}, "category": "tenancy.income"}'
    deep = '{"category": "health.notes", "content": {"x": [{"dose": 1, "dose": 1000}]}}'
    for body, key in ((top, "category"), (deep, "dose")):
        response = client.post(url, data=body, content_type="application/json", headers=resident.auth)
        problem = assert_problem(response, 400)
        assert json.dumps(key) in problem["detail"], problem
    # A hostile, long key is named shortened, never echoed whole.
    long_key = "k" * 5000
    body = json.dumps({"reason": "x"})[:-1] + f', "{long_key}": 1, "{long_key}": 2}}'
    response = client.post(
        f"/api/v1/subjects/{resident.id}/break-glass", data=body, content_type="application/json", headers=clinic.auth
    )
    problem = assert_problem(response, 400)
    assert long_key not in problem["detail"] and len(problem["detail"]) < 300
    # Nothing was stored: the resident has no record.
    assert client.get(url, headers=resident.auth).get_json()["total"] == 0


CRASH_SCRIPT = textwrap.dedent(
    """
    import base64, json, os, sys
    from pathlib import Path

    import py_ecc.bls  # noqa: F401  (raises the recursion limit, as the first checkpoint signature does)

    assert sys.getrecursionlimit() >= 100_000, sys.getrecursionlimit()
    from api import create_app
    from vault.core.clock import utcnow
    from vault.core.config import Settings
    from vault.identity import principals
    from vault.runtime import Vault, init_home

    home = Path(sys.argv[1])
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'vault.db'}",
                        master_key=base64.b64encode(os.urandom(32)).decode())
    init_home(settings)
    vault = Vault.open(settings)
    with vault.transaction() as session:
        info, token = principals.create_principal(session, vault.keys, role="resident", name="R", now=utcnow())
    client = create_app(vault=vault).test_client()
    auth = {"Authorization": f"Bearer {token}"}
    answers = []
    for body in ("[" * 200_000, '{"a":' * 200_000, "[" * 200_000 + "]" * 200_000):
        response = client.post("/api/v1/consents", data=body, content_type="application/json", headers=auth)
        answers.append([response.status_code, response.mimetype, response.get_json(force=True)["detail"]])
    answers.append([client.get("/api/v1/me", headers=auth).status_code, "", ""])
    print(json.dumps(answers))
    """
)


def test_a_deeply_nested_body_does_not_kill_the_worker_after_py_ecc_raised_the_recursion_limit(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", CRASH_SCRIPT, str(tmp_path / "home")], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"worker died (exit {done.returncode}): {done.stderr[-2000:]}"
    *refused, me = json.loads(done.stdout.strip().splitlines()[-1])
    for status, mimetype, detail in refused:
        assert (status, mimetype, detail) == (400, "application/problem+json", JsonTooDeep.description)
    assert me[0] == 200  # the same process still serves
