"""Regression tests for the consent and rights holes found when the vault was attacked (issue 11).

- A delegate granted itself read and write on the resident's records, and the
  grant outlived the delegation.
- Consent errors named another principal's role ("not to a compliance").
- An erased resident came back into the ledger: refusals naming the id, the
  erasure's own ``delegation.revoked`` events, and a 500 on break-glass.
- The ledger's size told a prober whether an id exists: a refused read of a
  foreign record appended an event, one of an unknown id did not.
"""

import json

import pytest
from sqlalchemy import select

from tests.api.conftest import add_record, grant
from tests.api.helpers import assert_problem
from vault.core.ids import new_id
from vault.ledger import ledger
from vault.storage.models import Event, Grant

API = "/api/v1"


def size(vault_) -> int:
    with vault_.read_transaction() as session:
        return ledger.size(session)


def events_since(vault_, start: int) -> list[Event]:
    with vault_.read_transaction() as session:
        rows = session.scalars(select(Event).where(Event.ledger_index >= start).order_by(Event.ledger_index)).all()
        session.expunge_all()
        return list(rows)


def delegate(client, subject, delegate_, clock, days=30) -> dict:
    made = client.post(
        f"{API}/delegations",
        json={"delegate_id": delegate_.id, "expires_at": clock.at(days=days)},
        headers=subject.auth,
    )
    assert made.status_code == 201, made.get_json()
    return made.get_json()


def grant_body(subject_id, grantee_id, clock, actions=("read",), categories=("health.*",)) -> dict:
    return {
        "subject_id": subject_id,
        "grantee_id": grantee_id,
        "categories": list(categories),
        "purpose": "treatment",
        "actions": list(actions),
        "expires_at": clock.at(days=30),
    }


# --------------------------------------------------------------------------- 1. delegates


@pytest.mark.parametrize("actions", [("read",), ("read", "write"), ("write",)])
def test_a_delegate_cannot_grant_itself_anything(client, vault_, cast, clock, actions):
    amina, tomasz = cast.amina, cast.tomasz
    record = add_record(client, amina, "health.allergies", {"substance": "penicillin"})
    delegation = delegate(client, amina, tomasz, clock)
    before = size(vault_)
    refused = client.post(f"{API}/consents", json=grant_body(amina.id, tomasz.id, clock, actions), headers=tomasz.auth)
    assert_problem(refused, 403)
    assert size(vault_) == before  # no consent.granted event, no grant row
    with vault_.read_transaction() as session:
        assert session.scalars(select(Grant).where(Grant.grantee_id == tomasz.id)).first() is None
    # Nothing outlives the delegation: once it ends, Tomasz reads nothing and writes nothing.
    client.post(f"{API}/delegations/{delegation['id']}/revoke", headers=amina.auth)
    assert assert_problem(client.get(f"{API}/records/{record}?purpose=treatment", headers=tomasz.auth), 403)[
        "reason"
    ] == ("revoked")
    wrote = client.put(
        f"{API}/records/{record}", json={"content": {"x": 1}, "purpose": "treatment"}, headers=tomasz.auth
    )
    assert wrote.status_code in (403, 404)


@pytest.mark.parametrize("actions", [("read", "write"), ("write",)])
def test_a_delegate_cannot_pass_on_an_action_it_cannot_perform(client, vault_, cast, clock, actions):
    amina, tomasz = cast.amina, cast.tomasz
    delegate(client, amina, tomasz, clock)
    before = size(vault_)
    refused = client.post(
        f"{API}/consents", json=grant_body(amina.id, cast.clinic.id, clock, actions), headers=tomasz.auth
    )
    assert "write" in assert_problem(refused, 403)["detail"]
    assert size(vault_) == before
    # Reads for someone else remain the delegate's to give; the resident may give writes herself.
    ok = client.post(f"{API}/consents", json=grant_body(amina.id, cast.clinic.id, clock), headers=tomasz.auth)
    assert ok.status_code == 201 and ok.get_json()["created_by"] == tomasz.id
    assert client.post(
        f"{API}/consents", json=grant_body(amina.id, cast.clinic.id, clock, actions), headers=amina.auth
    ).status_code == (201)


def test_a_delegate_cannot_approve_a_request_for_writes(client, vault_, cast, clock):
    amina, tomasz = cast.amina, cast.tomasz
    delegate(client, amina, tomasz, clock)
    asked = client.post(
        f"{API}/access-requests",
        json={
            "subject_id": amina.id,
            "categories": ["health.labs"],
            "purpose": "treatment",
            "actions": ["read", "write"],
            "reason": "Discharge letter",
        },
        headers=cast.clinic.auth,
    ).get_json()
    before = size(vault_)
    assert_problem(client.post(f"{API}/access-requests/{asked['id']}/approve", headers=tomasz.auth), 403)
    assert size(vault_) == before
    assert client.get(f"{API}/access-requests/{asked['id']}", headers=amina.auth).get_json()["status"] == "pending"
    approved = client.post(f"{API}/access-requests/{asked['id']}/approve", headers=amina.auth)
    assert approved.status_code == 200 and approved.get_json()["status"] == "approved"


def test_a_self_given_grant_already_stored_counts_for_nothing(client, vault_, cast, clock):
    """Defence in depth for rows written before the fix: the decision ignores a grant its grantee gave itself,
    and a grant a delegate gave carries reads only."""
    amina, tomasz = cast.amina, cast.tomasz
    record = add_record(client, amina, "health.allergies", {"substance": "penicillin"})
    delegation = delegate(client, amina, tomasz, clock)
    given = grant(client, tomasz, cast.clinic, clock, subject_id=amina.id)
    with vault_.transaction() as session:  # as the old code let them be written
        session.get(Grant, given["id"]).actions = "read write"
        forged = Grant(
            id=new_id("g"),
            subject_id=amina.id,
            grantee_id=tomasz.id,
            categories="health.*",
            purpose="treatment",
            actions="read write",
            valid_from=clock.now,
            expires_at=clock.now.replace(year=clock.now.year + 1),
            max_uses=None,
            uses=0,
            created_by=tomasz.id,
            created_at=clock.now,
        )
        session.add(forged)
    client.post(f"{API}/delegations/{delegation['id']}/revoke", headers=amina.auth)
    assert_problem(client.get(f"{API}/records/{record}?purpose=treatment", headers=tomasz.auth), 403)
    assert_problem(
        client.put(f"{API}/records/{record}", json={"content": {}, "purpose": "treatment"}, headers=tomasz.auth), 403
    )
    wrote = client.put(
        f"{API}/records/{record}", json={"content": {}, "purpose": "treatment"}, headers=cast.clinic.auth
    )
    assert assert_problem(wrote, 403)["reason"] == "wrong-action"
    assert client.get(f"{API}/records/{record}?purpose=treatment", headers=cast.clinic.auth).status_code == 200


# --------------------------------------------------------------------------- 2. generic consent errors


def test_consent_errors_say_the_same_whatever_the_grantee_is(client, vault_, cast, clock, make_actor):
    amina = cast.amina
    erased = make_actor("resident", "Soon Erased")
    assert client.post(f"{API}/subjects/{erased.id}/erasure", json={"confirm": True}, headers=erased.auth).status_code
    candidates = {
        "compliance": cast.compliance.id,
        "admin": cast.admin.id,
        "witness": cast.witness.id,
        "unknown": new_id("p"),
        "erased": erased.id,
        "malformed": "not an id",
    }
    answers = {}
    for name, grantee_id in candidates.items():
        response = client.post(f"{API}/consents", json=grant_body(amina.id, grantee_id, clock), headers=amina.auth)
        answers[name] = assert_problem(response, 400)
        for role in ("compliance", "admin", "witness", "unknown"):
            assert role not in answers[name]["detail"], (name, answers[name])
    assert len({json.dumps(a, sort_keys=True) for a in answers.values()}) == 1, answers
    # And a delegate hears the same about them.
    delegate(client, amina, cast.tomasz, clock)
    as_delegate = client.post(
        f"{API}/consents", json=grant_body(amina.id, cast.compliance.id, clock), headers=cast.tomasz.auth
    )
    assert assert_problem(as_delegate, 400) == answers["unknown"]


# --------------------------------------------------------------------------- 4. erased residents


@pytest.fixture
def erased_world(client, vault_, cast, clock):
    """Amina with records, a grant to the clinic, a delegation to Tomasz and one from him, and a grant from
    Tomasz to her; then she is erased."""
    amina, tomasz = cast.amina, cast.tomasz
    record = add_record(client, amina, "health.labs", {"hb": 13.2}, title="Blood count")
    grant(client, amina, cast.clinic, clock)
    delegate(client, amina, tomasz, clock)
    theirs = delegate(client, tomasz, amina, clock)
    received = grant(client, tomasz, amina, clock)
    erased = client.post(f"{API}/subjects/{amina.id}/erasure", json={"confirm": True}, headers=amina.auth)
    assert erased.status_code == 200, erased.get_json()
    return {"record": record, "theirs": theirs["id"], "received": received["id"], "erasure": erased.get_json()}


def routes(subject: str, clock, cast, record: str) -> list[tuple[str, str, dict | None]]:
    """Every route that names a resident (or their record), with a body that would otherwise be accepted."""
    later = clock.at(days=10)
    return [
        ("GET", f"{API}/subjects/{subject}/records", None),
        ("GET", f"{API}/subjects/{subject}/records?purpose=treatment", None),
        ("POST", f"{API}/subjects/{subject}/records", {"category": "health.labs", "content": {"x": 1}}),
        (
            "POST",
            f"{API}/subjects/{subject}/records",
            {"category": "health.labs", "content": {"x": 1}, "purpose": "treatment"},
        ),
        ("GET", f"{API}/records/{record}?purpose=treatment", None),
        ("GET", f"{API}/records/{record}", None),
        ("PUT", f"{API}/records/{record}", {"content": {"x": 2}, "purpose": "treatment"}),
        ("POST", f"{API}/subjects/{subject}/break-glass", {"reason": "Unconscious"}),
        ("GET", f"{API}/subjects/{subject}/break-glass", None),
        ("GET", f"{API}/subjects/{subject}/access-log", None),
        ("GET", f"{API}/subjects/{subject}/disclosures", None),
        ("GET", f"{API}/subjects/{subject}/export", None),
        ("POST", f"{API}/subjects/{subject}/erasure", {"confirm": True}),
        ("POST", f"{API}/consents", grant_body(subject, cast.clinic.id, clock)),
        ("POST", f"{API}/consents", grant_body(cast.tomasz.id, subject, clock)),
        (
            "POST",
            f"{API}/access-requests",
            {"subject_id": subject, "categories": ["health.*"], "purpose": "treatment", "reason": "x"},
        ),
        ("POST", f"{API}/delegations", {"delegate_id": subject, "expires_at": later}),
        ("GET", f"{API}/consents?subject_id={subject}", None),
        ("GET", f"{API}/access-requests?subject_id={subject}", None),
        ("GET", f"{API}/delegations?subject_id={subject}", None),
    ]


def test_an_erased_resident_never_comes_back_into_the_ledger(client, vault_, cast, clock, erased_world):
    amina = cast.amina
    # The erasure's own events on Tomasz's trail name no one.
    after_erasure = events_since(vault_, 0)
    erasure_index = erased_world["erasure"]["receipt"]["leaf_index"]
    own = [e for e in after_erasure if e.kind in ("delegation.revoked", "consent.revoked") and e.erased_by is None]
    assert {e.kind for e in own} == {"delegation.revoked", "consent.revoked"}
    for event in own:
        assert amina.id not in event.data and amina.id not in bytes(event.body).decode() and event.actor_id != amina.id
        assert event.subject_id == cast.tomasz.id and event.ledger_index < erasure_index

    unknown_subject, unknown_record = new_id("p"), new_id("r")
    start = size(vault_)
    callers = [cast.tomasz, cast.clinic, cast.landlord, cast.compliance, cast.admin, cast.witness]
    for caller in callers:
        erased_routes = routes(amina.id, clock, cast, erased_world["record"])
        unknown_routes = routes(unknown_subject, clock, cast, unknown_record)
        for (method, url, body), (_, unknown_url, unknown_body) in zip(erased_routes, unknown_routes, strict=True):
            kwargs = {"headers": caller.auth} | ({} if body is None else {"json": body})
            grown = size(vault_)
            got = client.open(url, method=method, **kwargs)
            erased_growth = size(vault_) - grown
            unknown_kwargs = {"headers": caller.auth} | ({} if unknown_body is None else {"json": unknown_body})
            grown = size(vault_)
            expected = client.open(unknown_url, method=method, **unknown_kwargs)
            unknown_growth = size(vault_) - grown
            where = (caller.role, method, url)
            assert got.status_code == expected.status_code, (where, got.get_json(), expected.get_json())
            assert got.status_code < 500, where
            if got.status_code >= 400:
                assert got.get_json() == expected.get_json(), where
            else:  # lists: the same nothing
                assert got.get_json()["total"] == expected.get_json()["total"] == 0, where
            assert erased_growth == unknown_growth, where
    # Tomasz's own objects that named her end quietly: revoking again writes nothing.
    assert (
        client.post(f"{API}/delegations/{erased_world['theirs']}/revoke", headers=cast.tomasz.auth).status_code == 200
    )
    assert client.post(f"{API}/consents/{erased_world['received']}/revoke", headers=cast.tomasz.auth).status_code == 200
    new = events_since(vault_, start)
    assert new, "refusals leave events"
    for event in new:
        assert amina.id not in (event.data or "") and amina.id not in bytes(event.body or b"").decode(), event.kind
        assert amina.id not in (event.subject_id, event.actor_id)
    with vault_.read_transaction() as session:
        from vault.verification.verify import verify

        verify(session)


# --------------------------------------------------------------------------- 5. no existence oracle


def test_a_refused_read_leaves_the_same_trace_for_a_foreign_and_an_unknown_id(client, vault_, cast, clock):
    amina = cast.amina
    record = add_record(client, amina, "health.allergies", {"substance": "penicillin"})
    unknown_record, unknown_subject = new_id("r"), new_id("p")
    probes = [
        (cast.clinic, "GET", f"{API}/records/{{r}}?purpose=treatment", None),
        (cast.tomasz, "GET", f"{API}/records/{{r}}", None),
        (cast.landlord, "PUT", f"{API}/records/{{r}}", {"content": {"x": 1}, "purpose": "tenancy-screening"}),
        (cast.compliance, "GET", f"{API}/records/{{r}}?purpose=legal", None),
        (cast.clinic, "GET", f"{API}/subjects/{{s}}/records?purpose=treatment", None),
        (cast.tomasz, "GET", f"{API}/subjects/{{s}}/records", None),
        (
            cast.clinic,
            "POST",
            f"{API}/subjects/{{s}}/records",
            {"category": "health.labs", "content": {}, "purpose": "treatment"},
        ),
    ]
    for caller, method, template, body in probes:
        growth, answers = [], []
        for r, s in ((record, amina.id), (unknown_record, unknown_subject)):
            before = size(vault_)
            kwargs = {"headers": caller.auth} | ({} if body is None else {"json": body})
            answers.append(assert_problem(client.open(template.format(r=r, s=s), method=method, **kwargs), 404))
            growth.append(size(vault_) - before)
        assert answers[0] == answers[1], (caller.role, template)
        assert growth == [1, 1], (caller.role, template, growth)
    # The unknown ids' refusals name no subject and no id; compliance sees them as refusals of nothing.
    refused = [e for e in events_since(vault_, 0) if e.kind == "access.refused"]
    unknown = [e for e in refused if e.subject_id is None]
    assert len(unknown) == len(probes)
    for event in unknown:
        data = json.loads(event.data)
        assert data["reason"] == "not-found" and unknown_record not in event.data and unknown_subject not in event.data
    # A version that does not exist, asked for by someone who may read the record, is a refusal too.
    grant(client, amina, cast.clinic, clock, categories=["health.allergies"])
    before = size(vault_)
    assert_problem(client.get(f"{API}/records/{record}?purpose=treatment&version=9", headers=cast.clinic.auth), 404)
    assert size(vault_) == before + 1


# --------------------------------------------------------------------------- 6. break-glass, seen at once


def test_the_resident_sees_a_declaration_at_once_with_its_code(client, vault_, cast, clock):
    amina = cast.amina
    declared = client.post(
        f"{API}/subjects/{amina.id}/break-glass", json={"reason": "Unconscious on arrival"}, headers=cast.clinic.auth
    )
    assert declared.status_code == 201, declared.get_json()
    log = client.get(f"{API}/subjects/{amina.id}/access-log", headers=amina.auth).get_json()
    first = log["items"][0]
    assert first["outcome"] == "declared" and first["break_glass_id"] == declared.get_json()["id"]
    assert first["actor"]["id"] == cast.clinic.id and first["flagged"] is True
    assert first["reason"] == "other"  # the API sends no code yet: recorded as "other"
    assert "Unconscious" not in json.dumps(log)  # the free text stays sealed, out of the trail


# --------------------------------------------------------------------------- 7. a listing is a disclosure


def disclosures(client, resident) -> list[dict]:
    response = client.get(f"{API}/subjects/{resident.id}/disclosures", headers=resident.auth)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


def test_a_listing_of_titles_is_in_the_disclosures_and_the_access_log(client, vault_, cast, clock):
    amina = cast.amina
    add_record(client, amina, "health.conditions", {"code": "E11"}, title="Type 2 diabetes")
    add_record(client, amina, "health.labs", {"hba1c": 7.1}, title="HbA1c")
    add_record(client, amina, "health.labs", {"hba1c": 6.8}, title="HbA1c again")
    add_record(client, amina, "tenancy.lease", {"rent": 900}, title="Lease")
    granted = grant(client, amina, cast.clinic, clock, categories=["health.*"])
    # The resident's own listing is no disclosure.
    assert client.get(f"{API}/subjects/{amina.id}/records", headers=amina.auth).status_code == 200
    assert disclosures(client, amina) == []

    listed = client.get(f"{API}/subjects/{amina.id}/records?purpose=treatment", headers=cast.clinic.auth)
    assert listed.status_code == 200
    assert sorted(i["title"] for i in listed.get_json()["items"]) == ["HbA1c", "HbA1c again", "Type 2 diabetes"]
    lines = disclosures(client, amina)
    assert [(line["category"], line["basis"], line["record_id"]) for line in lines] == [
        ("health.conditions", "grant", ""),
        ("health.labs", "grant", ""),
    ]
    assert (
        lines[0]["description"]
        == f"Listing of 1 record title in Conditions and problems (health.conditions), under grant {granted['id']}"
    )
    assert "2 record titles" in lines[1]["description"] and granted["id"] in lines[1]["description"]
    assert {line["recipient"]["id"] for line in lines} == {cast.clinic.id}
    assert lines[0]["ledger_index"] == lines[1]["ledger_index"]  # one listing, one ledger entry, two categories
    assert "Type 2 diabetes" not in json.dumps(lines)  # the report says what was disclosed, not the titles again
    csv_text = client.get(f"{API}/subjects/{amina.id}/disclosures?format=csv", headers=amina.auth).get_data(True)
    assert csv_text.count("Listing of") == 2

    log = client.get(f"{API}/subjects/{amina.id}/access-log", headers=amina.auth).get_json()["items"]
    entry = log[0]
    assert (entry["action"], entry["actor"]["id"], entry["basis"], entry["grant_id"]) == (
        "list",
        cast.clinic.id,
        "grant",
        granted["id"],
    )
    # Listing one category discloses that category only; a category with nothing in it discloses nothing.
    client.get(f"{API}/subjects/{amina.id}/records?purpose=treatment&category=health.labs", headers=cast.clinic.auth)
    client.get(f"{API}/subjects/{amina.id}/records?purpose=treatment&category=health.notes", headers=cast.clinic.auth)
    assert [line["category"] for line in disclosures(client, amina)[2:]] == ["health.labs"]


def test_a_listing_counts_no_use_of_a_grant(client, vault_, cast, clock):
    """Decided: max_uses caps reads of contents; listings are disclosed and logged, never counted."""
    amina = cast.amina
    record = add_record(client, amina, "health.allergies", {"substance": "penicillin"}, title="Penicillin allergy")
    granted = grant(client, amina, cast.clinic, clock, categories=["health.allergies"], max_uses=1)
    url = f"{API}/subjects/{amina.id}/records?purpose=treatment"
    for _ in range(3):
        assert client.get(url, headers=cast.clinic.auth).status_code == 200
    assert client.get(f"{API}/consents/{granted['id']}", headers=amina.auth).get_json()["uses"] == 0
    assert client.get(f"{API}/records/{record}?purpose=treatment", headers=cast.clinic.auth).status_code == 200
    # Used up: no more contents, and no more titles either.
    assert assert_problem(client.get(url, headers=cast.clinic.auth), 403)["reason"] == "used-up"
    lines = disclosures(client, amina)
    assert [line["description"].startswith("Listing of 1 record title") for line in lines] == [True] * 3 + [False]
    assert lines[3]["record_id"] == record  # three listings, then the one read


def test_a_delegates_listing_is_disclosed_as_a_delegation(client, vault_, cast, clock):
    amina, tomasz = cast.amina, cast.tomasz
    add_record(client, amina, "tenancy.income", {"annual": 41000}, title="Payslips 2026")
    made = delegate(client, amina, tomasz, clock)
    assert client.get(f"{API}/subjects/{amina.id}/records?purpose=legal", headers=tomasz.auth).status_code == 200
    (line,) = disclosures(client, amina)
    assert (line["category"], line["basis"], line["recipient"]["id"]) == ("tenancy.income", "delegation", tomasz.id)
    assert made["id"]


@pytest.mark.parametrize("bad", ["r-%00", "x" * 300, "r-AAAA%27%3B--", "%E2%80%AE"])
def test_malformed_ids_are_refused_like_unknown_ones(client, vault_, cast, bad):
    unknown = assert_problem(
        client.get(f"{API}/records/{new_id('r')}?purpose=treatment", headers=cast.clinic.auth), 404
    )
    before = size(vault_)
    assert (
        assert_problem(client.get(f"{API}/records/{bad}?purpose=treatment", headers=cast.clinic.auth), 404) == unknown
    )
    assert size(vault_) == before + 1


@pytest.mark.parametrize("code", ["unconscious", "life-threatening", "unable-to-consent"])
def test_a_coded_declaration_is_on_the_residents_log_with_its_code(client, cast, code):
    amina = cast.amina
    declared = client.post(
        f"{API}/subjects/{amina.id}/break-glass", json={"code": code, "reason": "In resus"}, headers=cast.clinic.auth
    )
    assert declared.status_code == 201, declared.get_json()
    first = client.get(f"{API}/subjects/{amina.id}/access-log", headers=amina.auth).get_json()["items"][0]
    assert (first["outcome"], first["reason"], first["break_glass_id"]) == ("declared", code, declared.get_json()["id"])
