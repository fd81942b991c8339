"""The decision point alone: a pure function, every reason code, exact boundaries."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from vault.consent import policy
from vault.core.errors import ConsentDenied

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
MS = timedelta(milliseconds=1)

GRANT = policy.GrantFacts(
    id="g-1",
    subject_id="p-amina",
    grantee_id="p-clinic",
    categories=("health.*",),
    purpose="treatment",
    actions=("read",),
    valid_from=NOW - timedelta(days=1),
    expires_at=NOW + timedelta(days=1),
    max_uses=None,
    uses=0,
    revoked=False,
)
READ = policy.AccessQuery(
    subject_id="p-amina",
    actor_id="p-clinic",
    actor_role="clinic",
    category="health.labs",
    purpose="treatment",
    action="read",
)


def reason(**kwargs) -> str:
    with pytest.raises(ConsentDenied) as info:
        policy.decide(**{"grants": [GRANT], "query": READ, "now": NOW, **kwargs})
    return info.value.reason


def test_a_covering_grant_permits_and_names_itself():
    assert policy.decide(grants=[GRANT], query=READ, now=NOW) == policy.Permit(basis="grant", grant_id="g-1")


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"categories": ("tenancy.*",)}, "wrong-category"),
        ({"categories": ("health.allergies",)}, "wrong-category"),
        ({"actions": ("write",)}, "wrong-action"),
        ({"purpose": "research"}, "wrong-purpose"),
        ({"revoked": True}, "revoked"),
        ({"valid_from": NOW + MS}, "not-yet-valid"),
        ({"expires_at": NOW}, "expired"),
        ({"max_uses": 2, "uses": 2}, "used-up"),
    ],
)
def test_each_reason_code(change, expected):
    assert reason(grants=[replace(GRANT, **change)]) == expected


def test_no_grant_at_all_or_for_someone_else():
    assert reason(grants=[]) == "no-grant"
    assert reason(grants=[replace(GRANT, grantee_id="p-other")]) == "no-grant"
    assert reason(grants=[replace(GRANT, subject_id="p-tomasz")]) == "no-grant"


def test_expiry_boundary_is_half_open():
    grant = replace(GRANT, expires_at=NOW + MS)
    assert policy.decide(grants=[grant], query=READ, now=NOW).basis == "grant"
    assert reason(grants=[grant], now=NOW + MS) == "expired"
    starting = replace(GRANT, valid_from=NOW)
    assert policy.decide(grants=[starting], query=READ, now=NOW).basis == "grant"
    assert reason(grants=[starting], now=NOW - MS) == "not-yet-valid"


def test_use_limit():
    assert policy.decide(grants=[replace(GRANT, max_uses=1, uses=0)], query=READ, now=NOW).basis == "grant"
    assert reason(grants=[replace(GRANT, max_uses=1, uses=1)]) == "used-up"


def test_the_closest_basis_names_the_reason():
    expired_but_matching = replace(GRANT, id="g-a", expires_at=NOW - MS)
    other_category = replace(GRANT, id="g-b", categories=("tenancy.*",))
    wrong_purpose = replace(GRANT, id="g-c", purpose="research")
    assert reason(grants=[other_category, expired_but_matching]) == "expired"
    assert reason(grants=[other_category, wrong_purpose]) == "wrong-purpose"


def test_a_live_grant_wins_over_dead_ones_and_the_soonest_expiring_is_used():
    dead = replace(GRANT, id="g-dead", revoked=True)
    late = replace(GRANT, id="g-late", expires_at=NOW + timedelta(days=9))
    soon = replace(GRANT, id="g-soon", expires_at=NOW + timedelta(hours=1))
    assert policy.decide(grants=[dead, late, soon], query=READ, now=NOW).grant_id == "g-soon"


def test_the_resident_needs_no_grant():
    own = replace(READ, actor_id="p-amina", actor_role="resident", purpose=None)
    assert policy.decide(grants=[], query=own, now=NOW).basis == "self"
    impostor = replace(READ, actor_id="p-amina", actor_role="clinic")
    with pytest.raises(ConsentDenied):
        policy.decide(grants=[], query=impostor, now=NOW)


@pytest.mark.parametrize("role", ["compliance", "admin", "witness"])
def test_content_blind_roles_are_refused_whatever_they_hold(role):
    query = replace(READ, actor_role=role)
    assert reason(query=query) == "no-grant"


def delegation(**change):
    base = policy.DelegationFacts(
        id="d-1",
        subject_id="p-amina",
        delegate_id="p-tomasz",
        valid_from=NOW - MS,
        expires_at=NOW + timedelta(days=1),
        revoked=False,
    )
    return replace(base, **change)


DELEGATE_READ = replace(READ, actor_id="p-tomasz", actor_role="resident", category="tenancy.income", purpose="legal")


def test_a_live_delegation_permits_reads_for_any_purpose():
    permit = policy.decide(grants=[], delegations=[delegation()], query=DELEGATE_READ, now=NOW)
    assert permit == policy.Permit(basis="delegation", delegation_id="d-1")


@pytest.mark.parametrize(
    "change, query_change, expected",
    [
        ({"revoked": True}, {}, "revoked"),
        ({"expires_at": NOW}, {}, "expired"),
        ({"valid_from": NOW + MS}, {}, "not-yet-valid"),
        ({}, {"action": "write"}, "wrong-action"),
        ({}, {"purpose": None}, "wrong-purpose"),
    ],
)
def test_delegation_refusals(change, query_change, expected):
    with pytest.raises(ConsentDenied) as info:
        policy.decide(
            grants=[], delegations=[delegation(**change)], query=replace(DELEGATE_READ, **query_change), now=NOW
        )
    assert info.value.reason == expected


def test_delegations_only_count_for_residents():
    query = replace(DELEGATE_READ, actor_role="clinic")
    with pytest.raises(ConsentDenied) as info:
        policy.decide(grants=[], delegations=[delegation()], query=query, now=NOW)
    assert info.value.reason == "no-grant"


def declaration(**change):
    base = policy.BreakGlassFacts(
        id="b-1", subject_id="p-amina", clinic_id="p-clinic", declared_at=NOW - MS, expires_at=NOW + timedelta(hours=4)
    )
    return replace(base, **change)


def test_break_glass_permits_health_reads_for_emergencies_and_is_flagged():
    query = replace(READ, purpose="emergency")
    permit = policy.decide(grants=[], break_glass=[declaration()], query=query, now=NOW)
    assert permit.basis == "break-glass" and permit.break_glass_id == "b-1" and permit.flagged
    assert not policy.decide(grants=[GRANT], query=READ, now=NOW).flagged


@pytest.mark.parametrize(
    "query_change, decl_change, expected",
    [
        ({"category": "tenancy.lease"}, {}, "wrong-category"),
        ({"purpose": "treatment"}, {}, "wrong-purpose"),
        ({"action": "write"}, {}, "wrong-action"),
        ({}, {"expires_at": NOW}, "expired"),
        ({"actor_role": "landlord"}, {}, "no-grant"),
    ],
)
def test_break_glass_refusals(query_change, decl_change, expected):
    query = replace(READ, **{"purpose": "emergency", **query_change})
    with pytest.raises(ConsentDenied) as info:
        policy.decide(grants=[], break_glass=[declaration(**decl_change)], query=query, now=NOW)
    assert info.value.reason == expected


def test_status_of_a_grant():
    assert policy.grant_status(GRANT, NOW) == "active"
    assert policy.grant_status(replace(GRANT, revoked=True, expires_at=NOW - MS), NOW) == "revoked"
    assert policy.grant_status(replace(GRANT, valid_from=NOW + MS), NOW) == "not-yet-valid"
    assert policy.grant_status(replace(GRANT, expires_at=NOW), NOW) == "expired"
    assert policy.grant_status(replace(GRANT, max_uses=1, uses=1), NOW) == "used-up"


def test_decide_is_pure():
    grants = [replace(GRANT, max_uses=1, uses=0)]
    for _ in range(3):
        assert policy.decide(grants=grants, query=READ, now=NOW).basis == "grant"
    assert grants[0].uses == 0


# A delegate's grants (issue 11): whenever they were stored, one naming its own giver is no basis,
# and one given by anyone but the resident carries reads only.
WRITE = replace(READ, action="write")


def test_a_grant_its_grantee_gave_itself_is_no_basis():
    forged = replace(GRANT, grantee_id="p-tomasz", created_by="p-tomasz", actions=("read", "write"))
    as_tomasz = {"actor_id": "p-tomasz", "actor_role": "resident"}
    for query in (replace(READ, **as_tomasz), replace(WRITE, **as_tomasz)):
        with pytest.raises(ConsentDenied) as info:
            policy.decide(grants=[forged], query=query, now=NOW)
        assert info.value.reason == "no-grant"


@pytest.mark.parametrize("created_by, writes", [(None, True), ("p-amina", True), ("p-delegate", False)])
def test_a_grant_a_delegate_gave_carries_reads_only(created_by, writes):
    given = replace(GRANT, actions=("read", "write"), created_by=created_by)
    assert policy.decide(grants=[given], query=READ, now=NOW).grant_id == "g-1"
    if writes:
        assert policy.decide(grants=[given], query=WRITE, now=NOW).grant_id == "g-1"
    else:
        assert reason(grants=[given], query=WRITE) == "wrong-action"
