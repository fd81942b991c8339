"""Security headers on every response: data never cached, sniffed, framed or leaked through a referrer.

Every operation of the OpenAPI document is called (with a token, without one,
with unknown ids and its own example body), and every answer, success or
problem, must carry the headers. /docs keeps its own Content-Security-Policy.
"""

import dataclasses

import pytest

from api import create_app
from api.docs import CONTENT_SECURITY_POLICY as DOCS_CSP
from api.headers import JSON_CONTENT_SECURITY_POLICY
from tests.api.conftest import add_record
from tests.api.test_openapi import _url, examples_of, operations
from vault.core.config import DEFAULT_HSTS_SECONDS, Settings
from vault.core.errors import ConfigError
from vault.runtime import Vault

EXPECTED = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": JSON_CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
}


def missing_headers(response, expected=EXPECTED) -> dict:
    return {name: response.headers.get(name) for name, value in expected.items() if response.headers.get(name) != value}


def every_call(client, actor):
    """(what, response) for every operation, with and without a token."""
    spec = client.get("/openapi.json").get_json()
    for path, method, operation in operations(spec):
        body = (
            examples_of(operation["requestBody"]["content"]["application/json"])[0]
            if "requestBody" in operation
            else None
        )
        url = _url(path, operation)
        yield f"{method.upper()} {path}", client.open(url, method=method.upper(), json=body, headers=actor.auth)
        yield f"{method.upper()} {path} without a token", client.open(url, method=method.upper(), json=body)


def test_every_response_of_every_route_carries_the_security_headers(client, make_actor):
    resident = make_actor("resident")
    statuses = set()
    count = 0
    for what, response in every_call(client, resident):
        assert missing_headers(response) == {}, what
        assert "Strict-Transport-Security" not in response.headers, what  # not configured
        statuses.add(response.status_code)
        count += 1
    assert count >= 74 and {200, 401, 404} <= statuses, statuses
    for url in ("/healthz", "/openapi.json", "/api/v1/no-such-route", "/nowhere"):
        assert missing_headers(client.get(url)) == {}, url
    assert missing_headers(client.delete("/api/v1/me", headers=resident.auth)) == {}  # 405


def test_a_record_with_content_is_never_stored_by_a_cache(client, make_actor):
    resident = make_actor("resident")
    record_id = add_record(client, resident, content={"allergy": "penicillin"})
    response = client.get(f"/api/v1/records/{record_id}", headers=resident.auth)
    assert response.status_code == 200 and response.get_json()["content"] == {"allergy": "penicillin"}
    assert missing_headers(response) == {}
    problem = client.post("/api/v1/consents", data="{", content_type="application/json", headers=resident.auth)
    assert problem.status_code == 400 and missing_headers(problem) == {}


def test_docs_keep_their_own_policy_and_get_the_others(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.headers["Content-Security-Policy"] == DOCS_CSP
    assert missing_headers(page, {k: v for k, v in EXPECTED.items() if k != "Content-Security-Policy"}) == {}
    asset = client.get("/docs/assets/docs.js")
    assert asset.status_code == 200
    for name in ("X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options", "Content-Security-Policy"):
        assert asset.headers[name] == EXPECTED[name], name


@pytest.fixture
def tls_client(settings):
    vault = Vault.open(dataclasses.replace(settings, hsts_seconds=DEFAULT_HSTS_SECONDS))
    try:
        yield create_app(vault=vault).test_client()
    finally:
        vault.close()


def test_hsts_when_configured_on_every_response(tls_client, vault_, make_actor):
    resident = make_actor("resident")
    count = 0
    for what, response in every_call(tls_client, resident):
        assert response.headers.get("Strict-Transport-Security") == f"max-age={DEFAULT_HSTS_SECONDS}", what
        assert missing_headers(response) == {}, what
        count += 1
    assert count >= 74
    assert tls_client.get("/docs").headers["Strict-Transport-Security"] == f"max-age={DEFAULT_HSTS_SECONDS}"


def test_the_hsts_setting(tmp_path):
    def hsts(value):
        return Settings.from_env(tmp_path, {"CIVICVAULT_HSTS": value}).hsts_seconds

    assert hsts("") is None and hsts("off") is None and hsts("OFF") is None
    assert hsts("on") == DEFAULT_HSTS_SECONDS == 31536000
    assert hsts("600") == 600 and hsts("0") == 0  # max-age=0 tells browsers to forget it
    for bad in ("yes", "-1", "1e9", "٣٠٠", "999999999999"):
        with pytest.raises(ConfigError, match="CIVICVAULT_HSTS"):
            hsts(bad)
