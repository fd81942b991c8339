"""Break-glass declarations carry a coded reason from a small vocabulary, which the resident sees at once."""

import json

import pytest
from sqlalchemy import select

from tests.api.conftest import T0
from vault.compliance import break_glass_review
from vault.consent import break_glass
from vault.core.caller import Caller
from vault.core.errors import InvalidInput
from vault.core.vocabulary import BREAK_GLASS_CODE_LABELS, BREAK_GLASS_CODES
from vault.identity import principals
from vault.rights import trail
from vault.storage.models import BreakGlass, Event


@pytest.fixture
def cast(vault_):
    with vault_.transaction() as session:
        made = {
            role: principals.create_principal(session, vault_.keys, role=role, name=role, now=T0)[0]
            for role in ("resident", "clinic", "compliance")
        }
    return {role: Caller(info.id, role) for role, info in made.items()}


def declare(vault_, cast, **kwargs):
    with vault_.transaction() as session:
        return break_glass.declare(
            session, vault_.keys, cast["clinic"], subject_id=cast["resident"].id, limits=vault_.limits, now=T0, **kwargs
        )


def test_the_vocabulary_is_small_and_every_code_has_a_label():
    assert BREAK_GLASS_CODES == ("unconscious", "life-threatening", "unable-to-consent", "other")
    assert set(BREAK_GLASS_CODE_LABELS) == set(BREAK_GLASS_CODES)


@pytest.mark.parametrize("code", BREAK_GLASS_CODES)
def test_the_code_is_in_the_event_the_views_and_the_residents_access_log_at_once(vault_, cast, code):
    declared = declare(vault_, cast, code=code, reason="Brought in by ambulance")
    assert declared.code == code and declared.reason == "Brought in by ambulance"
    with vault_.transaction() as session:
        event = session.scalars(select(Event).where(Event.kind == "break-glass.declared")).one()
        assert json.loads(event.data)["code"] == code and "ambulance" not in event.data  # the text stays sealed
        log = trail.access_log(session, vault_.keys, cast["resident"], subject_id=cast["resident"].id, now=T0)
        first = log.items[0]
        assert (first.outcome, first.reason, first.break_glass_id) == ("declared", code, declared.id)
        listed = break_glass.list_declarations(
            session, vault_.keys, cast["resident"], subject_id=cast["resident"].id, now=T0
        )
        assert [d.code for d in listed] == [code]
        queue, _ = break_glass_review.queue(session, vault_.keys, cast["compliance"], now=T0)
        assert [item.code for item in queue] == [code]


@pytest.mark.parametrize("code", ["", "Unconscious", "bored", "other ", "unconscious\n", "life threatening"])
def test_a_code_outside_the_vocabulary_is_refused_before_anything(vault_, cast, code):
    with pytest.raises(InvalidInput, match="emergency code"):
        declare(vault_, cast, code=code, reason="x")
    with vault_.transaction() as session:
        assert session.scalars(select(BreakGlass)).first() is None
        assert session.scalars(select(Event).where(Event.kind == "break-glass.declared")).first() is None


def test_a_declaration_without_a_code_is_recorded_as_other(vault_, cast):
    """Clients that send no code yet (the API's body gains ``code`` separately) are recorded as ``other``."""
    declared = declare(vault_, cast, reason="Found collapsed")
    assert declared.code == "other"
    with vault_.transaction() as session:
        event = session.scalars(select(Event).where(Event.kind == "break-glass.declared")).one()
        assert json.loads(event.data)["code"] == "other"
