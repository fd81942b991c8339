"""A Hypothesis state machine: the consent services against a plain reference model.

Random sequences of grant / regrant / revoke / request / approve / deny /
delegate / revoke delegation / break-glass / read / write / create / list /
advance the clock (by 1 µs .. 12 days, or exactly onto, or 1 µs / 1 ms either
side of, an expiry or start instant) run against the real services, each call
in its own ``Vault.transaction()`` as the API runs them, with the simulated
clock passed as ``now``. Every example starts from a fresh database (the rows
the migrations seed, nothing else) with a fixed cast: residents A and B,
clinic C, landlord L, compliance officer O, and four records per resident.

The model is written from the documented semantics (module docstrings of
``vault.policy``, ``vault.access``, ``vault.consent``, ``vault.delegations``,
``vault.break_glass``, ``vault.access_requests``) with plain dataclasses and
dicts; it never calls ``vault.policy`` (only reason codes and the category
vocabulary are imported). Each call's outcome is predicted exactly: success
(and the content read, the version written, the ids listed in order), or
``NotFound``, ``InvalidInput``, ``Forbidden``, ``Conflict``, or
``ConsentDenied`` with its reason code; so are the domain events each call
leaves (which also name the true reason behind a 404, and the grant whose use
was counted). After every step each grant's status, uses and fields
(``get_grant``), each request and each delegation are compared with the model;
after the clock moves, uses are counted or a grant is revoked, so are the
``list_grants(status=...)`` filters.

Example counts are kept small so that the file runs in well under a minute
per backend; the Hypothesis example database is off.
"""

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select

from vault.consent import access_requests, break_glass, consent, delegations
from vault.consent.policy import (
    EXPIRED,
    NO_GRANT,
    NOT_FOUND,
    NOT_YET_VALID,
    REVOKED,
    USED_UP,
    WRONG_ACTION,
    WRONG_CATEGORY,
    WRONG_PURPOSE,
)
from vault.core.caller import Caller
from vault.core.errors import ConsentDenied, VaultError
from vault.core.vocabulary import CATEGORIES
from vault.identity import principals
from vault.records import records
from vault.storage.models import AccessRequest, Base, Delegation, Event, Grant

POSTGRES_EXAMPLES = 30
SETTINGS = settings(
    max_examples=60,
    stateful_step_count=50,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
MS, US = timedelta(milliseconds=1), timedelta(microseconds=1)
MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)

# The limits of vault.config.ConsentLimits() (asserted in the test itself).
MAX_GRANT_DAYS, DEFAULT_GRANT_DAYS, MAX_DELEGATION_DAYS, BREAK_GLASS_MINUTES = 365, 30, 365, 240

CAST = {"A": "resident", "B": "resident", "C": "clinic", "L": "landlord", "O": "compliance"}
ACTORS = tuple(CAST)
RESIDENTS = ("A", "B")
RECORD_CATEGORIES = ("health.allergies", "health.labs", "tenancy.income", "tenancy.lease")
PATTERNS = RECORD_CATEGORIES + ("health.*", "tenancy.*", "health.medications")
PURPOSES = ("treatment", "research", "tenancy-screening")
READ_PURPOSES = (None, *PURPOSES, "emergency")
ACTION_SETS = (("read",), ("read", "write"), ("write",))

FAKE_GRANT, FAKE_REQUEST, FAKE_DELEGATION, FAKE_RECORD = (
    "g-nosuchgrant",
    "q-nosuchrequest",
    "d-nosuchdelegation",
    "r-nosuchrecord",
)

CHECK_ORDER = (WRONG_CATEGORY, WRONG_ACTION, WRONG_PURPOSE, REVOKED, NOT_YET_VALID, EXPIRED, USED_UP)
LIST_PRECEDENCE = (USED_UP, EXPIRED, NOT_YET_VALID, REVOKED, WRONG_PURPOSE, WRONG_ACTION, WRONG_CATEGORY, NO_GRANT)
UNDISCLOSED = (NO_GRANT, WRONG_CATEGORY)
NEVER_READ = ("compliance", "admin", "witness")


# --------------------------------------------------------------------------- the reference model


def lifecycle(revoked: bool, valid_from: datetime, expires_at: datetime, now: datetime) -> str:
    """revoked | not-yet-valid | expired | active: valid on [valid_from, expires_at)."""
    if revoked:
        return "revoked"
    if now < valid_from:
        return "not-yet-valid"
    if now >= expires_at:
        return "expired"
    return "active"


def covers(pattern: str, category: str) -> bool:
    if pattern.endswith(".*"):
        return category.split(".")[0] == pattern[:-2]
    return pattern == category


@dataclass
class MGrant:
    id: str
    subject: str
    grantee: str
    patterns: tuple[str, ...]
    purpose: str
    actions: tuple[str, ...]
    valid_from: datetime
    expires_at: datetime
    max_uses: int | None
    created_by: str
    request_id: str | None = None
    created_at: datetime | None = None
    uses: int = 0
    revoked: bool = False

    def status(self, now: datetime) -> str:
        state = lifecycle(self.revoked, self.valid_from, self.expires_at, now)
        if state == "active" and self.max_uses is not None and self.uses >= self.max_uses:
            return "used-up"
        return state


@dataclass
class MDelegation:
    id: str
    subject: str
    delegate: str
    valid_from: datetime
    expires_at: datetime
    created_at: datetime | None = None
    revoked: bool = False

    def status(self, now: datetime) -> str:
        return lifecycle(self.revoked, self.valid_from, self.expires_at, now)


@dataclass
class MRequest:
    id: str
    subject: str
    requester: str
    patterns: tuple[str, ...]
    purpose: str
    actions: tuple[str, ...]
    expires_at: datetime | None
    reason: str
    created_at: datetime | None = None
    status: str = "pending"
    grant_id: str | None = None


@dataclass
class MGlass:
    id: str
    subject: str
    clinic: str
    declared_at: datetime
    expires_at: datetime
    uses: int = 0  # permitted accesses on this declaration


@dataclass
class MRecord:
    id: str
    subject: str
    category: str
    history: list[dict]  # the content of version n is history[n - 1]
    created_at: datetime

    @property
    def content(self) -> dict:
        return self.history[-1]

    @property
    def version(self) -> int:
        return len(self.history)


@dataclass(frozen=True)
class Expect:
    """A predicted outcome: ``ok`` or an error code (``denied:<reason>`` for ConsentDenied)."""

    outcome: str
    basis: str | None = None
    grant_id: str | None = None
    glass_id: str | None = None
    delegation_ids: tuple[str, ...] = ()  # any of these may be the one used (their order is unspecified)
    reason: str | None = None  # the reason an access.refused event carries

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


@dataclass
class Model:
    roles: dict[str, str]
    now: datetime = T0
    grants: dict[str, MGrant] = field(default_factory=dict)
    delegations: dict[str, MDelegation] = field(default_factory=dict)
    requests: dict[str, MRequest] = field(default_factory=dict)
    glass: dict[str, MGlass] = field(default_factory=dict)
    records: dict[str, MRecord] = field(default_factory=dict)

    def is_resident(self, pid: str) -> bool:
        return self.roles.get(pid) == "resident"

    def active_delegate(self, actor: str, subject: str) -> bool:
        return any(
            d.subject == subject and d.delegate == actor and d.status(self.now) == "active"
            for d in self.delegations.values()
        )

    def manages(self, actor: str, subject: str) -> bool:
        """The resident themself, or their active delegate (who must be a resident)."""
        return self.is_resident(actor) and (actor == subject or self.active_delegate(actor, subject))

    def sees_grant(self, actor: str, g: MGrant) -> bool:
        return self.roles[actor] == "compliance" or actor in (g.subject, g.grantee) or self.manages(actor, g.subject)

    def sees_request(self, actor: str, r: MRequest) -> bool:
        return self.roles[actor] == "compliance" or actor in (r.subject, r.requester) or self.manages(actor, r.subject)

    # The decision: one basis permits, or the basis that got furthest names the reason.
    def decide(self, actor: str, subject: str, category: str, purpose: str | None, action: str) -> Expect:
        role = self.roles[actor]
        if role == "resident" and actor == subject:
            return Expect("ok", basis="self")
        if role in NEVER_READ:
            return Expect("refused", reason=NO_GRANT)
        tried: list[tuple[int, str]] = []  # (checks passed, reason), in the order considered

        def first_failure(checks: list[bool]) -> int | None:
            for position, ok in enumerate(checks):
                if not ok:
                    return position
            return None

        mine = [g for g in self.grants.values() if g.subject == subject and g.grantee == actor]
        for g in sorted(mine, key=lambda g: (g.expires_at, g.id)):
            failed = first_failure(
                [
                    any(covers(p, category) for p in g.patterns),
                    action in g.actions,
                    purpose == g.purpose,
                    not g.revoked,
                    g.valid_from <= self.now,
                    self.now < g.expires_at,
                    g.max_uses is None or g.uses < g.max_uses,
                ]
            )
            if failed is None:
                return Expect("ok", basis="grant", grant_id=g.id)
            tried.append((failed, CHECK_ORDER[failed]))
        if role == "resident":
            permitting = []
            for d in self.delegations.values():
                if d.subject == subject and d.delegate == actor:
                    failed = first_failure(
                        [
                            True,
                            action == "read",
                            purpose is not None,
                            not d.revoked,
                            d.valid_from <= self.now,
                            self.now < d.expires_at,
                        ]
                    )
                    if failed is None:
                        permitting.append(d.id)
                    else:
                        tried.append((failed, CHECK_ORDER[failed]))
            if permitting:
                return Expect("ok", basis="delegation", delegation_ids=tuple(permitting))
        if role == "clinic":
            mine_glass = [b for b in self.glass.values() if b.subject == subject and b.clinic == actor]
            for b in sorted(mine_glass, key=lambda b: (b.expires_at, b.id)):
                failed = first_failure(
                    [
                        covers("health.*", category),
                        action == "read",
                        purpose == "emergency",
                        True,
                        b.declared_at <= self.now,
                        self.now < b.expires_at,
                    ]
                )
                if failed is None:
                    return Expect("ok", basis="break-glass", glass_id=b.id)
                tried.append((failed, CHECK_ORDER[failed]))
        if not tried:
            return Expect("refused", reason=NO_GRANT)
        best = tried[0]
        for candidate in tried[1:]:
            if candidate[0] > best[0]:  # ties: the first considered wins
                best = candidate
        return Expect("refused", reason=best[1])

    def refuse(self, reason: str, purpose: str | None) -> Expect:
        """How a refusal reaches the caller."""
        if reason in UNDISCLOSED:
            return Expect("not-found", reason=reason)
        if purpose is None:
            return Expect("invalid-input")  # no decision recorded: a malformed request
        return Expect(f"denied:{reason}", reason=reason)

    def expect_access(self, actor: str, record: MRecord | None, purpose: str | None, action: str) -> Expect:
        """Reading, writing or creating a record: input checks, then the record lookup, then the decision."""
        if purpose is None and self.roles[actor] != "resident":
            return Expect("invalid-input")  # a non-resident must state a purpose: checked before any lookup
        if record is None:
            return Expect("not-found")
        decision = self.decide(actor, record.subject, record.category, purpose, action)
        return decision if decision.ok else self.refuse(decision.reason, purpose)

    def consume(self, expect: Expect) -> None:
        """A permitted access counts one use of its grant (and one use of a declaration, for the resident's view)."""
        if expect.basis == "grant":
            self.grants[expect.grant_id].uses += 1
        if expect.basis == "break-glass":
            self.glass[expect.glass_id].uses += 1

    def expect_listing(self, actor: str, subject: str, purpose: str | None) -> tuple[Expect, list[str]]:
        """(outcome, visible categories in vocabulary order)."""
        if purpose is None and self.roles[actor] != "resident":
            return Expect("invalid-input"), []
        if not self.is_resident(subject):
            return Expect("not-found", reason=NOT_FOUND), []  # refused, and recorded with no subject
        visible, reasons = [], set()
        for category in CATEGORIES:
            decision = self.decide(actor, subject, category, purpose, "read")
            if decision.ok:
                visible.append(category)
            else:
                reasons.add(decision.reason)
        if visible:
            return Expect("ok"), visible
        reason = next(r for r in LIST_PRECEDENCE if r in reasons)
        return self.refuse(reason, purpose), []


# --------------------------------------------------------------------------- the machine


def newest_first(items: dict, ids: set[str]) -> list[str]:
    """Listing order: created_at descending, then id."""
    chosen = sorted((items[i] for i in ids), key=lambda x: x.id)
    return [x.id for x in sorted(chosen, key=lambda x: x.created_at, reverse=True)]


def ms(n: int) -> timedelta:
    return timedelta(milliseconds=n)


def mostly(common, rare):
    """Values of ``common`` four times in five, else ``rare`` (strategies or sequences); shrinks to common."""
    common = common if isinstance(common, st.SearchStrategy) else st.sampled_from(common)
    rare = rare if isinstance(rare, st.SearchStrategy) else st.sampled_from(rare)
    return st.integers(0, 4).flatmap(lambda n: common if n < 4 else rare)


valid_lifetimes = st.integers(60_000, 10 * 86_400_000).map(ms)  # 1 minute .. 10 days
edge_lifetimes = st.sampled_from([timedelta(0), -MS, timedelta(days=365), timedelta(days=365) + MS])  # window edges
lifetimes = mostly(valid_lifetimes, edge_lifetimes)
starts = mostly(st.one_of(st.none(), st.integers(1, 3_600_000).map(ms)), st.integers(-3_600_000, 2 * 3_600_000).map(ms))
max_uses_values = mostly(st.one_of(st.none(), st.integers(1, 3), st.integers(1, 3)), st.just(0))
steps = mostly(
    st.one_of(st.integers(1, 2_000).map(lambda us: timedelta(microseconds=us)), st.integers(1, 6 * 3_600_000).map(ms)),
    st.integers(6 * 3_600_000, 12 * 86_400_000).map(ms),
)  # 1 µs .. 12 days
# Clients send times with any UTC offset; the same instant must mean the same thing.
zones = st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))])
contents = st.fixed_dictionaries({"n": st.integers(0, 10**6), "note": st.text(max_size=8)})
# Aim an access at an existing basis (a grant, delegation or declaration of the subject) or not.
aims = st.one_of(st.none(), st.integers(0, 10_000))
# Who decides on a request: mostly its resident; else the other resident (a delegate or not), the requester, others.
deciders = mostly(("subject",), ("other", "requester", "O", "C", "L"))


# Events are read back in the order they were recorded (their primary key).
EVENT_ORDER = next(iter(Event.__table__.primary_key.columns))


def snapshot(engine) -> list[tuple]:
    """Every row of a freshly initialised database (what the migrations seed), table by table."""
    with engine.begin() as connection:
        return [
            (table, [dict(row._mapping) for row in connection.execute(table.select())])
            for table in Base.metadata.sorted_tables
        ]


def restore(engine, rows: list[tuple]) -> None:
    """Back to the fresh database: delete every row (children first), then put the seeded rows back."""
    with engine.begin() as connection:
        for table, _ in reversed(rows):
            connection.execute(table.delete())
        for table, seeded in rows:
            if seeded:
                connection.execute(table.insert(), seeded)


class ConsentMachine(RuleBasedStateMachine):
    vault = None  # bound by the test, with ``fresh``: the rows of its database when it was new
    fresh: list[tuple] = []

    grants = Bundle("grants")
    requests = Bundle("requests")
    delegations = Bundle("delegations")
    records = Bundle("records")

    def __init__(self) -> None:
        super().__init__()
        restore(self.vault.engine, self.fresh)
        self.ids: dict[str, str] = {}
        with self.vault.transaction() as session:
            for name, role in CAST.items():
                info, _ = principals.create_principal(
                    session, self.vault.keys, role=role, name=f"Cast {name}", now=T0 - HOUR
                )
                self.ids[name] = info.id
        self.names = {pid: name for name, pid in self.ids.items()}
        self.model = Model(roles={self.ids[n]: r for n, r in CAST.items()})
        self.last_event = None  # the key of the newest event seen

    # -- helpers

    @property
    def now(self) -> datetime:
        return self.model.now

    def caller(self, name: str) -> Caller:
        return Caller(id=self.ids[name], role=CAST[name])

    def attempt(self, call):
        """(outcome code, result): ``ok`` or the error's code, ``denied:<reason>`` for ConsentDenied."""
        try:
            with self.vault.transaction() as session:
                return "ok", call(session)
        except ConsentDenied as exc:
            return f"denied:{exc.reason}", None
        except VaultError as exc:
            return exc.code, None

    def new_events(self) -> list[tuple[str, str, str | None, dict]]:
        query = select(Event, EVENT_ORDER).order_by(EVENT_ORDER)
        if self.last_event is not None:
            query = query.where(self.last_event < EVENT_ORDER)
        with self.vault.transaction() as session:
            rows = session.execute(query).all()
            found = [(e.kind, e.actor_id, e.subject_id, json.loads(e.data)) for e, _ in rows]
            if rows:
                self.last_event = rows[-1][1]
        return found

    def check_access_events(self, expect: Expect, actor: str, subject: str, after_permit: tuple[str, ...] = ()) -> None:
        events = self.new_events()
        kinds = [e[0] for e in events]
        if expect.ok:
            assert kinds == ["access.permitted", *after_permit], events
            data = events[0][3]
            assert data["basis"] == expect.basis and data["grant_id"] == expect.grant_id, (expect, data)
            assert data["break_glass_id"] == expect.glass_id and data["flagged"] == (expect.basis == "break-glass"), (
                expect,
                data,
            )
            assert data["delegation_id"] in (expect.delegation_ids or (None,)), (expect, data)
        elif expect.reason is not None:
            assert kinds == ["access.refused"], events
            assert events[0][1:3] == (actor, subject) and events[0][3]["reason"] == expect.reason, (expect, events)
        else:
            assert kinds == [], events

    def check_opened(self, actor_id: str, shown: list[tuple[str, str, str, str]]) -> None:
        """One text.opened event per resident whose sealed text (subject, what, object, author) the actor was shown,
        unless the actor is that resident or the text's author."""
        expected: dict[str, set] = {}
        for subject, what, object_id, author in shown:
            if actor_id not in (subject, author):
                expected.setdefault(subject, set()).add((what, object_id))
        events = self.new_events()
        got = {e[2]: {(o["what"], o["object_id"]) for o in e[3]["opened"]} for e in events}
        assert [e[0] for e in events] == ["text.opened"] * len(expected) and got == expected, (expected, events)
        assert all(e[1] == actor_id for e in events), events

    def check_plain_events(self, expected_kinds: list[str]) -> list:
        events = self.new_events()
        assert [e[0] for e in events] == expected_kinds, events
        return events

    # -- setup

    @initialize(target=records)
    def seed_records(self):
        made = []
        with self.vault.transaction() as session:
            for i, (resident, category) in enumerate((r, c) for r in RESIDENTS for c in RECORD_CATEGORIES):
                when = T0 - 30 * MINUTE + i * timedelta(seconds=1)
                content = {"owner": resident, "category": category, "i": i}
                meta = records.create_record(
                    session,
                    self.vault.keys,
                    self.caller(resident),
                    subject_id=self.ids[resident],
                    category=category,
                    content=content,
                    title=f"{category} of {resident}",
                    now=when,
                )
                self.model.records[meta.id] = MRecord(meta.id, self.ids[resident], category, [content], when)
                made.append(meta.id)
        assert len(self.check_plain_events(["access.permitted", "record.created"] * len(made))) == 2 * len(made)
        return multiple(*made)

    # -- grants

    @rule(
        target=grants,
        subject=st.sampled_from(RESIDENTS),
        acting=mostly(("self", "self", "self", "delegate"), ("C", "O")),
        omit_subject=st.booleans(),
        grantee=mostly(("C", "L", "other"), ("self", "O")),
        patterns=st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=3),
        purpose=st.sampled_from(PURPOSES),
        actions=mostly(ACTION_SETS[:2], ACTION_SETS[2:]),
        lifetime=lifetimes,
        start=starts,
        max_uses=max_uses_values,
        zone=zones,
    )
    def grant(
        self, subject, acting, omit_subject, grantee, patterns, purpose, actions, lifetime, start, max_uses, zone
    ):
        """The resident, someone acting for them (maybe not an active delegate), or a stranger gives consent."""
        m, now = self.model, self.now
        other = {"A": "B", "B": "A"}[subject]
        actor = {"self": subject, "delegate": other}.get(acting, acting)
        grantee = {"self": subject, "other": other}.get(grantee, grantee)
        actor_id = self.ids[actor]
        subject_param = None if omit_subject else self.ids[subject]
        effective = subject_param or actor_id
        grantee_id = self.ids[grantee]
        expires_at = (now + lifetime).astimezone(zone)
        valid_from = None if start is None else (now + start).astimezone(zone)
        starts_at = valid_from or now
        if not (m.is_resident(effective) and m.manages(actor_id, effective)):
            expected = "not-found"
        elif (
            expires_at <= now
            or expires_at <= starts_at
            or expires_at > now + timedelta(days=MAX_GRANT_DAYS)
            or (max_uses is not None and max_uses < 1)
            or grantee_id == effective
        ):
            expected = "invalid-input"
        elif actor_id != effective and (grantee_id == actor_id or "write" in actions):
            # A delegate manages grants for others: never one naming itself, never an action it cannot perform.
            expected = "forbidden"
        elif CAST[grantee] not in ("clinic", "landlord", "resident"):
            expected = "invalid-input"
        else:
            expected = "ok"
        outcome, view = self.attempt(
            lambda s: consent.create_grant(
                s,
                self.caller(actor),
                subject_id=subject_param,
                grantee_id=grantee_id,
                categories=list(patterns),
                purpose=purpose,
                actions=list(actions),
                expires_at=expires_at,
                valid_from=valid_from,
                max_uses=max_uses,
                limits=self.vault.limits,
                now=now,
            )
        )
        assert outcome == expected, (outcome, expected)
        if outcome != "ok":
            self.check_plain_events([])
            return multiple()
        g = MGrant(
            view.id,
            effective,
            grantee_id,
            tuple(sorted(set(patterns))),
            purpose,
            tuple(sorted(set(actions))),
            starts_at,
            expires_at,
            max_uses,
            actor_id,
            created_at=now,
        )
        m.grants[g.id] = g
        self.assert_grant_view(view, g)
        assert view.grantee_role == CAST[grantee]
        events = self.check_plain_events(["consent.granted"])
        assert events[0][3]["acting_as"] == ("self" if actor_id == effective else "delegate")
        return view.id

    def other_resident(self, pid: str) -> str:
        return {"A": "B", "B": "A"}.get(self.names[pid], "A")

    @rule(
        target=grants,
        grant=grants,
        same_expiry=st.booleans(),
        lifetime=valid_lifetimes,
        max_uses=max_uses_values,
        patterns=st.one_of(st.none(), st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=2)),
        then_read=st.booleans(),
    )
    def regrant(self, grant, same_expiry, lifetime, max_uses, patterns, then_read):
        """The resident gives the same grantee consent for the same purpose again (then maybe the grantee reads).

        With the same categories (``patterns`` None) several grants permit the same access: with
        ``same_expiry`` they tie on expires_at and the smaller id is used first, otherwise the
        soonest expiring one is. With other categories, a listing meets grants in different states.
        """
        g = self.model.grants[grant]
        if same_expiry and g.expires_at > self.now:
            lifetime = g.expires_at - self.now
        made = self.grant(
            subject=self.names[g.subject],
            acting="self",
            omit_subject=False,
            grantee=self.names[g.grantee],
            patterns=patterns or list(g.patterns),
            purpose=g.purpose,
            actions=g.actions,
            lifetime=lifetime,
            start=None,
            max_uses=max_uses,
            zone=UTC,
        )
        covered = [
            r.id
            for r in self.model.records.values()
            if r.subject == g.subject and any(covers(p, r.category) for p in g.patterns)
        ]
        if then_read and covered:
            self.read_and_check(self.names[g.grantee], covered[0], g.purpose)
        return made

    @rule(grant=grants, who=st.sampled_from(("subject", "subject", "other", "grantee", "O", "C", "L")))
    def revoke_grant(self, grant, who):
        """The resident, the other resident (a delegate or not), the grantee or a stranger revokes."""
        m = self.model
        g = m.grants[grant]
        actor = {
            "subject": self.names[g.subject],
            "other": self.other_resident(g.subject),
            "grantee": self.names[g.grantee],
        }.get(who, who)
        actor_id = self.ids[actor]
        if m.manages(actor_id, g.subject):
            expected = "ok"
        elif m.sees_grant(actor_id, g):
            expected = "forbidden"
        else:
            expected = "not-found"
        outcome, view = self.attempt(lambda s: consent.revoke_grant(s, self.caller(actor), grant, now=self.now))
        assert outcome == expected, (outcome, expected)
        if outcome != "ok":
            self.check_plain_events([])
            return
        first_time = not g.revoked
        g.revoked = True
        self.assert_grant_view(view, g)
        assert view.status == "revoked" and view.revoked_at is not None
        self.check_plain_events(["consent.revoked"] if first_time else [])
        self.assert_status_filters(("active", "revoked"))

    @rule(grant=grants, actor=st.sampled_from(ACTORS))
    def get_grant(self, grant, actor):
        """Seen by its resident, their active delegates, its grantee and compliance; NotFound for anyone else."""
        g = self.model.grants[grant]
        expected = "ok" if self.model.sees_grant(self.ids[actor], g) else "not-found"
        outcome, view = self.attempt(lambda s: consent.get_grant(s, self.caller(actor), grant, now=self.now))
        assert outcome == expected, (outcome, expected)
        if view is not None:
            self.assert_grant_view(view, g)

    @rule(actor=st.sampled_from(ACTORS), status=st.sampled_from((None, *consent.STATUSES)))
    def list_grants(self, actor, status):
        m, actor_id = self.model, self.ids[actor]
        expected = {
            g.id
            for g in m.grants.values()
            if m.sees_grant(actor_id, g) and (status is None or g.status(self.now) == status)
        }
        outcome, result = self.attempt(
            lambda s: consent.list_grants(s, self.caller(actor), status=status, limit=500, now=self.now)
        )
        assert outcome == "ok"
        views, total = result
        assert [v.id for v in views] == newest_first(m.grants, expected) and total == len(expected), (
            status,
            expected,
            views,
        )
        for v in views:
            self.assert_grant_view(v, m.grants[v.id])

    @rule(actor=st.sampled_from(ACTORS), status=st.sampled_from((None, *access_requests.STATUSES)))
    def list_requests(self, actor, status):
        """Requests to the caller (or those they manage as an active delegate) or by the caller; compliance sees all."""
        m, actor_id = self.model, self.ids[actor]
        expected = {
            r.id
            for r in m.requests.values()
            if (
                CAST[actor] == "compliance"
                or actor_id in (r.subject, r.requester)
                or m.active_delegate(actor_id, r.subject)
            )
            and status in (None, r.status)
        }
        outcome, result = self.attempt(
            lambda s: access_requests.list_requests(
                s,
                self.vault.keys,
                self.caller(actor),
                status=status,
                limit=500,
                now=self.now,
            )
        )
        assert outcome == "ok"
        views, total = result
        assert [v.id for v in views] == newest_first(m.requests, expected) and total == len(expected), (expected, views)
        for v in views:
            self.assert_request_view(v, m.requests[v.id])
        self.check_opened(actor_id, [(v.subject_id, "access-request-reason", v.id, v.requester_id) for v in views])

    @rule(actor=st.sampled_from(ACTORS))
    def list_delegations(self, actor):
        """A resident's delegations, given or received (any status); compliance sees all."""
        m, actor_id = self.model, self.ids[actor]
        expected = {
            d.id for d in m.delegations.values() if CAST[actor] == "compliance" or actor_id in (d.subject, d.delegate)
        }
        outcome, result = self.attempt(
            lambda s: delegations.list_delegations(s, self.caller(actor), limit=500, now=self.now)
        )
        assert outcome == "ok"
        views, total = result
        assert [v.id for v in views] == newest_first(m.delegations, expected) and total == len(expected), (
            expected,
            views,
        )
        for v in views:
            self.assert_delegation_view(v, m.delegations[v.id])

    # -- access requests

    @rule(
        target=requests,
        actor=mostly(("C", "L"), ("A", "O")),
        subject=mostly(RESIDENTS, ("C",)),
        patterns=st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=3),
        purpose=st.sampled_from(PURPOSES),
        actions=st.sampled_from((None, *ACTION_SETS)),
        lifetime=st.one_of(st.none(), lifetimes),
    )
    def request(self, actor, subject, patterns, purpose, actions, lifetime):
        m, now = self.model, self.now
        expires_at = None if lifetime is None else now + lifetime
        if CAST[actor] not in ("clinic", "landlord"):
            expected = "forbidden"
        elif expires_at is not None and (expires_at <= now or expires_at > now + timedelta(days=MAX_GRANT_DAYS)):
            expected = "invalid-input"
        elif CAST[subject] != "resident":
            expected = "not-found"
        else:
            expected = "ok"
        reason = f"Needed by {actor} at {now.isoformat()}"
        outcome, view = self.attempt(
            lambda s: access_requests.create_request(
                s,
                self.vault.keys,
                self.caller(actor),
                subject_id=self.ids[subject],
                categories=list(patterns),
                purpose=purpose,
                reason=reason,
                actions=None if actions is None else list(actions),
                expires_at=expires_at,
                limits=self.vault.limits,
                now=now,
            )
        )
        assert outcome == expected, (outcome, expected)
        if outcome != "ok":
            self.check_plain_events([])
            return multiple()
        r = MRequest(
            view.id,
            self.ids[subject],
            self.ids[actor],
            tuple(sorted(set(patterns))),
            purpose,
            tuple(sorted(set(actions or ("read",)))),
            expires_at,
            reason,
            created_at=now,
        )
        m.requests[r.id] = r
        self.assert_request_view(view, r)
        self.check_plain_events(["access-request.created"])
        return view.id

    def decider(self, r: MRequest, who: str) -> str:
        named = {
            "subject": self.names[r.subject],
            "other": self.other_resident(r.subject),
            "requester": self.names[r.requester],
        }
        return named.get(who, who)

    def expect_decision(self, r: MRequest, actor_id: str) -> str:
        """Unseen: NotFound; seen but not the resident or an active delegate: Forbidden; decided: Conflict."""
        m = self.model
        if not m.sees_request(actor_id, r):
            return "not-found"
        if not m.manages(actor_id, r.subject):
            return "forbidden"
        if r.status != "pending":
            return "conflict"
        return "ok"

    @rule(
        target=grants,
        request=requests,
        who=deciders,
        shorten=mostly(st.one_of(st.none(), st.none(), valid_lifetimes), st.just(timedelta(0))),
        max_uses=max_uses_values,
    )
    def approve(self, request, who, shorten, max_uses):
        """Approve (maybe shortened, maybe capped), by the resident, a delegate or not, the requester or a stranger."""
        m, now = self.model, self.now
        r = m.requests[request]
        actor = self.decider(r, who)
        actor_id = self.ids[actor]
        expected = self.expect_decision(r, actor_id)
        override = None if shorten is None else now + shorten
        if expected == "ok":
            end = override or r.expires_at or now + timedelta(days=DEFAULT_GRANT_DAYS)
            if end <= now or end > now + timedelta(days=MAX_GRANT_DAYS) or (max_uses is not None and max_uses < 1):
                expected = "invalid-input"
            elif actor_id != r.subject and "write" in r.actions:
                expected = "forbidden"  # a delegate cannot pass on an action it cannot perform
        outcome, view = self.attempt(
            lambda s: access_requests.approve_request(
                s,
                self.vault.keys,
                self.caller(actor),
                request,
                expires_at=override,
                max_uses=max_uses,
                limits=self.vault.limits,
                now=now,
            )
        )
        assert outcome == expected, (outcome, expected)
        if outcome != "ok":
            self.check_plain_events([])
            return multiple()
        g = MGrant(
            view.grant_id,
            r.subject,
            r.requester,
            r.patterns,
            r.purpose,
            r.actions,
            now,
            end,
            max_uses,
            actor_id,
            request_id=r.id,
            created_at=now,
        )
        m.grants[g.id] = g
        r.status, r.grant_id = "approved", g.id
        self.assert_request_view(view, r)
        assert view.decided_by == actor_id and view.decided_at == now
        opened = ["text.opened"] if actor_id != r.subject else []  # a delegate was shown the reason
        self.check_plain_events(["consent.granted", "access-request.approved", *opened])
        with self.vault.transaction() as session:
            self.assert_grant_view(consent.get_grant(session, self.caller(actor), g.id, now=now), g)
        return g.id

    @rule(request=requests, who=deciders)
    def deny(self, request, who):
        r = self.model.requests[request]
        actor = self.decider(r, who)
        actor_id = self.ids[actor]
        expected = self.expect_decision(r, actor_id)
        outcome, view = self.attempt(
            lambda s: access_requests.deny_request(s, self.vault.keys, self.caller(actor), request, now=self.now)
        )
        assert outcome == expected, (outcome, expected)
        if outcome != "ok":
            self.check_plain_events([])
            return
        r.status = "denied"
        self.assert_request_view(view, r)
        assert view.decided_by == actor_id and view.grant_id is None
        opened = ["text.opened"] if actor_id != r.subject else []  # a delegate was shown the reason
        self.check_plain_events(["access-request.denied", *opened])

    # -- delegations and break-glass

    @rule(
        target=delegations,
        actor=mostly(RESIDENTS, ("C",)),
        delegate=mostly(("other",), ("self", "L")),
        lifetime=lifetimes,
        start=starts,
        zone=zones,
    )
    def delegate(self, actor, delegate, lifetime, start, zone):
        now = self.now
        delegate = {"self": actor, "other": {"A": "B", "B": "A"}.get(actor, "A")}.get(delegate, delegate)
        expires_at = (now + lifetime).astimezone(zone)
        valid_from = None if start is None else (now + start).astimezone(zone)
        starts_at = valid_from or now
        if CAST[actor] != "resident":
            expected = "forbidden"
        elif (
            expires_at <= now
            or expires_at <= starts_at
            or expires_at > now + timedelta(days=MAX_DELEGATION_DAYS)
            or CAST[delegate] != "resident"
            or delegate == actor
        ):
            expected = "invalid-input"
        else:
            expected = "ok"
        outcome, view = self.attempt(
            lambda s: delegations.create_delegation(
                s,
                self.caller(actor),
                delegate_id=self.ids[delegate],
                expires_at=expires_at,
                valid_from=valid_from,
                limits=self.vault.limits,
                now=now,
            )
        )
        assert outcome == expected, (outcome, expected)
        if outcome != "ok":
            self.check_plain_events([])
            return multiple()
        d = MDelegation(view.id, self.ids[actor], self.ids[delegate], starts_at, expires_at, created_at=now)
        self.model.delegations[d.id] = d
        self.assert_delegation_view(view, d)
        self.check_plain_events(["delegation.granted"])
        return view.id

    @rule(delegation=delegations, who=st.sampled_from(("subject", "subject", "delegate", "O", "C")))
    def revoke_delegation(self, delegation, who):
        """The resident or the delegate ends it; compliance may not; strangers are told nothing."""
        d = self.model.delegations[delegation]
        actor = {"subject": self.names[d.subject], "delegate": self.names[d.delegate]}.get(who, who)
        actor_id = self.ids[actor]
        if not (CAST[actor] == "compliance" or actor_id in (d.subject, d.delegate)):
            expected = "not-found"
        elif actor_id not in (d.subject, d.delegate):
            expected = "forbidden"
        else:
            expected = "ok"
        outcome, view = self.attempt(
            lambda s: delegations.revoke_delegation(s, self.caller(actor), delegation, now=self.now)
        )
        assert outcome == expected, (outcome, expected)
        if outcome != "ok":
            self.check_plain_events([])
            return
        first_time = not d.revoked
        d.revoked = True
        self.assert_delegation_view(view, d)
        self.check_plain_events(["delegation.revoked"] if first_time else [])

    @rule(actor=mostly(("C",), ("L", "A")), subject=mostly(RESIDENTS, ("L",)))
    def declare_break_glass(self, actor, subject):
        now = self.now
        if CAST[actor] != "clinic":
            expected = "forbidden"
        elif CAST[subject] != "resident":
            expected = "not-found"
        else:
            expected = "ok"
        outcome, view = self.attempt(
            lambda s: break_glass.declare(
                s,
                self.vault.keys,
                self.caller(actor),
                subject_id=self.ids[subject],
                reason="Unconscious in the ER",
                limits=self.vault.limits,
                now=now,
            )
        )
        assert outcome == expected, (outcome, expected)
        if outcome != "ok":
            self.check_plain_events([])
            return
        b = MGlass(view.id, self.ids[subject], self.ids[actor], now, now + timedelta(minutes=BREAK_GLASS_MINUTES))
        self.model.glass[b.id] = b
        assert (view.subject_id, view.clinic_id, view.declared_at, view.expires_at) == (
            b.subject,
            b.clinic,
            b.declared_at,
            b.expires_at,
        )
        assert view.active and view.uses == 0 and view.reason == "Unconscious in the ER"
        self.check_plain_events(["break-glass.declared"])

    # -- records

    def aimed(self, aim: int | None, actor: str, purpose: str | None):
        """Aim an access at an existing grant, delegation or declaration, or leave it as drawn.

        Returns None (not aimed) or (subject id, actor, purpose, fits(category), k): the basis's
        holder acts with the basis's purpose, except one time in four when the drawn purpose is
        kept (to meet wrong-purpose and missing purposes); ``k`` picks among fitting targets.
        """
        m = self.model
        bases = [(g.subject, g.grantee, g.purpose, g.patterns) for g in m.grants.values()]
        bases += [
            (d.subject, d.delegate, purpose or "research", ("health.*", "tenancy.*")) for d in m.delegations.values()
        ]
        bases += [(b.subject, b.clinic, "emergency", ("health.*",)) for b in m.glass.values()]
        if aim is None or not bases:
            return None
        subject_id, who, fitting, patterns = bases[aim % len(bases)]
        k = aim // len(bases)
        return (
            subject_id,
            self.names[who],
            purpose if k % 4 == 0 else fitting,
            lambda c: any(covers(p, c) for p in patterns),
            k // 4,
        )

    def aimed_record(
        self, aim: int | None, actor: str, record: str, purpose: str | None
    ) -> tuple[str, str, str | None]:
        target = self.aimed(aim, actor, purpose)
        if target is None:
            return actor, record, purpose
        subject_id, actor, purpose, fits, k = target
        fitting = [r.id for r in self.model.records.values() if r.subject == subject_id and fits(r.category)]
        return actor, fitting[k % len(fitting)] if fitting else record, purpose

    @rule(actor=st.sampled_from(ACTORS), subject=mostly(RESIDENTS, ("L",)))
    def list_declarations(self, actor, subject):
        """Emergency declarations: the resident, their delegates and compliance see all.

        A clinic sees its own; others nothing.
        """
        m, actor_id, subject_id = self.model, self.ids[actor], self.ids[subject]
        about = [b for b in m.glass.values() if b.subject == subject_id]
        if not m.is_resident(subject_id):
            expected, shown = "not-found", []
        elif CAST[actor] == "clinic":
            shown = [b for b in about if b.clinic == actor_id]
            expected = "ok" if shown else "not-found"
        elif CAST[actor] == "compliance" or m.manages(actor_id, subject_id):
            expected, shown = "ok", about
        else:
            expected, shown = "not-found", []
        outcome, views = self.attempt(
            lambda s: break_glass.list_declarations(
                s,
                self.vault.keys,
                self.caller(actor),
                subject_id=subject_id,
                now=self.now,
            )
        )
        assert outcome == expected, (outcome, expected)
        if outcome == "ok":
            order = sorted(sorted(shown, key=lambda b: b.id), key=lambda b: b.declared_at, reverse=True)
            got = [(v.id, v.clinic_id, v.declared_at, v.expires_at, v.active, v.uses) for v in views]
            want = [
                (b.id, b.clinic, b.declared_at, b.expires_at, b.declared_at <= self.now < b.expires_at, b.uses)
                for b in order
            ]
            assert got == want, (got, want)
            self.check_opened(actor_id, [(b.subject, "break-glass-reason", b.id, b.clinic) for b in order])

    @rule(
        actor=st.sampled_from(ACTORS),
        record=records,
        purpose=st.sampled_from(READ_PURPOSES),
        aim=aims,
        version=mostly(("current",), ("first", "previous", "next")),
    )
    def read(self, actor, record, purpose, aim, version):
        """Read the current version, an earlier one, or one that does not exist (yet)."""
        self.read_and_check(*self.aimed_record(aim, actor, record, purpose), version=version)

    @rule(grant=grants, times=st.integers(1, 4), pick=st.integers(0, 100))
    def read_repeatedly_under_a_grant(self, grant, times, pick):
        """The grantee reads a record the grant covers, with its purpose, a few times (use limits, used-up)."""
        g = self.model.grants[grant]
        mine = [r.id for r in self.model.records.values() if r.subject == g.subject]
        covered = [r for r in mine if any(covers(p, self.model.records[r].category) for p in g.patterns)] or mine
        for _ in range(times):
            self.read_and_check(self.names[g.grantee], covered[pick % len(covered)], g.purpose)
        self.assert_status_filters(("active", "used-up"))  # uses changed: the used-up filter must follow

    def read_and_check(self, actor: str, record: str, purpose: str | None, version: str = "current") -> None:
        m = self.model
        rec = m.records.get(record)
        actor_id = self.ids[actor]
        wanted = {"current": None, "first": 1, "previous": max(rec.version - 1, 1), "next": rec.version + 1}[version]
        expect = m.expect_access(actor_id, rec, purpose, "read")
        if expect.ok and wanted is not None and wanted > rec.version:
            # Permitted, but there is no such version: NotFound, and the transaction
            # (the use, the permit's event) is rolled back; the refusal leaves its own event.
            expect = Expect("not-found", reason=NOT_FOUND)
        outcome, content = self.attempt(
            lambda s: records.read_record(
                s,
                self.vault.keys,
                self.caller(actor),
                record,
                purpose=purpose,
                version=wanted,
                now=self.now,
            )
        )
        assert outcome == expect.outcome, (outcome, expect)
        if expect.ok:
            m.consume(expect)
            number = wanted or rec.version
            assert content.content == rec.history[number - 1] and content.version == number and content.id == rec.id
            assert content.category == rec.category and content.subject_id == rec.subject
        self.check_access_events(expect, actor_id, rec.subject)

    @rule(
        actor=st.sampled_from(ACTORS),
        record=records,
        purpose=st.sampled_from(READ_PURPOSES),
        content=contents,
        aim=aims,
        expected=mostly((None, "current"), ("stale", "zero")),
    )
    def write(self, actor, record, purpose, content, aim, expected):
        """Add a version, optionally naming the version expected (current, stale, or an invalid 0)."""
        m = self.model
        actor, record, purpose = self.aimed_record(aim, actor, record, purpose)
        rec = m.records.get(record)
        actor_id = self.ids[actor]
        expected_version = {None: None, "current": rec.version, "stale": rec.version - 1, "zero": 0}[expected]
        if expected_version is not None and expected_version < 1:
            expect = Expect("invalid-input")  # an input check: before the purpose is even looked at
        else:
            expect = m.expect_access(actor_id, rec, purpose, "write")
            if expect.ok and expected_version not in (None, rec.version):
                expect = Expect("conflict")  # after the permit; the rollback takes the use and the event with it
        outcome, meta = self.attempt(
            lambda s: records.add_version(
                s,
                self.vault.keys,
                self.caller(actor),
                record,
                content=content,
                expected_version=expected_version,
                purpose=purpose,
                now=self.now,
            )
        )
        assert outcome == expect.outcome, (outcome, expect)
        if expect.ok:
            m.consume(expect)
            rec.history.append(content)
            assert meta.version == rec.version and meta.id == rec.id
        self.check_access_events(expect, actor_id, rec.subject, after_permit=("record.version-added",))

    @rule(
        target=records,
        actor=st.sampled_from(ACTORS),
        subject=st.sampled_from(RESIDENTS),
        category=st.sampled_from((*RECORD_CATEGORIES, "health.notes")),
        purpose=st.sampled_from(READ_PURPOSES),
        content=contents,
        aim=aims,
    )
    def create_record(self, actor, subject, category, purpose, content, aim):
        m, now = self.model, self.now
        subject_id = self.ids[subject]
        target = self.aimed(aim, actor, purpose)
        if target is not None:
            subject_id, actor, purpose, fits, k = target
            fitting = [c for c in (*RECORD_CATEGORIES, "health.notes") if fits(c)]
            category = fitting[k % len(fitting)] if fitting else category
        actor_id = self.ids[actor]
        new = MRecord("(new)", subject_id, category, [content], now)  # the target of a creation is the subject
        expect = m.expect_access(actor_id, new, purpose, "write")
        outcome, meta = self.attempt(
            lambda s: records.create_record(
                s,
                self.vault.keys,
                self.caller(actor),
                subject_id=subject_id,
                category=category,
                content=content,
                purpose=purpose,
                now=now,
            )
        )
        assert outcome == expect.outcome, (outcome, expect)
        self.check_access_events(expect, actor_id, subject_id, after_permit=("record.created",))
        if not expect.ok:
            return multiple()
        m.consume(expect)
        m.records[meta.id] = MRecord(meta.id, subject_id, category, [content], now)
        assert (meta.subject_id, meta.category, meta.version, meta.created_at) == (subject_id, category, 1, now)
        return meta.id

    @rule(
        actor=st.sampled_from(ACTORS),
        subject=mostly(RESIDENTS, ("C",)),
        purpose=st.sampled_from(READ_PURPOSES),
        category=st.sampled_from((None, None, *RECORD_CATEGORIES)),
        aim=aims,
    )
    def list_records(self, actor, subject, purpose, category, aim):
        subject_id = self.ids[subject]
        target = self.aimed(aim, actor, purpose)
        if target is not None:
            subject_id, actor, purpose, _, _ = target
        self.list_and_check(actor, subject_id, purpose, category)

    @precondition(lambda self: self.model.grants)
    @rule()
    def list_as_every_grantee(self):
        """List as every grantee, for every purpose it holds grants for: grants in several states meet here."""
        triples = sorted({(g.grantee, g.subject, g.purpose) for g in self.model.grants.values()})
        for grantee, subject_id, purpose in triples:
            self.list_and_check(self.names[grantee], subject_id, purpose, None)
        assert triples

    @rule(
        target=grants,
        subject=st.sampled_from(RESIDENTS),
        grantee=st.sampled_from(("C", "L", "other")),
        purpose=st.sampled_from(PURPOSES),
        states=st.lists(
            st.sampled_from(("not-yet-valid", "revoked", "used-up", "expired", "active")), min_size=2, max_size=2
        ),
    )
    def two_families_in_two_states_then_list(self, subject, grantee, purpose, states):
        """The resident gives a grantee health.* and tenancy.* (same purpose) in chosen states, then the grantee lists.

        This is how a listing meets grants in different states; when nothing is visible the
        reason is chosen by precedence (used-up > expired > not-yet-valid > revoked > ...).
        ``expired`` is reached by moving the clock one minute on.
        """
        grantee = {"other": {"A": "B", "B": "A"}[subject]}.get(grantee, grantee)
        made = []
        for family, state in zip(("health.*", "tenancy.*"), states, strict=True):
            made.append(
                self.grant(
                    subject=subject,
                    acting="self",
                    omit_subject=False,
                    grantee=grantee,
                    patterns=[family],
                    purpose=purpose,
                    actions=("read",),
                    lifetime=MINUTE if state == "expired" else 2 * DAY,
                    start=HOUR if state == "not-yet-valid" else None,
                    max_uses=1 if state == "used-up" else None,
                    zone=UTC,
                )
            )
            if state == "revoked":
                self.revoke_grant(made[-1], "subject")
            if state == "used-up":
                record = next(
                    r.id
                    for r in self.model.records.values()
                    if r.subject == self.ids[subject] and covers(family, r.category)
                )
                self.read_and_check(grantee, record, purpose)
        if "expired" in states:
            self.model.now += MINUTE
        self.list_and_check(grantee, self.ids[subject], purpose, None)
        return multiple(*made)

    def list_and_check(self, actor: str, subject_id: str, purpose: str | None, category: str | None) -> None:
        m = self.model
        actor_id = self.ids[actor]
        expect, visible = m.expect_listing(actor_id, subject_id, purpose)
        outcome, metas = self.attempt(
            lambda s: records.list_records(
                s,
                self.vault.keys,
                self.caller(actor),
                subject_id=subject_id,
                category=category,
                purpose=purpose,
                now=self.now,
            )
        )
        assert outcome == expect.outcome, (outcome, expect)
        events = self.new_events()
        if expect.ok:
            mine = [
                r
                for r in m.records.values()
                if r.subject == subject_id and r.category in visible and category in (None, r.category)
            ]
            newest_first = sorted(sorted(mine, key=lambda r: r.id), key=lambda r: r.created_at, reverse=True)
            assert [meta.id for meta in metas] == [r.id for r in newest_first], (visible, metas)
            assert [e[0] for e in events] == ["access.permitted"] and events[0][3]["categories"] == visible, events
            assert events[0][3]["action"] == "list"
            # The listing is a disclosure: per category that had titles listed, how many and on what basis.
            counts = {c: sum(1 for r in mine if r.category == c) for c in visible}
            disclosed = [(d["category"], d["records"], d["basis"], d["grant_id"]) for d in events[0][3]["disclosed"]]
            expected = []
            for c in visible:
                if counts[c]:
                    basis = m.decide(actor_id, subject_id, c, purpose, "read")
                    expected.append((c, counts[c], basis.basis, basis.grant_id))
            assert disclosed == expected, (disclosed, expected)
        elif expect.reason == NOT_FOUND:
            assert [(e[0], e[2], e[3]["reason"]) for e in events] == [("access.refused", None, NOT_FOUND)], events
        elif expect.reason is not None:
            assert [(e[0], e[3]["reason"]) for e in events] == [("access.refused", expect.reason)], (expect, events)
        else:
            assert events == []

    @rule(actor=st.sampled_from(ACTORS), purpose=st.sampled_from(READ_PURPOSES))
    def unknown_ids_are_not_found(self, actor, purpose):
        """Unknown ids get NotFound from every service (after the input checks)."""
        caller, now, keys, limits = self.caller(actor), self.now, self.vault.keys, self.vault.limits
        by_id = "invalid-input" if purpose is None and CAST[actor] != "resident" else "not-found"
        calls = {
            "revoke_grant": (lambda s: consent.revoke_grant(s, caller, FAKE_GRANT, now=now), "not-found"),
            "get_grant": (lambda s: consent.get_grant(s, caller, FAKE_GRANT, now=now), "not-found"),
            "approve": (
                lambda s: access_requests.approve_request(s, keys, caller, FAKE_REQUEST, limits=limits, now=now),
                "not-found",
            ),
            "deny": (lambda s: access_requests.deny_request(s, keys, caller, FAKE_REQUEST, now=now), "not-found"),
            "revoke_delegation": (
                lambda s: delegations.revoke_delegation(s, caller, FAKE_DELEGATION, now=now),
                "not-found",
            ),
            "read": (lambda s: records.read_record(s, keys, caller, FAKE_RECORD, purpose=purpose, now=now), by_id),
            "write": (
                lambda s: records.add_version(s, keys, caller, FAKE_RECORD, content={}, purpose=purpose, now=now),
                by_id,
            ),
        }
        outcomes = {name: self.attempt(call)[0] for name, (call, _) in calls.items()}
        assert outcomes == {name: expected for name, (_, expected) in calls.items()}, outcomes
        # A refused read or write of an unknown record leaves the trace a foreign one leaves (no existence
        # oracle through the ledger's size): one refusal each, naming no subject and not the id.
        refused = ["access.refused", "access.refused"] if by_id == "not-found" else []
        for event in self.check_plain_events(refused):
            assert event[1:3] == (caller.id, None) and event[3]["reason"] == NOT_FOUND, event
            assert FAKE_RECORD not in json.dumps(event[3]), event

    # -- time

    @rule(step=steps)
    def advance(self, step):
        before = self.now
        self.model.now = before + step
        assert self.now > before
        self.assert_status_filters()

    def instants(self) -> list[datetime]:
        m = self.model
        found = {g.expires_at for g in m.grants.values()} | {g.valid_from for g in m.grants.values()}
        found |= {d.expires_at for d in m.delegations.values()} | {d.valid_from for d in m.delegations.values()}
        found |= {b.expires_at for b in m.glass.values()} | {r.expires_at for r in m.requests.values() if r.expires_at}
        return sorted(t for t in found if t > self.now)

    @precondition(lambda self: self.instants())
    @rule(data=st.data(), nudge=st.sampled_from((timedelta(0), timedelta(0), -MS, MS, -US, US)))
    def advance_to_an_instant(self, data, nudge):
        """Land exactly on (or 1 ms / 1 µs either side of) a grant's, delegation's, declaration's or request's edge."""
        target = data.draw(st.sampled_from(self.instants()), label="instant")
        if target + nudge > self.now:
            target += nudge
        self.model.now = target
        expiring = [
            g for g in self.model.grants.values() if g.expires_at == target and not g.revoked and g.valid_from <= target
        ]
        with self.vault.transaction() as session:
            for g in expiring:  # at expires_at itself a grant has expired
                assert consent.get_grant(session, Caller(g.subject, "resident"), g.id, now=target).status == "expired"
        self.assert_status_filters()

    # -- comparisons

    def assert_grant_view(self, view, g: MGrant) -> None:
        assert (view.id, view.subject_id, view.grantee_id) == (g.id, g.subject, g.grantee)
        assert (view.categories, view.purpose, view.actions) == (g.patterns, g.purpose, g.actions), (view, g)
        assert (view.valid_from, view.expires_at, view.max_uses) == (g.valid_from, g.expires_at, g.max_uses), (view, g)
        assert (view.created_by, view.request_id) == (g.created_by, g.request_id)
        assert view.uses == g.uses, (view.id, view.uses, g.uses)
        assert view.status == g.status(self.now), (view.id, view.status, g.status(self.now), self.now, g)
        assert (view.revoked_at is not None) == g.revoked

    def assert_request_view(self, view, r: MRequest) -> None:
        assert (view.id, view.subject_id, view.requester_id) == (r.id, r.subject, r.requester)
        assert (view.categories, view.purpose, view.actions, view.expires_at) == (
            r.patterns,
            r.purpose,
            r.actions,
            r.expires_at,
        )
        assert (view.status, view.grant_id, view.reason) == (r.status, r.grant_id, r.reason)

    def assert_delegation_view(self, view, d: MDelegation) -> None:
        assert (view.id, view.subject_id, view.delegate_id) == (d.id, d.subject, d.delegate)
        assert (view.valid_from, view.expires_at) == (d.valid_from, d.expires_at)
        assert view.status == d.status(self.now) and (view.revoked_at is not None) == d.revoked

    def assert_status_filters(self, statuses: tuple[str, ...] = consent.STATUSES) -> None:
        """``list_grants(status=...)`` (SQL) selects exactly the grants in that status (model) as of now."""
        m, now = self.model, self.now
        with self.vault.transaction() as session:
            for status in statuses:
                views, total = consent.list_grants(session, self.caller("O"), status=status, limit=500, now=now)
                expected = {g.id for g in m.grants.values() if g.status(now) == status}
                assert {v.id for v in views} == expected and total == len(expected), (status, now)
                assert all(v.status == status for v in views)

    def assert_storage_matches(self) -> None:
        m, now = self.model, self.now
        with self.vault.transaction() as session:
            # One query per table puts the rows in the session, so the get_* calls below find them there.
            for model in (Grant, AccessRequest, Delegation):
                session.scalars(select(model)).all()
            for g in m.grants.values():
                self.assert_grant_view(consent.get_grant(session, Caller(g.subject, "resident"), g.id, now=now), g)
            for r in m.requests.values():
                view = access_requests.get_request(
                    session, self.vault.keys, Caller(r.subject, "resident"), r.id, now=now
                )
                self.assert_request_view(view, r)
            for d in m.delegations.values():
                self.assert_delegation_view(
                    delegations.get_delegation(session, Caller(d.subject, "resident"), d.id, now=now), d
                )

    @invariant()
    def storage_matches_the_model(self):
        self.assert_storage_matches()


def test_consent_services_agree_with_the_reference_model(vault_):
    limits = vault_.limits
    assert (
        limits.max_grant_days,
        limits.default_grant_days,
        limits.max_delegation_days,
        limits.break_glass_minutes,
    ) == (
        MAX_GRANT_DAYS,
        DEFAULT_GRANT_DAYS,
        MAX_DELEGATION_DAYS,
        BREAK_GLASS_MINUTES,
    )
    machine = type("ConsentMachineOnThisVault", (ConsentMachine,), {"vault": vault_, "fresh": snapshot(vault_.engine)})
    # PostgreSQL round trips cost more: fewer examples there keep it under a minute (the model is the same).
    examples = POSTGRES_EXAMPLES if vault_.engine.dialect.name == "postgresql" else SETTINGS.max_examples
    run_state_machine_as_test(machine, settings=settings(SETTINGS, max_examples=examples))
