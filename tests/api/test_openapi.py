"""The OpenAPI document is complete and tells the truth.

Every route under /api/v1 is in it; every operation documents its errors as
RFC 9457 problems (application/problem+json) and has examples (a request body
example when it takes a body, a success example), and the examples match the
schemas and look like real values. Then the document is held to what the
server does: every operation is called by every role with unknown ids and
with hostile input, and every status that comes back must be one the
operation declares.
"""

import re
from typing import Any

import pytest

from vault.core.ids import new_id

HTTP_METHODS = ("get", "put", "post", "delete", "patch")
PROBLEM_JSON = "application/problem+json"
ROLES = ("resident", "clinic", "landlord", "agency", "compliance", "admin", "witness")

ID = re.compile(r"^[a-z]-[a-z2-7]{26}$")
# The ids inside a Verifiable Credential (an attestation): its UUID and the resident's pairwise pseudonym.
CREDENTIAL_ID = re.compile(
    r"^(urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}|urn:civicvault:pseudonym:[a-z2-7]{32})$"
)
HEX64 = re.compile(r"^[0-9a-f]{64}$")
# A checkpoint note's key id (8 hex digits), or an issuer key's id (k-...).
HEX_OF = {"key_id": re.compile(r"^([0-9a-f]{8}|k-[a-z2-7]{26})$")}
ETH_HASH = re.compile(r"^0x[0-9a-f]{64}$")
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$")
HASH_KEYS = {
    "leaf_hash",
    "root_hash",
    "first_root",
    "second_root",
    "audit_path",
    "consistency_path",
    "subject_commitment",
    "commitment_nonce",
}
TIME_KEYS = {"from", "to", "date", "period_start", "period_end", "timestamp", "dateTime", "start", "end"}
ID_PREFIX = {
    "subject_id": "p",
    "record_id": "r",
    "grant_id": "g",
    "request_id": "q",
    "delegation_id": "d",
    "break_glass_id": "b",
    "key_id": "k",
}


@pytest.fixture
def spec(client) -> dict:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def operations(spec: dict):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def resolve(spec: dict, node: dict) -> dict:
    while "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def responses(spec: dict, operation: dict) -> dict[str, dict]:
    return {code: resolve(spec, response) for code, response in operation["responses"].items()}


def examples_of(media: dict) -> list:
    found = [media["example"]] if "example" in media else []
    return found + [e["value"] for e in media.get("examples", {}).values()]


def declared(operation: dict) -> set[int]:
    return {int(code) for code in operation["responses"] if code != "default"}


# --- an example checker: OpenAPI 3.0 schemas as apispec writes them -----------------------------


def mismatches(spec: dict, schema: dict, value: Any, where: str = "$") -> list[str]:
    """What in ``value`` the schema does not allow (an empty list when it matches)."""
    schema = resolve(spec, schema)
    if value is None:
        return [] if schema.get("nullable") or not schema.get("type") else [f"{where}: null is not allowed"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: {value!r} is not one of {schema['enum']}"]
    kind = schema.get("type")
    found: list[str] = []
    if kind == "object":
        if not isinstance(value, dict):
            return [f"{where}: not an object"]
        properties = schema.get("properties")
        if properties is None:  # a free-form object (fields.Dict)
            return []
        found += [f"{where}.{key}: not in the schema" for key in value if key not in properties]
        found += [f"{where}.{key}: required but missing" for key in schema.get("required", []) if key not in value]
        for key, item in value.items():
            if key in properties:
                found += mismatches(spec, properties[key], item, f"{where}.{key}")
    elif kind == "array":
        if not isinstance(value, list):
            return [f"{where}: not an array"]
        if not schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", len(value)):
            found.append(f"{where}: {len(value)} items is out of bounds")
        for i, item in enumerate(value):
            found += mismatches(spec, schema.get("items", {}), item, f"{where}[{i}]")
    elif kind == "string":
        if not isinstance(value, str):
            return [f"{where}: not a string"]
        if "pattern" in schema and not re.search(schema["pattern"], value):
            found.append(f"{where}: {value!r} does not match {schema['pattern']}")
        if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value)):
            found.append(f"{where}: length {len(value)} is out of bounds")
        if schema.get("format") == "date-time" and not RFC3339.match(value):
            found.append(f"{where}: {value!r} is not an RFC 3339 time")
    elif kind in ("integer", "number"):
        if isinstance(value, bool) or not isinstance(value, int if kind == "integer" else (int, float)):
            return [f"{where}: not an {kind}"]
        if not schema.get("minimum", value) <= value <= schema.get("maximum", value):
            found.append(f"{where}: {value} is out of bounds")
    elif kind == "boolean" and not isinstance(value, bool):
        found.append(f"{where}: not a boolean")
    return found


def unrealistic(value: Any, key: str = "", where: str = "$") -> list[str]:
    """Ids, hashes and times in an example that do not look like the real ones."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in unrealistic(v, k, f"{where}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in unrealistic(v, key, f"{where}[{i}]")]
    if not isinstance(value, str):
        return []
    if key in HEX_OF:
        pattern = HEX_OF[key]
    elif key == "id" and value.startswith("urn:"):
        pattern = CREDENTIAL_ID
    elif key == "id" or key.endswith(("_id", "_by")):
        pattern = ID
    elif key in HASH_KEYS:
        pattern = HEX64
    elif key in ("transaction_hash", "block_hash"):
        pattern = ETH_HASH
    elif key.endswith("_at") or key in TIME_KEYS:
        pattern = RFC3339
    else:
        return []
    return [] if pattern.match(value) else [f"{where}: {value!r} does not look like a real {key}"]


def test_the_example_checkers_refuse_what_they_should(spec):
    grant = resolve(spec, {"$ref": "#/components/schemas/GrantOut"})
    good = {"id": new_id("g"), "uses": 1, "revoked_at": None, "created_at": "2026-11-25T09:30:00.000Z"}
    assert mismatches(spec, grant, good) == []
    assert mismatches(spec, grant, {**good, "color": "red"}) == ["$.color: not in the schema"]
    assert mismatches(spec, grant, {**good, "uses": "1"}) == ["$.uses: not an integer"]
    assert mismatches(spec, grant, {**good, "uses": True}) == ["$.uses: not an integer"]
    assert mismatches(spec, grant, {**good, "status": "pending"})  # not a grant status
    assert mismatches(spec, grant, {**good, "created_at": "25/11/2026"})
    grant_in = resolve(spec, {"$ref": "#/components/schemas/GrantIn"})
    assert "$.expires_at: required but missing" in mismatches(spec, grant_in, {"grantee_id": "x"})
    assert unrealistic({"grant_id": "g-1", "leaf_hash": "ABC", "expires_at": "tomorrow"}) == [
        "$.grant_id: 'g-1' does not look like a real grant_id",
        "$.leaf_hash: 'ABC' does not look like a real leaf_hash",
        "$.expires_at: 'tomorrow' does not look like a real expires_at",
    ]
    assert unrealistic({"id": new_id("r"), "audit_path": ["ab" * 32], "created_at": "2026-11-25T09:30:00Z"}) == []


# --- completeness ----------------------------------------------------------------------------------


def test_every_route_under_api_v1_is_in_the_document_and_nothing_else(app, spec):
    routes = set()
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        if path.startswith("/api/v1/"):
            routes |= {(path, m.lower()) for m in rule.methods or () if m not in ("HEAD", "OPTIONS")}
    documented = {(path, method) for path, method, _ in operations(spec)}
    assert routes, "no route under /api/v1"
    assert routes - documented == set(), "routes missing from /openapi.json"
    assert {(p, m) for p, m in documented if p.startswith("/api/v1/")} - routes == set(), "documented, not served"
    assert ("/healthz", "get") in documented


def test_every_operation_documents_its_errors_as_problems(spec):
    for path, method, operation in operations(spec):
        where = f"{method.upper()} {path}"
        answers = responses(spec, operation)
        errors = {code: r for code, r in answers.items() if code == "default" or int(code) >= 400}
        assert any(code != "default" for code in errors), f"{where}: no error response"
        for code, response in errors.items():
            content = response.get("content", {})
            assert set(content) == {PROBLEM_JSON}, f"{where} {code}: {set(content)}"
            media = content[PROBLEM_JSON]
            assert media["schema"] == {"$ref": "#/components/schemas/ProblemOut"}, f"{where} {code}"
            (example,) = examples_of(media)
            assert mismatches(spec, media["schema"], example) == [], f"{where} {code}"
            assert example["status"] == (500 if code == "default" else int(code)), f"{where} {code}"
        codes = declared(operation)
        if path.startswith("/api/v1/"):
            assert 401 in codes, f"{where}: every /api/v1 operation needs a token"
            assert "WWW-Authenticate" in answers["401"]["headers"]
        if "requestBody" in operation:
            assert {400, 413, 415} <= codes, f"{where}: a body can be invalid, too large or not JSON"
        if any(p["in"] == "query" for p in operation.get("parameters", [])):
            assert 400 in codes, f"{where}: a query string can be invalid"
        if "{" in path:
            assert 404 in codes, f"{where}: an id can be unknown"
        assert operation.get("summary"), f"{where}: no summary"


def test_every_operation_has_examples(spec):
    count = 0
    for path, method, operation in operations(spec):
        where = f"{method.upper()} {path}"
        count += 1
        successes = {code: r for code, r in responses(spec, operation).items() if code.startswith("2")}
        assert successes, f"{where}: no success response"
        for code, response in successes.items():
            if code == "204":
                assert "content" not in response, f"{where}: 204 has no body"
                continue
            assert response.get("content"), f"{where} {code}: no content"
            for media_type, media in response["content"].items():
                found = examples_of(media)
                assert found, f"{where} {code} {media_type}: no example"
                for example in found:
                    if "schema" in media:
                        assert mismatches(spec, media["schema"], example) == [], f"{where} {code}"
                    if media_type == "text/csv":
                        assert isinstance(example, str) and example.endswith("\r\n"), f"{where}: CSV example"
                    assert unrealistic(example) == [], f"{where} {code}"
        if "requestBody" in operation:
            media = operation["requestBody"]["content"]["application/json"]
            (example,) = examples_of(media)
            assert mismatches(spec, media["schema"], example) == [], f"{where}: request example"
            assert unrealistic(example) == [], f"{where}: request example"
    assert count >= 37


# --- the document tells the truth ------------------------------------------------------------------


def _url(path: str, operation: dict, *, query: str = "") -> str:
    url = re.sub(r"\{(\w+)\}", lambda m: new_id(ID_PREFIX.get(m.group(1), "x")), path)
    return url + (f"?{query}" if query else "")


def _check(response, operation: dict, where: str) -> int:
    status = response.status_code
    assert status in declared(operation), f"{where} answered {status}, not in {sorted(declared(operation))}"
    if status >= 400:
        assert response.mimetype == PROBLEM_JSON, where
    return status


def test_what_the_server_answers_is_what_the_document_declares(client, spec, make_actor):
    """Every operation, called by every role with unknown ids and its own examples, answers only as declared."""
    actors = {role: make_actor(role) for role in ROLES}
    seen: dict[int, int] = {}
    for path, method, operation in operations(spec):
        body = (
            examples_of(operation["requestBody"]["content"]["application/json"])[0]
            if "requestBody" in operation
            else None
        )
        for role, actor in actors.items():
            response = client.open(_url(path, operation), method=method.upper(), json=body, headers=actor.auth)
            status = _check(response, operation, f"{method.upper()} {path} as {role}")
            seen[status] = seen.get(status, 0) + 1
    # The walk reached the interesting answers, not only one kind of refusal.
    assert {400, 403, 404} <= set(seen), seen
    assert any(200 <= s < 300 for s in seen), seen


def test_hostile_requests_get_declared_problems(client, spec, app, make_actor):
    resident = make_actor("resident")
    limit = app.config["MAX_CONTENT_LENGTH"]
    for path, method, operation in operations(spec):
        verb = method.upper()
        where = f"{verb} {path}"
        if path.startswith("/api/v1/"):
            assert _check(client.open(_url(path, operation), method=verb), operation, where + " without a token") == 401
            bad_token = {"Authorization": "Bearer cvt_not-a-real-token"}
            response = client.open(_url(path, operation), method=verb, headers=bad_token)
            assert _check(response, operation, where + " with a bad token") == 401
        if any(p["in"] == "query" for p in operation.get("parameters", [])):
            response = client.open(_url(path, operation, query="unexpected=1"), method=verb, headers=resident.auth)
            assert _check(response, operation, where + " with an unknown query field") == 400
        if "requestBody" in operation:
            url = _url(path, operation)
            response = client.open(url, method=verb, json={"unexpected": 1}, headers=resident.auth)
            assert _check(response, operation, where + " with an unknown body field") == 400
            response = client.open(
                url, method=verb, data="a=b", content_type="application/x-www-form-urlencoded", headers=resident.auth
            )
            assert _check(response, operation, where + " with a form body") == 415
            response = client.open(
                url, method=verb, data=b"[" * (limit + 1), content_type="application/json", headers=resident.auth
            )
            assert _check(response, operation, where + " with a body over the limit") == 413
