"""The action ``attest``: a grant for signed answers, never for reading (docs/consent.md, "Attestations")."""

from dataclasses import replace

import pytest

from tests.vault.consent.test_policy import GRANT, NOW, READ
from vault.consent import consent, policy
from vault.core.caller import Caller
from vault.core.errors import ConsentDenied, Forbidden

ATTEST_ONLY = replace(GRANT, categories=("tenancy.income",), purpose="tenancy-screening", actions=("attest",))
INCOME_READ = replace(READ, category="tenancy.income", purpose="tenancy-screening")
INCOME_ATTEST = replace(INCOME_READ, action="attest")


def _reason(grant: policy.GrantFacts, query: policy.AccessQuery) -> str:
    with pytest.raises(ConsentDenied) as info:
        policy.decide(grants=[grant], query=query, now=NOW)
    return info.value.reason


def test_attest_is_an_action_and_permits_only_attesting():
    assert "attest" in policy.ACTIONS
    assert policy.decide(grants=[ATTEST_ONLY], query=INCOME_ATTEST, now=NOW).grant_id == "g-1"
    assert _reason(ATTEST_ONLY, INCOME_READ) == "wrong-action"
    assert _reason(ATTEST_ONLY, replace(INCOME_READ, action="write")) == "wrong-action"
    assert _reason(ATTEST_ONLY, replace(INCOME_READ, action="list")) == "wrong-action"


def test_a_read_grant_does_not_attest():
    reading = replace(ATTEST_ONLY, actions=("read",))
    assert _reason(reading, INCOME_ATTEST) == "wrong-action"


def test_attest_follows_the_grants_life_cycle():
    assert _reason(replace(ATTEST_ONLY, revoked=True), INCOME_ATTEST) == "revoked"
    assert _reason(replace(ATTEST_ONLY, expires_at=NOW), INCOME_ATTEST) == "expired"
    assert _reason(replace(ATTEST_ONLY, max_uses=2, uses=2), INCOME_ATTEST) == "used-up"
    assert _reason(replace(ATTEST_ONLY, purpose="legal"), INCOME_ATTEST) == "wrong-purpose"


def test_delegations_and_break_glass_never_attest():
    delegation = policy.DelegationFacts(
        id="d-1",
        subject_id="p-amina",
        delegate_id="p-tomasz",
        valid_from=GRANT.valid_from,
        expires_at=GRANT.expires_at,
        revoked=False,
    )
    as_delegate = replace(INCOME_ATTEST, actor_id="p-tomasz", actor_role="resident")
    with pytest.raises(ConsentDenied) as info:
        policy.decide(grants=[], delegations=[delegation], query=as_delegate, now=NOW)
    assert info.value.reason == "wrong-action"


def test_a_grant_a_delegate_gave_carries_no_attest_and_a_delegate_cannot_give_one():
    given = replace(ATTEST_ONLY, created_by="p-delegate")
    assert given.effective_actions == ()
    assert _reason(given, INCOME_ATTEST) == "wrong-action"
    with pytest.raises(Forbidden):
        consent.check_delegate_grant(
            Caller(id="p-delegate", role="resident"), grantee_id="p-landlord", actions=("attest",)
        )
    assert consent.check_actions(["attest", "read", "attest"]) == ("attest", "read")
