"""api/context.py: the one way a view calls a service (``writing()`` / ``reading()``)."""

import pytest
from flask import g

from vault.core.errors import NotFound, Unauthenticated
from vault.identity import principals


def test_writing_commits_when_the_block_ends_with_the_vaults_time(app, vault_, clock):
    from api.context import writing

    with app.test_request_context("/api/v1/me"):
        with writing() as call:
            assert call.vault is vault_ and call.keys is vault_.keys and call.limits is vault_.limits
            assert call.now == clock.now
            info, _ = principals.create_principal(call.session, call.keys, role="clinic", name="Eastside", now=call.now)
    with vault_.read_transaction() as session:
        stored = principals.get_principal(session, vault_.keys, info.id)
    assert stored.name == "Eastside" and stored.created_at == clock.now


def test_writing_rolls_back_on_any_error(app, vault_):
    from api.context import writing

    with app.test_request_context("/api/v1/me"):
        with pytest.raises(RuntimeError):
            with writing() as call:
                info, _ = principals.create_principal(call.session, call.keys, role="clinic", name="Gone", now=call.now)
                raise RuntimeError("the view failed after the service ran")
    with vault_.read_transaction() as session, pytest.raises(NotFound):
        principals.get_principal(session, vault_.keys, info.id)


def test_reading_sees_what_was_committed(app, vault_, make_actor):
    from api.context import reading

    actor = make_actor("landlord", "Harbour Housing")
    with app.test_request_context("/api/v1/me"), reading() as call:
        assert principals.get_principal(call.session, call.keys, actor.id).name == "Harbour Housing"


def test_the_caller_is_the_authenticated_one_and_never_nobody(app, make_actor):
    from api.context import reading

    actor = make_actor("resident")
    with app.test_request_context("/api/v1/me"), reading() as call:
        with pytest.raises(Unauthenticated):
            call.caller  # noqa: B018 - the property raises for a request nobody authenticated
        g.caller = actor.caller
        assert call.caller == actor.caller


def test_a_view_sees_the_caller_of_its_own_token(client, make_actor):
    amina, tomasz = make_actor("resident", "Amina Yusuf"), make_actor("resident", "Tomasz Nowak")
    assert client.get("/api/v1/me", headers=amina.auth).get_json()["id"] == amina.id
    assert client.get("/api/v1/me", headers=tomasz.auth).get_json()["id"] == tomasz.id
