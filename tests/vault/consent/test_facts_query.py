"""``vault.consent.access.load_facts``: grants, delegations and break-glass in one round trip, as before.

The facts are compared with the ORM's reading of the three tables (what
``load_facts`` returned when it ran one query per table): every field, of
every kind, with the pair's rows only.
"""

from datetime import timedelta

from sqlalchemy import event, select

from vault.consent import policy
from vault.consent.access import delegation_facts, grant_facts, load_facts
from vault.core.clock import utcnow
from vault.core.ids import new_id
from vault.storage.models import BreakGlass, Delegation, Grant


def reference(session, subject_id: str, actor_id: str):
    grants = session.scalars(select(Grant).where(Grant.subject_id == subject_id, Grant.grantee_id == actor_id))
    delegations = session.scalars(
        select(Delegation).where(Delegation.subject_id == subject_id, Delegation.delegate_id == actor_id)
    )
    declarations = session.scalars(
        select(BreakGlass).where(BreakGlass.subject_id == subject_id, BreakGlass.clinic_id == actor_id)
    )
    return (
        {grant_facts(g) for g in grants},
        {delegation_facts(d) for d in delegations},
        {
            policy.BreakGlassFacts(
                id=b.id,
                subject_id=b.subject_id,
                clinic_id=b.clinic_id,
                declared_at=b.declared_at,
                expires_at=b.expires_at,
            )
            for b in declarations
        },
    )


def test_one_query_returns_what_the_three_did(vault_, make_actor):
    amina, tomasz, clinic, other = (
        make_actor("resident"),
        make_actor("resident"),
        make_actor("clinic"),
        make_actor("clinic"),
    )
    now = utcnow().replace(microsecond=0)
    with vault_.transaction() as session:

        def grant(subject, grantee, **extra):
            values = {
                "categories": "health.labs health.notes",
                "purpose": "treatment",
                "actions": "read",
                "valid_from": now,
                "expires_at": now + timedelta(days=3),
                "max_uses": None,
                "uses": 0,
                "created_by": subject.id,
                "created_at": now,
                "revoked_at": None,
                **extra,
            }
            session.add(Grant(id=new_id("g"), subject_id=subject.id, grantee_id=grantee.id, **values))

        grant(amina, clinic)
        grant(amina, clinic, categories="tenancy.*", actions="list read", max_uses=5, uses=2, created_by=tomasz.id)
        grant(amina, clinic, revoked_at=now + timedelta(hours=1), valid_from=now - timedelta(days=1))
        grant(amina, other)  # another grantee
        grant(tomasz, clinic)  # another subject
        for delegate, revoked in ((clinic, None), (clinic, now), (other, None)):
            session.add(
                Delegation(
                    id=new_id("d"),
                    subject_id=amina.id,
                    delegate_id=delegate.id,
                    valid_from=now,
                    expires_at=now + timedelta(days=7),
                    created_at=now,
                    revoked_at=revoked,
                )
            )
        for clinic_id, minutes in ((clinic.id, 240), (clinic.id, 30), (other.id, 240)):
            session.add(
                BreakGlass(
                    id=new_id("b"),
                    subject_id=amina.id,
                    clinic_id=clinic_id,
                    reason_sealed=b"sealed",
                    declared_at=now - timedelta(minutes=5),
                    expires_at=now + timedelta(minutes=minutes),
                )
            )

    statements: list[str] = []
    event.listen(vault_.engine, "before_cursor_execute", lambda _c, _cur, s, *_a: statements.append(s))
    with vault_.read_transaction() as session:
        statements.clear()
        facts = load_facts(session, subject_id=amina.id, actor_id=clinic.id, actor_role="clinic")
        ran = [s for s in statements if not s.lstrip().upper().startswith("BEGIN")]
        expected = reference(session, amina.id, clinic.id)
    assert len(ran) == 1, ran
    assert (set(facts.grants), set(facts.delegations), set(facts.break_glass)) == expected
    assert (len(facts.grants), len(facts.delegations), len(facts.break_glass)) == (3, 2, 2)
    assert all(g.valid_from.tzinfo is not None and g.expires_at.tzinfo is not None for g in facts.grants)
    assert all(b.declared_at.tzinfo is not None for b in facts.break_glass)
    assert {g.max_uses for g in facts.grants} == {None, 5} and {g.uses for g in facts.grants} == {0, 2}
    assert sum(g.revoked for g in facts.grants) == 1 and sum(d.revoked for d in facts.delegations) == 1


def test_no_facts_is_empty_and_the_resident_on_their_own_needs_no_query(vault_, make_actor):
    amina, clinic = make_actor("resident"), make_actor("clinic")
    statements: list[str] = []
    event.listen(vault_.engine, "before_cursor_execute", lambda _c, _cur, s, *_a: statements.append(s))
    with vault_.read_transaction() as session:
        assert load_facts(session, subject_id=amina.id, actor_id=clinic.id, actor_role="clinic").empty
        statements.clear()
        assert load_facts(session, subject_id=amina.id, actor_id=amina.id, actor_role="resident").empty
    assert statements == []
