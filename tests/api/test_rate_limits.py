"""Rate limits: failed authentication per address, break-glass, access requests and erasure per caller.

The limits here are low (this module's ``settings``); the other API tests run
with limits out of the way (conftest.py). Counts shared through Redis are
tested against the real server at 127.0.0.1:6379, under a key prefix of the
test's own that is deleted afterwards; those tests are skipped only when no
Redis answers there.
"""

import dataclasses
import logging
import os
import secrets
import time

import pytest

from api import create_app
from tests.api.helpers import assert_problem
from tests.api.test_openapi import examples_of, operations
from vault.core.config import RateLimits, Settings
from vault.core.errors import ConfigError
from vault.runtime import Vault

REDIS_URL = "redis://127.0.0.1:6379/0"
LOW = RateLimits(failed_auth="5/minute", break_glass="2/hour", access_requests="3/hour", erasure="2/hour")
BAD_TOKEN = {"Authorization": "Bearer cvt_" + "A" * 43}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, rate_limits=LOW)


def from_address(address: str) -> dict:
    return {"environ_base": {"REMOTE_ADDR": address}}


def assert_rate_limited(response, *, within: int) -> int:
    problem = assert_problem(response, 429)
    assert problem["type"] == "urn:civicvault:problem:rate-limited"
    seconds = response.headers["Retry-After"]
    assert seconds.isdigit() and 1 <= int(seconds) <= within, seconds
    assert f"retry in {seconds} seconds" in problem["detail"]
    return int(seconds)


# --- failed authentication, per client address ---------------------------------------------------


def test_failed_authentication_is_limited_per_address_and_a_valid_token_still_works(client, make_actor):
    resident = make_actor("resident")
    here = from_address("203.0.113.7")
    for attempt in range(5):
        headers = BAD_TOKEN if attempt % 2 else {}  # a missing token fails too
        assert_problem(client.get("/api/v1/me", headers=headers, **here), 401)
    assert_rate_limited(client.get("/api/v1/me", headers=BAD_TOKEN, **here), within=60)
    assert_rate_limited(client.get("/api/v1/records/r-x", **here), within=60)  # any route, no token
    # A client with a valid token behind the same address is not locked out ...
    assert client.get("/api/v1/me", headers=resident.auth, **here).status_code == 200
    # ... nor is another address.
    assert_problem(client.get("/api/v1/me", headers=BAD_TOKEN, **from_address("198.51.100.9")), 401)


def test_a_scan_is_logged_once_a_minute_per_address_not_once_a_request(client, caplog):
    with caplog.at_level(logging.WARNING, logger="civicvault.api"):
        answers = [client.get("/api/v1/me", headers=BAD_TOKEN).status_code for _ in range(50)]
        client.get("/api/v1/me", headers=BAD_TOKEN, **from_address("198.51.100.20"))
    assert answers == [401] * 5 + [429] * 45
    warnings = [r.getMessage() for r in caplog.records if "too many failed authentications" in r.getMessage()]
    assert len(warnings) == 1 and "127.0.0.1" in warnings[0], warnings


def test_x_forwarded_for_counts_only_behind_trusted_proxies(settings, make_actor):
    spoofed = [{"X-Forwarded-For": f"192.0.2.{n}", **BAD_TOKEN} for n in range(10)]
    # Not behind a proxy (the default): a client cannot dodge the limit by naming other addresses.
    vault = Vault.open(settings)
    try:
        client = create_app(vault=vault).test_client()
        answers = [client.get("/api/v1/me", headers=h).status_code for h in spoofed]
        assert answers == [401] * 5 + [429] * 5
    finally:
        vault.close()
    # Behind one trusted proxy, its X-Forwarded-For names the client.
    vault = Vault.open(dataclasses.replace(settings, trusted_proxies=1))
    try:
        client = create_app(vault=vault).test_client()
        assert [client.get("/api/v1/me", headers=h).status_code for h in spoofed] == [401] * 10
    finally:
        vault.close()


# --- per caller -----------------------------------------------------------------------------------


@pytest.fixture
def spec(client) -> dict:
    return client.get("/openapi.json").get_json()


def example_body(spec: dict, path: str) -> dict:
    return examples_of(spec["paths"][path]["post"]["requestBody"]["content"]["application/json"])[0]


@pytest.mark.parametrize(
    ("path", "role", "limit"),
    [
        ("/api/v1/subjects/{subject_id}/break-glass", "clinic", 2),
        ("/api/v1/access-requests", "landlord", 3),
        ("/api/v1/subjects/{subject_id}/erasure", "resident", 2),
    ],
)
def test_posts_are_limited_per_caller(client, spec, make_actor, path, role, limit):
    resident = make_actor("resident")
    caller, other = make_actor(role), make_actor(role)
    url = path.format(subject_id=resident.id)  # the resident's own id: others' erasure attempts are refused
    body = example_body(spec, path)
    if "subject_id" in body:
        body["subject_id"] = resident.id
    for _ in range(limit):
        response = client.post(url, json=body, headers=caller.auth)
        assert response.status_code != 429, response.get_json()
    assert_rate_limited(client.post(url, json=body, headers=caller.auth), within=3600)
    # Counted before the body is read: a malformed one is refused as well.
    assert_rate_limited(client.post(url, data="{", content_type="application/json", headers=caller.auth), within=3600)
    # Another caller of the same role has a count of their own, and reads are not limited.
    assert client.post(url, json=body, headers=other.auth).status_code != 429
    if "get" in spec["paths"][path]:
        assert client.get(url, headers=caller.auth).status_code != 429


def test_the_limited_operations_declare_429_with_retry_after(spec):
    declared = {}
    for path, method, operation in operations(spec):
        declared[(path, method)] = operation["responses"]
        if path.startswith("/api/v1/"):
            assert "429" in operation["responses"], f"{method} {path}: a bad token can be answered 429"
    for path in (
        "/api/v1/subjects/{subject_id}/break-glass",
        "/api/v1/access-requests",
        "/api/v1/subjects/{subject_id}/erasure",
    ):
        assert "429" in declared[(path, "post")], path
    response = spec["components"]["responses"]["TOO_MANY_REQUESTS"]
    assert "Retry-After" in response["headers"]
    assert response["content"]["application/problem+json"]["example"]["type"] == "urn:civicvault:problem:rate-limited"


# --- storage: memory by default, Redis shared across instances -------------------------------------


def test_memory_is_the_default_and_counts_per_instance_without_redis(settings, tmp_path):
    assert Settings.from_env(tmp_path, {}).rate_limits.storage == "memory://"
    assert not Settings.from_env(tmp_path, {}).rate_limits.shared
    vault = Vault.open(settings)
    try:
        first, second = (create_app(vault=vault).test_client() for _ in range(2))
        assert [first.get("/api/v1/me", headers=BAD_TOKEN).status_code for _ in range(6)] == [401] * 5 + [429]
        assert second.get("/api/v1/me", headers=BAD_TOKEN).status_code == 401  # its own memory
    finally:
        vault.close()


@pytest.fixture
def redis_prefix():
    redis = pytest.importorskip("redis")
    connection = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        connection.ping()
    except redis.exceptions.RedisError:
        if os.environ.get("CIVICVAULT_TEST_REQUIRE_REDIS"):  # CI: the shared path is tested for real
            pytest.fail(f"no Redis answers at {REDIS_URL}")
        pytest.skip(f"no Redis answers at {REDIS_URL}")
    prefix = f"civicvault-test-{secrets.token_hex(6)}"
    yield prefix
    keys = list(connection.scan_iter(match=f"*{prefix}*", count=1000))
    if keys:
        connection.delete(*keys)
    assert not list(connection.scan_iter(match=f"*{prefix}*"))
    connection.close()


def test_two_instances_sharing_redis_share_the_count(settings, make_actor, redis_prefix):
    shared = dataclasses.replace(LOW, storage=REDIS_URL, key_prefix=redis_prefix)
    first_vault = Vault.open(dataclasses.replace(settings, rate_limits=shared))
    second_vault = Vault.open(dataclasses.replace(settings, rate_limits=shared))  # another worker or host
    try:
        first = create_app(vault=first_vault).test_client()
        second = create_app(vault=second_vault).test_client()
        assert [first.get("/api/v1/me", headers=BAD_TOKEN).status_code for _ in range(3)] == [401] * 3
        assert [second.get("/api/v1/me", headers=BAD_TOKEN).status_code for _ in range(2)] == [401] * 2
        assert_rate_limited(first.get("/api/v1/me", headers=BAD_TOKEN), within=60)
        assert_rate_limited(second.get("/api/v1/me", headers=BAD_TOKEN), within=60)
        # Per-caller limits are shared too.
        resident, clinic = make_actor("resident"), make_actor("clinic")
        url = f"/api/v1/subjects/{resident.id}/break-glass"
        assert first.post(url, json={"reason": "x"}, headers=clinic.auth).status_code != 429
        assert second.post(url, json={"reason": "x"}, headers=clinic.auth).status_code != 429
        assert_rate_limited(first.post(url, json={"reason": "x"}, headers=clinic.auth), within=3600)
        # Another vault on the same Redis with another prefix counts apart.
        other = dataclasses.replace(shared, key_prefix=redis_prefix + "-other")
        third_vault = Vault.open(dataclasses.replace(settings, rate_limits=other))
        try:
            third = create_app(vault=third_vault).test_client()
            assert third.get("/api/v1/me", headers=BAD_TOKEN).status_code == 401
        finally:
            third_vault.close()
    finally:
        first_vault.close()
        second_vault.close()


def test_an_unreachable_redis_falls_back_to_memory(settings, make_actor):
    # Nothing listens on port 1: every Redis call fails at once.
    down = dataclasses.replace(LOW, storage="redis://127.0.0.1:1/0", key_prefix="civicvault-test-down")
    vault = Vault.open(dataclasses.replace(settings, rate_limits=down))
    try:
        client = create_app(vault=vault).test_client()
        resident, clinic = make_actor("resident"), make_actor("clinic")
        started = time.monotonic()
        assert [client.get("/api/v1/me", headers=BAD_TOKEN).status_code for _ in range(6)] == [401] * 5 + [429]
        assert client.get("/api/v1/me", headers=resident.auth).status_code == 200
        url = f"/api/v1/subjects/{resident.id}/break-glass"
        answers = [client.post(url, json={"reason": "x"}, headers=clinic.auth).status_code for _ in range(3)]
        assert 429 not in answers[:2] and answers[2] == 429, answers
        assert time.monotonic() - started < 10
    finally:
        vault.close()


def test_rate_settings(tmp_path):
    def rates(**env):
        return Settings.from_env(
            tmp_path, {f"CIVICVAULT_RATE_LIMIT_{k.upper()}": v for k, v in env.items()}
        ).rate_limits

    assert rates() == RateLimits()
    assert rates(failed_auth="10 per 2 minutes;100/day").failed_auth == "10 per 2 minutes;100/day"
    assert rates(storage="redis://cache.internal:6379/2", prefix="vault-b").shared
    for name, bad in (
        ("failed_auth", "0/minute"),
        ("break_glass", "10/fortnight"),
        ("erasure", "ten per hour"),
        ("access_requests", "5/minute;"),
        ("storage", "http://127.0.0.1:6379"),
        ("prefix", "has space"),
    ):
        with pytest.raises(ConfigError, match="CIVICVAULT_RATE_LIMIT_"):
            rates(**{name: bad})
