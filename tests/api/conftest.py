"""Fixtures for the API tests: settings with rate limits out of the way, a frozen, movable clock and a small cast."""

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from vault.core.clock import rfc3339
from vault.core.config import RateLimits, Settings

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


# The API tests create many principals and requests, and send many bad tokens from one address:
# the rate limits are tested on their own (test_rate_limits.py) with low values.
HIGH_LIMITS = RateLimits(
    failed_auth="100000/minute",
    break_glass="100000/hour",
    access_requests="100000/hour",
    erasure="100000/hour",
    share_codes="100000/hour",
    attestations="100000/hour",
)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, rate_limits=HIGH_LIMITS)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def at(self, **delta) -> str:
        """RFC 3339 of now + delta, for request bodies."""
        return rfc3339(self.now + timedelta(**delta))


@pytest.fixture
def clock(vault_) -> Clock:
    clock = Clock(T0)
    vault_.clock = clock
    return clock


@pytest.fixture
def cast(make_actor):
    """Two residents, a clinic, a landlord, a compliance officer, an admin, a witness."""

    class Cast:
        amina = make_actor("resident", "Amina Yusuf")
        tomasz = make_actor("resident", "Tomasz Nowak")
        clinic = make_actor("clinic", "Riverside Clinic")
        landlord = make_actor("landlord", "Harbour Housing")
        compliance = make_actor("compliance", "Dana Whitfield")
        admin = make_actor("admin", "Operator")
        witness = make_actor("witness", "County Witness")

    return Cast


def add_record(client, owner, category="health.allergies", content=None, title=None):
    response = client.post(
        f"/api/v1/subjects/{owner.id}/records",
        json={"category": category, "content": content or {"c": category}, "title": title},
        headers=owner.auth,
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def grant(
    client,
    subject,
    grantee,
    clock,
    *,
    categories=("health.*",),
    purpose="treatment",
    actions=("read",),
    days=30,
    **extra,
):
    body = {
        "grantee_id": grantee.id,
        "categories": list(categories),
        "purpose": purpose,
        "actions": list(actions),
        "expires_at": clock.at(days=days),
        **extra,
    }
    response = client.post("/api/v1/consents", json=body, headers=subject.auth)
    assert response.status_code == 201, response.get_json()
    return response.get_json()
