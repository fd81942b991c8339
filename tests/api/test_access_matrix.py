"""The access matrix: every endpoint x every role x {own data, another resident's, unknown id}.

A principal with no grant, delegation or break-glass relating it to a resident
never gets a byte of that resident's records, and an id that belongs to someone
else is answered exactly like an id that does not exist (the contract: "A
foreign or unknown id gets the same 404"). Where the contract gives a role a
legitimate view (compliance sees grants, requests, delegations and break-glass
declarations of anyone; a clinic may break the glass; clinics and landlords may
ask for access), the test asserts that view explicitly instead, and that it
never includes record content.

The world (fixture ``world``): Amina (the owner, resident A) has a health record
and a tenancy record, a grant to the Harbourside clinic (the partner), a pending
access request from the partner, a delegation to Chidi, and a break-glass
declaration by the partner. Tomasz (resident B) has a health record. The callers
of the matrix (another resident, clinic, landlord, agency, compliance, admin, witness)
have no grant, delegation or break-glass relating them to Amina. Distinct
markers are planted in every free text a stranger must never see.

After each hostile attempt every stored row (events aside) is compared with a
snapshot taken before it: nothing is lost, revoked, decided or overwritten.

Layout: ``test_matrix`` is parametrized by endpoint and walks every role in one
fresh world (strangers first, the owner last), reporting every failing cell at
once; this keeps a fresh database per endpoint while staying fast on
PostgreSQL. ``test_list_matrix`` does the same for the list endpoints,
``test_grantee_*`` covers a clinic that holds a grant and reaches beyond it,
and the last two tests check that input validation runs before any lookup, so
a 400 cannot tell an existing id from an unknown one.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from sqlalchemy import func, select

from tests.api.conftest import add_record, grant
from tests.api.helpers import assert_problem
from vault.core.ids import new_id
from vault.storage.models import (
    AccessRequest,
    ApiToken,
    BreakGlass,
    Delegation,
    Grant,
    Principal,
    Record,
    RecordVersion,
    SubjectKey,
)

API = "/api/v1"

MARK_CONTENT = "MARKER-CONTENT-a7f3"
MARK_TITLE = "MARKER-TITLE-a7f3"
MARK_TENANCY_CONTENT = "MARKER-CONTENT-TENANCY-c21e"
MARK_TENANCY_TITLE = "MARKER-TITLE-TENANCY-c21e"
MARK_B_CONTENT = "MARKER-CONTENT-B-5d90"
MARK_B_TITLE = "MARKER-TITLE-B-5d90"
MARK_REQUEST_REASON = "MARKER-REQUEST-REASON-e4b8"
MARK_BREAK_GLASS_REASON = "MARKER-BREAKGLASS-REASON-91c6"
RECORD_MARKERS = (MARK_CONTENT, MARK_TITLE, MARK_TENANCY_CONTENT, MARK_TENANCY_TITLE, MARK_B_CONTENT, MARK_B_TITLE)
ALL_MARKERS = (*RECORD_MARKERS, MARK_REQUEST_REASON, MARK_BREAK_GLASS_REASON)

HEALTH_CONTENT = {"substance": "penicillin", "note": MARK_CONTENT}
TENANCY_CONTENT = {"rent": 940, "note": MARK_TENANCY_CONTENT}
B_CONTENT = {"drug": "metformin", "note": MARK_B_CONTENT}

# The roles of the matrix. "owner" is resident A acting on her own data; every
# other role is a principal with no relationship at all to A.
ROLES = ("owner", "resident", "clinic", "landlord", "agency", "compliance", "admin", "witness")
STRANGERS = ROLES[1:]


# --------------------------------------------------------------------------- world


@dataclass
class World:
    client: object
    vault: object
    clock: object
    owner: object
    actors: dict  # role -> Actor (the strangers and the owner)
    partner: object  # clinic related to A: grantee, requester, break-glass declarer
    delegate: object  # resident, A's delegate
    health_record: str
    tenancy_record: str
    b_record: str
    grant_id: str
    request_id: str
    delegation_id: str
    break_glass_id: str
    foreign: dict = field(default_factory=dict)  # kind -> A's object id
    unknown: dict = field(default_factory=dict)  # kind -> an id of the same shape that exists nowhere

    @property
    def b(self):
        """Resident B, the "another resident" of the matrix, who has a record of his own."""
        return self.actors["resident"]


@pytest.fixture
def world(client, vault_, cast, clock, make_actor) -> World:
    owner, other = cast.amina, cast.tomasz
    partner = make_actor("clinic", "Harbourside Clinic")
    delegate = make_actor("resident", "Chidi Okafor")

    health = add_record(client, owner, "health.allergies", HEALTH_CONTENT, title=MARK_TITLE)
    tenancy = add_record(client, owner, "tenancy.lease", TENANCY_CONTENT, title=MARK_TENANCY_TITLE)
    b_record = add_record(client, other, "health.medications", B_CONTENT, title=MARK_B_TITLE)

    g = grant(client, owner, partner, clock, categories=["health.*"], purpose="treatment")
    asked = client.post(
        f"{API}/access-requests",
        json={
            "subject_id": owner.id,
            "categories": ["health.labs"],
            "purpose": "treatment",
            "reason": MARK_REQUEST_REASON,
        },
        headers=partner.auth,
    )
    assert asked.status_code == 201, asked.get_json()
    delegation = client.post(
        f"{API}/delegations", json={"delegate_id": delegate.id, "expires_at": clock.at(days=90)}, headers=owner.auth
    )
    assert delegation.status_code == 201, delegation.get_json()
    declared = client.post(
        f"{API}/subjects/{owner.id}/break-glass", json={"reason": MARK_BREAK_GLASS_REASON}, headers=partner.auth
    )
    assert declared.status_code == 201, declared.get_json()

    w = World(
        client=client,
        vault=vault_,
        clock=clock,
        owner=owner,
        actors={
            "owner": owner,
            "resident": other,
            "clinic": cast.clinic,
            "landlord": cast.landlord,
            "agency": make_actor("agency", "Northside Payroll Services"),
            "compliance": cast.compliance,
            "admin": cast.admin,
            "witness": cast.witness,
        },
        partner=partner,
        delegate=delegate,
        health_record=health,
        tenancy_record=tenancy,
        b_record=b_record,
        grant_id=g["id"],
        request_id=asked.get_json()["id"],
        delegation_id=delegation.get_json()["id"],
        break_glass_id=declared.get_json()["id"],
    )
    w.foreign = {
        "record": health,
        "subject": owner.id,
        "grant": w.grant_id,
        "request": w.request_id,
        "delegation": w.delegation_id,
    }
    w.unknown = {
        kind: new_id(prefix)
        for kind, prefix in {"record": "r", "subject": "p", "grant": "g", "request": "q", "delegation": "d"}.items()
    }
    # Same shape: same prefix and length as the real ids.
    for kind, real in w.foreign.items():
        assert len(w.unknown[kind]) == len(real) and w.unknown[kind][:2] == real[:2] and w.unknown[kind] != real
    return w


# ----------------------------------------------------------------------- endpoints


@dataclass(frozen=True)
class Endpoint:
    name: str
    kind: str  # which id it takes: record | subject | grant | request | delegation
    build: Callable  # (world, target id) -> (method, url, json body or None)

    def call(self, world: World, actor, target: str):
        method, url, body = self.build(world, target)
        kwargs = {"headers": actor.auth}
        if body is not None:
            kwargs["json"] = body
        return world.client.open(url, method=method, **kwargs)


def _consent_body(w: World, subject: str) -> dict:
    return {
        "subject_id": subject,
        "grantee_id": w.actors["landlord"].id,
        "categories": ["tenancy.*"],
        "purpose": "tenancy-screening",
        "actions": ["read"],
        "expires_at": w.clock.at(days=30),
    }


def _request_body(w: World, subject: str) -> dict:
    return {
        "subject_id": subject,
        "categories": ["health.*"],
        "purpose": "treatment",
        "reason": "Follow-up after discharge",
        "expires_at": w.clock.at(days=14),
    }


ENDPOINTS = [
    Endpoint("GET /records/{id}", "record", lambda w, i: ("GET", f"{API}/records/{i}?purpose=treatment", None)),
    Endpoint(
        "PUT /records/{id}",
        "record",
        lambda w, i: (
            "PUT",
            f"{API}/records/{i}",
            {"content": {"note": "overwritten"}, "title": "overwritten", "purpose": "treatment", "expected_version": 1},
        ),
    ),
    Endpoint(
        "GET /subjects/{id}/records",
        "subject",
        lambda w, i: ("GET", f"{API}/subjects/{i}/records?purpose=treatment", None),
    ),
    Endpoint(
        "POST /subjects/{id}/records",
        "subject",
        lambda w, i: (
            "POST",
            f"{API}/subjects/{i}/records",
            {"category": "health.notes", "content": {"note": "planted"}, "purpose": "treatment"},
        ),
    ),
    Endpoint("GET /consents/{id}", "grant", lambda w, i: ("GET", f"{API}/consents/{i}", None)),
    Endpoint("GET /consents/{id}/fhir", "grant", lambda w, i: ("GET", f"{API}/consents/{i}/fhir", None)),
    Endpoint("POST /consents/{id}/revoke", "grant", lambda w, i: ("POST", f"{API}/consents/{i}/revoke", {})),
    Endpoint("GET /access-requests/{id}", "request", lambda w, i: ("GET", f"{API}/access-requests/{i}", None)),
    Endpoint(
        "POST /access-requests/{id}/approve", "request", lambda w, i: ("POST", f"{API}/access-requests/{i}/approve", {})
    ),
    Endpoint(
        "POST /access-requests/{id}/deny", "request", lambda w, i: ("POST", f"{API}/access-requests/{i}/deny", {})
    ),
    Endpoint("GET /delegations/{id}", "delegation", lambda w, i: ("GET", f"{API}/delegations/{i}", None)),
    Endpoint("POST /delegations/{id}/revoke", "delegation", lambda w, i: ("POST", f"{API}/delegations/{i}/revoke", {})),
    Endpoint(
        "GET /subjects/{id}/break-glass", "subject", lambda w, i: ("GET", f"{API}/subjects/{i}/break-glass", None)
    ),
    Endpoint(
        "POST /subjects/{id}/break-glass",
        "subject",
        lambda w, i: ("POST", f"{API}/subjects/{i}/break-glass", {"reason": "Found unconscious at the bus stop"}),
    ),
    # Endpoints that take the subject in the body.
    Endpoint("POST /consents {subject_id}", "subject", lambda w, i: ("POST", f"{API}/consents", _consent_body(w, i))),
    Endpoint(
        "POST /access-requests {subject_id}",
        "subject",
        lambda w, i: ("POST", f"{API}/access-requests", _request_body(w, i)),
    ),
]
BY_NAME = {e.name: e for e in ENDPOINTS}


# ---------------------------------------------------------------------- assertions


def markers_in(response, markers=ALL_MARKERS) -> list[str]:
    text = response.get_data(as_text=True)
    return [m for m in markers if m in text]


def assert_no_markers(response, markers=ALL_MARKERS, label=""):
    found = markers_in(response, markers)
    assert not found, f"{label}: response leaks {found}: {response.get_data(as_text=True)[:500]}"


def describe(response) -> str:
    return f"{response.status_code} {response.headers.get('Content-Type')} {response.get_data(as_text=True)[:300]}"


def assert_identical_refusal(foreign, unknown, label: str) -> dict:
    """Foreign and unknown answered byte for byte alike, as a problem+json 4xx, leaking nothing."""
    assert (foreign.status_code, foreign.get_data()) == (unknown.status_code, unknown.get_data()), (
        f"{label}: foreign and unknown ids are told apart\n  foreign: {describe(foreign)}\n  unknown: "
        f"{describe(unknown)}"
    )
    assert sorted(foreign.headers.items()) == sorted(unknown.headers.items()), f"{label}: headers differ"
    assert 400 <= foreign.status_code < 500, f"{label}: expected a 4xx, got {describe(foreign)}"
    body = assert_problem(foreign, foreign.status_code)
    assert_no_markers(foreign, label=label)
    return body


def assert_not_found(response, label: str) -> dict:
    body = assert_problem(response, 404)
    assert_no_markers(response, label=label)
    return body


# Everything stored but the event trail, which refusals rightly extend.
STATE_TABLES = (Principal, ApiToken, SubjectKey, Record, RecordVersion, Grant, AccessRequest, Delegation, BreakGlass)


def _state_columns(model):
    # A subject key's use counter counts seals (a legitimate break-glass seals its reason); it is not state.
    return [c for c in model.__table__.columns if not (model is SubjectKey and c.name == "uses")]


def snapshot(w: World) -> dict:
    """Every stored row (events aside), read straight from the database."""
    with w.vault.read_transaction() as session:
        return {
            model.__tablename__: sorted(tuple(row) for row in session.execute(select(*_state_columns(model))).all())
            for model in STATE_TABLES
        }


def assert_unchanged(w: World, before: dict, *, may_grow: tuple[str, ...] = (), label: str = ""):
    """Nothing lost, overwritten, revoked or decided; only ``may_grow`` tables may gain rows."""
    after = snapshot(w)
    for table, old in before.items():
        if table in may_grow:
            assert set(old) <= set(after[table]) and len(after[table]) == len(old) + 1, f"{label}: {table} changed"
        else:
            assert after[table] == old, f"{label}: stored {table} changed"
    # And the promises to the owner, spelled out.
    with w.vault.read_transaction() as session:
        assert session.get(Record, w.health_record).current_version == 1
        assert session.get(Record, w.tenancy_record).current_version == 1
        assert session.scalar(select(func.count()).select_from(Record).where(Record.subject_id == w.owner.id)) == 2
        g = session.get(Grant, w.grant_id)
        assert g.revoked_at is None and g.uses == 0
        q = session.get(AccessRequest, w.request_id)
        assert q.status == "pending" and q.grant_id is None and q.decided_at is None
        assert session.get(Delegation, w.delegation_id).revoked_at is None
        assert session.get(BreakGlass, w.break_glass_id) is not None


# ------------------------------------------------------- legitimate views, by contract


def _compliance_sees_grant(w, r):
    assert r.status_code == 200, describe(r)
    body = r.get_json()
    assert (body["id"], body["subject_id"], body["grantee_id"]) == (w.grant_id, w.owner.id, w.partner.id)
    assert body["status"] == "active" and body["categories"] == ["health.*"]


def _compliance_sees_fhir(w, r):
    assert r.status_code == 200 and r.mimetype == "application/fhir+json", describe(r)
    body = json.loads(r.get_data())
    assert body["resourceType"] == "Consent" and body["id"] == w.grant_id


def _compliance_sees_request(w, r):
    assert r.status_code == 200, describe(r)
    body = r.get_json()
    assert (body["id"], body["subject_id"], body["requester_id"], body["status"]) == (
        w.request_id,
        w.owner.id,
        w.partner.id,
        "pending",
    )
    assert body["reason"] == MARK_REQUEST_REASON  # the request's reason, never a record's content


def _compliance_sees_delegation(w, r):
    assert r.status_code == 200, describe(r)
    body = r.get_json()
    assert (body["id"], body["subject_id"], body["delegate_id"], body["status"]) == (
        w.delegation_id,
        w.owner.id,
        w.delegate.id,
        "active",
    )


def _compliance_sees_break_glass(w, r):
    assert r.status_code == 200, describe(r)
    body = r.get_json()
    assert body["total"] == 1 and body["items"][0]["id"] == w.break_glass_id
    assert body["items"][0]["clinic_id"] == w.partner.id and body["items"][0]["reason"] == MARK_BREAK_GLASS_REASON


def _forbidden(w, r):
    # The role sees the object (compliance) but may not act on it: a documented refusal.
    assert_problem(r, 403)


def _clinic_breaks_the_glass(w, r):
    # Any clinic may declare an emergency (contract); it sees its own declaration only.
    assert r.status_code == 201, describe(r)
    body = r.get_json()
    assert body["subject_id"] == w.owner.id and body["clinic_id"] == w.actors["clinic"].id
    assert (
        body["reason"] == "Found unconscious at the bus stop" and body["uses"] == 0 and body["id"] != w.break_glass_id
    )


def _requester_asks(role):
    def check(w, r):
        # Clinics, landlords and agencies ask residents for access (contract); they see only their own request.
        assert r.status_code == 201, describe(r)
        body = r.get_json()
        assert (
            body["subject_id"] == w.owner.id
            and body["requester_id"] == w.actors[role].id
            and body["status"] == "pending"
        )
        assert body["reason"] == "Follow-up after discharge" and body["id"] != w.request_id

    return check


# (endpoint, role) -> (check of the answer for A's object, what in A's data may grow)
LEGITIMATE = {
    ("GET /consents/{id}", "compliance"): (_compliance_sees_grant, ()),
    ("GET /consents/{id}/fhir", "compliance"): (_compliance_sees_fhir, ()),
    ("POST /consents/{id}/revoke", "compliance"): (_forbidden, ()),
    ("GET /access-requests/{id}", "compliance"): (_compliance_sees_request, ()),
    ("POST /access-requests/{id}/approve", "compliance"): (_forbidden, ()),
    ("POST /access-requests/{id}/deny", "compliance"): (_forbidden, ()),
    ("GET /delegations/{id}", "compliance"): (_compliance_sees_delegation, ()),
    ("POST /delegations/{id}/revoke", "compliance"): (_forbidden, ()),
    ("GET /subjects/{id}/break-glass", "compliance"): (_compliance_sees_break_glass, ()),
    ("POST /subjects/{id}/break-glass", "clinic"): (_clinic_breaks_the_glass, ("break_glass",)),
    ("POST /access-requests {subject_id}", "clinic"): (_requester_asks("clinic"), ("access_requests",)),
    ("POST /access-requests {subject_id}", "landlord"): (_requester_asks("landlord"), ("access_requests",)),
    ("POST /access-requests {subject_id}", "agency"): (_requester_asks("agency"), ("access_requests",)),
}


# ------------------------------------------------------------- own data (the owner)


def _own(status, check=None):
    return status, check


OWN = {
    "GET /records/{id}": _own(
        200, lambda w, b: b["content"] == HEALTH_CONTENT and b["title"] == MARK_TITLE and b["version"] == 1
    ),
    "PUT /records/{id}": _own(200, lambda w, b: b["version"] == 2 and b["title"] == "overwritten"),
    "GET /subjects/{id}/records": _own(
        200, lambda w, b: {i["id"] for i in b["items"]} == {w.health_record, w.tenancy_record}
    ),
    "POST /subjects/{id}/records": _own(
        201, lambda w, b: b["subject_id"] == w.owner.id and b["category"] == "health.notes"
    ),
    "GET /consents/{id}": _own(200, lambda w, b: b["id"] == w.grant_id and b["status"] == "active"),
    "GET /consents/{id}/fhir": _own(200, lambda w, b: b["resourceType"] == "Consent" and b["id"] == w.grant_id),
    "POST /consents/{id}/revoke": _own(200, lambda w, b: b["status"] == "revoked"),
    "GET /access-requests/{id}": _own(
        200, lambda w, b: b["reason"] == MARK_REQUEST_REASON and b["status"] == "pending"
    ),
    "POST /access-requests/{id}/approve": _own(200, lambda w, b: b["status"] == "approved" and b["grant_id"]),
    "POST /access-requests/{id}/deny": _own(200, lambda w, b: b["status"] == "denied" and b["grant_id"] is None),
    "GET /delegations/{id}": _own(200, lambda w, b: b["status"] == "active" and b["delegate_id"] == w.delegate.id),
    "POST /delegations/{id}/revoke": _own(200, lambda w, b: b["status"] == "revoked"),
    "GET /subjects/{id}/break-glass": _own(
        200, lambda w, b: [i["reason"] for i in b["items"]] == [MARK_BREAK_GLASS_REASON]
    ),
    # Documented refusals: only clinics break the glass, only clinics and landlords ask for access.
    "POST /subjects/{id}/break-glass": _own(403),
    "POST /consents {subject_id}": _own(
        201, lambda w, b: b["subject_id"] == w.owner.id and b["grantee_id"] == w.actors["landlord"].id
    ),
    "POST /access-requests {subject_id}": _own(403),
}
assert set(OWN) == set(BY_NAME)


# ----------------------------------------------------------------------- the matrix

# Strangers first; those whose cell legitimately adds a row (a clinic breaking
# the glass, a clinic or landlord asking for access) after the others; the
# owner, whose own cells change her data, last.
ROLE_ORDER = ("resident", "compliance", "admin", "witness", "agency", "landlord", "clinic", "owner")
assert sorted(ROLE_ORDER) == sorted(ROLES)


def run_cells(cells) -> None:
    """Run every ``(label, check)`` cell, then fail once, naming every failing cell."""
    failures = []
    for label, check in cells:
        try:
            check()
        except AssertionError as exc:
            failures.append(f"[{label}] {exc}")
    assert not failures, f"{len(failures)} failing cell(s):\n" + "\n\n".join(failures)


def check_cell(w: World, endpoint: Endpoint, role: str) -> None:
    actor = w.actors[role]
    label = f"{actor.role} ({role}) {endpoint.name}"
    target, unknown_id = w.foreign[endpoint.kind], w.unknown[endpoint.kind]

    if role == "owner":
        status, check = OWN[endpoint.name]
        unknown = endpoint.call(w, actor, unknown_id)
        own = endpoint.call(w, actor, target)
        if status >= 400:
            assert_identical_refusal(own, unknown, label)  # a refusal by role tells nothing about the target
        else:
            assert own.status_code == status, f"{label}: {describe(own)}"
            assert check(w, json.loads(own.get_data())), f"{label}: {describe(own)}"
            assert_not_found(unknown, label)
        return

    before = snapshot(w)
    unknown = endpoint.call(w, actor, unknown_id)
    foreign = endpoint.call(w, actor, target)
    legit = LEGITIMATE.get((endpoint.name, role))
    if legit is None:
        assert_identical_refusal(foreign, unknown, label)
        may_grow = ()
    else:
        check, may_grow = legit
        check(w, foreign)
        assert_not_found(unknown, label)
        assert_no_markers(foreign, RECORD_MARKERS, label)  # never record content or titles
    assert_unchanged(w, before, may_grow=may_grow, label=label)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_matrix(world, endpoint):
    """One endpoint across every role: own data, A's object and an unknown id of the same shape."""
    run_cells(
        (f"{endpoint.name} as {role}", lambda role=role: check_cell(world, endpoint, role)) for role in ROLE_ORDER
    )


# ------------------------------------------------------------------- list endpoints


LISTS = {
    "GET /consents": ("consents", "grant_id"),
    "GET /access-requests": ("access-requests", "request_id"),
    "GET /delegations": ("delegations", "delegation_id"),
}


def check_list_cell(w: World, name: str, role: str) -> None:
    actor = w.actors[role]
    path, attr = LISTS[name]
    object_id = getattr(w, attr)
    label = f"{actor.role} ({role}) {name}"
    url = f"{API}/{path}"

    everything = w.client.get(url, headers=actor.auth)
    of_a = w.client.get(f"{url}?subject_id={w.owner.id}", headers=actor.auth)
    of_unknown = w.client.get(f"{url}?subject_id={w.unknown['subject']}", headers=actor.auth)
    for response in (everything, of_a, of_unknown):
        assert response.status_code == 200 and response.mimetype == "application/json", f"{label}: {describe(response)}"
        assert_no_markers(response, RECORD_MARKERS, label)
    assert of_unknown.get_json() == {"items": [], "total": 0}, f"{label}: {describe(of_unknown)}"

    if role in ("owner", "compliance"):
        # The owner sees her own; compliance may list anyone's.
        for response in (everything, of_a):
            assert object_id in [item["id"] for item in response.get_json()["items"]], f"{label}: {describe(response)}"
        assert all(item["subject_id"] == w.owner.id for item in of_a.get_json()["items"])
        return

    # A stranger: nothing of A's, and filtering on A answers like filtering on nobody.
    items = everything.get_json()["items"]
    assert not [item for item in items if item["subject_id"] == w.owner.id], f"{label}: {describe(everything)}"
    assert object_id not in everything.get_data(as_text=True)
    assert_no_markers(everything, label=label)
    assert (of_a.status_code, of_a.get_data()) == (of_unknown.status_code, of_unknown.get_data()), (
        f"{label}: ?subject_id=A and ?subject_id=unknown differ\n  A:       {describe(of_a)}\n  unknown: "
        f"{describe(of_unknown)}"
    )


@pytest.mark.parametrize("name", list(LISTS))
def test_list_matrix(world, name):
    """Lists hold nothing of A's for a stranger; the owner and compliance see her objects."""
    before = snapshot(world)
    run_cells((f"{name} as {role}", lambda role=role: check_list_cell(world, name, role)) for role in ROLE_ORDER)
    assert_unchanged(world, before, label=name)


# ---------------------------------------------------------------- grantee-side rows


def _grantee_rows():
    """(request for a real object beyond the grant, the same request for an unknown id)."""

    def pair(method, path_of, body=None):
        return lambda w: ((method, path_of(w, False), body), (method, path_of(w, True), body))

    def record(attr, query=""):
        return lambda w, unknown: f"{API}/records/{w.unknown['record'] if unknown else getattr(w, attr)}{query}"

    def subject(who, suffix):
        return lambda w, unknown: f"{API}/subjects/{w.unknown['subject'] if unknown else getattr(w, who).id}/{suffix}"

    def obj(path, kind, attr):
        return lambda w, unknown: f"{API}/{path}/{w.unknown[kind] if unknown else getattr(w, attr)}"

    write = {"content": {"x": 1}, "purpose": "treatment"}
    return {
        "GET A's tenancy record, purpose treatment": pair("GET", record("tenancy_record", "?purpose=treatment")),
        "GET A's tenancy record, purpose tenancy-screening": pair(
            "GET", record("tenancy_record", "?purpose=tenancy-screening")
        ),
        "PUT A's tenancy record": pair("PUT", record("tenancy_record"), write),
        "POST a tenancy record for A": pair(
            "POST", subject("owner", "records"), {**write, "category": "tenancy.lease"}
        ),
        "GET B's record": pair("GET", record("b_record", "?purpose=treatment")),
        "PUT B's record": pair("PUT", record("b_record"), write),
        "GET B's records": pair("GET", subject("b", "records?purpose=treatment")),
        "POST a record for B": pair("POST", subject("b", "records"), {**write, "category": "health.notes"}),
        "GET B's break-glass": pair("GET", subject("b", "break-glass")),
        "GET A's break-glass (declared by another clinic)": pair("GET", subject("owner", "break-glass")),
        "GET another clinic's grant from A": pair("GET", obj("consents", "grant", "grant_id")),
        "GET another clinic's grant from A as FHIR": pair(
            "GET", lambda w, u: obj("consents", "grant", "grant_id")(w, u) + "/fhir"
        ),
        "revoke another clinic's grant from A": pair(
            "POST", lambda w, u: obj("consents", "grant", "grant_id")(w, u) + "/revoke", {}
        ),
        "GET another clinic's request to A": pair("GET", obj("access-requests", "request", "request_id")),
        "approve another clinic's request to A": pair(
            "POST", lambda w, u: obj("access-requests", "request", "request_id")(w, u) + "/approve", {}
        ),
        "GET A's delegation": pair("GET", obj("delegations", "delegation", "delegation_id")),
    }


GRANTEE_ROWS = _grantee_rows()


def _send(w: World, actor, request):
    method, url, body = request
    kwargs = {"headers": actor.auth}
    if body is not None:
        kwargs["json"] = body
    return w.client.open(url, method=method, **kwargs)


def test_grantee_gets_nothing_beyond_its_grant(world, make_actor):
    """A clinic WITH a health.* treatment grant from A: A's tenancy data and B's data are unknown ids to it."""
    w = world
    clinic = make_actor("clinic", "Lakeside Clinic")
    grant(w.client, w.owner, clinic, w.clock, categories=["health.*"], purpose="treatment")
    # The grant works: the health record is readable, so the 404s below are about scope.
    ok = w.client.get(f"{API}/records/{w.health_record}?purpose=treatment", headers=clinic.auth)
    assert ok.status_code == 200 and ok.get_json()["content"] == HEALTH_CONTENT
    before = snapshot(w)

    def cell(row):
        foreign_request, unknown_request = GRANTEE_ROWS[row](w)
        unknown = _send(w, clinic, unknown_request)
        foreign = _send(w, clinic, foreign_request)
        body = assert_identical_refusal(foreign, unknown, f"grantee clinic: {row}")
        assert body["status"] == 404, describe(foreign)

    run_cells((row, lambda row=row: cell(row)) for row in GRANTEE_ROWS)
    assert snapshot(w) == before, "a grantee's attempt beyond its grant changed stored data"


def test_grantee_listing_shows_only_the_granted_categories(world, make_actor):
    w = world
    clinic = make_actor("clinic", "Lakeside Clinic")
    grant(w.client, w.owner, clinic, w.clock, categories=["health.*"], purpose="treatment")
    url = f"{API}/subjects/{w.owner.id}/records?purpose=treatment"
    listing = w.client.get(url, headers=clinic.auth)
    assert listing.status_code == 200
    assert [item["id"] for item in listing.get_json()["items"]] == [w.health_record]
    assert MARK_TENANCY_TITLE not in listing.get_data(as_text=True) and w.tenancy_record not in listing.get_data(
        as_text=True
    )
    # A category A has records in and one she has none in answer alike.
    lease = w.client.get(f"{url}&category=tenancy.lease", headers=clinic.auth)
    income = w.client.get(f"{url}&category=tenancy.income", headers=clinic.auth)
    assert (lease.status_code, lease.get_data()) == (income.status_code, income.get_data())
    assert income.status_code == 200 and income.get_json() == {"items": [], "total": 0}


# ------------------------------------ existence must not leak through validation order


def _compare_strangers(w: World, name: str, build) -> None:
    """Every stranger gets the same answer for A's object and for an unknown id (and changes nothing)."""
    endpoint = BY_NAME[name]
    before = snapshot(w)
    discrepancies = []
    for role in STRANGERS:
        actor = w.actors[role]
        responses = {}
        for label, target in (("foreign", w.foreign[endpoint.kind]), ("unknown", w.unknown[endpoint.kind])):
            responses[label] = _send(w, actor, build(w, target))
            assert_no_markers(responses[label], label=f"{role} {name} {label}")
            assert 400 <= responses[label].status_code < 500, describe(responses[label])
            assert_problem(responses[label], responses[label].status_code)
        f, u = responses["foreign"], responses["unknown"]
        if (f.status_code, f.get_data()) != (u.status_code, u.get_data()):
            discrepancies.append(
                f"{role}: foreign -> {f.status_code} {f.get_json().get('detail')!r}; "
                f"unknown -> {u.status_code} {u.get_json().get('detail')!r}"
            )
    assert_unchanged(w, before, label=name)
    assert not discrepancies, f"{name} tells A's id from an unknown one:\n  " + "\n  ".join(discrepancies)


RECORD_ENDPOINTS = (
    "GET /records/{id}",
    "PUT /records/{id}",
    "GET /subjects/{id}/records",
    "POST /subjects/{id}/records",
)


@pytest.mark.parametrize("name", RECORD_ENDPOINTS)
def test_omitting_the_purpose_does_not_tell_foreign_from_unknown(world, name):
    """The stated-purpose check must not depend on whether the target exists.

    A non-resident that omits ``purpose`` is asked to state one (400); that
    answer must be the same for A's object and for an unknown id, otherwise
    the 400-vs-404 difference is an existence oracle.
    """

    def build(w, target):
        method, url, body = BY_NAME[name].build(w, target)
        url = url.replace("?purpose=treatment", "")
        if body is not None:
            body = {k: v for k, v in body.items() if k != "purpose"}
        return method, url, body

    _compare_strangers(world, name, build)


def _deep(levels: int) -> dict:
    value: dict = {}
    for _ in range(levels):
        value = {"a": value}
    return value


# (endpoint, field, a value the schema lets through but the service refuses)
UNACCEPTABLE = {
    "PUT /records/{id}: title with a control character": ("PUT /records/{id}", "title", "bell\u0007"),
    "POST /subjects/{id}/records: title with a control character": (
        "POST /subjects/{id}/records",
        "title",
        "bell\u0007",
    ),
    "PUT /records/{id}: content nested too deep": ("PUT /records/{id}", "content", _deep(40)),
    "POST /subjects/{id}/records: content nested too deep": ("POST /subjects/{id}/records", "content", _deep(40)),
    "POST /subjects/{id}/break-glass: blank reason": ("POST /subjects/{id}/break-glass", "reason", "   "),
    "POST /access-requests {subject_id}: blank reason": ("POST /access-requests {subject_id}", "reason", "   "),
}


@pytest.mark.parametrize("case", list(UNACCEPTABLE))
def test_an_unacceptable_body_does_not_tell_foreign_from_unknown(world, case):
    """Body checks that the schema lets through must not depend on whether the target exists."""
    name, key, value = UNACCEPTABLE[case]

    def build(w, target):
        method, url, body = BY_NAME[name].build(w, target)
        return method, url, {**body, key: value}

    _compare_strangers(world, name, build)
