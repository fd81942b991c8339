"""Invitations: one-time, expiring links to set one's own password."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from vault.core.config import WebSessionSettings
from vault.core.errors import InvalidInput, NotFound, Unauthenticated
from vault.identity import invitations, principals, sign_in, web_sessions
from vault.rights.erasure import erase
from vault.storage.models import Invitation

from .conftest import NOW

NEW_PASSWORD = "my own chosen passphrase"


def invite(vault_, pid, now=NOW, **kwargs):
    with vault_.transaction() as session:
        return invitations.create(session, vault_.keys, pid, now=now, **kwargs)


def accept(vault_, token, password=NEW_PASSWORD, now=NOW):
    with vault_.transaction() as session:
        return invitations.accept(session, vault_.keys, token, password, now=now)


def signs_in(vault_, login, password, now=NOW):
    with vault_.transaction() as session:
        sign_in.sign_in(session, vault_.keys, login=login, password=password, now=now, policy=WebSessionSettings())


def test_an_invitation_sets_a_password_once(vault_, person):
    pid = person(password=None)
    link = invite(vault_, pid)
    assert link.token.startswith("cvi_") and link.expires_at == NOW + timedelta(hours=72)
    with vault_.transaction() as session:
        assert invitations.peek(session, vault_.keys, link.token, now=NOW) == (pid, "amina@example.org")
        stored = session.scalars(select(Invitation)).one()
        assert stored.token_hash == web_sessions.token_digest(link.token) and stored.used_at is None
    assert accept(vault_, link.token) == pid
    signs_in(vault_, "amina@example.org", NEW_PASSWORD)
    with pytest.raises(NotFound, match="not valid"):
        accept(vault_, link.token, "another long passphrase")
    with vault_.transaction() as session, pytest.raises(NotFound):
        invitations.peek(session, vault_.keys, link.token, now=NOW)


def test_an_invitation_expires(vault_, person):
    pid = person(password=None)
    link = invite(vault_, pid, hours=1)
    with pytest.raises(NotFound):
        accept(vault_, link.token, now=NOW + timedelta(hours=1))
    accept(vault_, link.token, now=NOW + timedelta(minutes=59))


def test_a_refused_password_leaves_the_link_usable(vault_, person):
    pid = person(password=None)
    link = invite(vault_, pid)
    for bad in ("short", "amina@example.org", "x" * 500):
        with pytest.raises(InvalidInput):
            accept(vault_, link.token, bad)
    assert accept(vault_, link.token) == pid


def test_a_new_invitation_ends_the_earlier_one(vault_, person):
    pid = person(password=None)
    old = invite(vault_, pid)
    new = invite(vault_, pid, now=NOW + timedelta(minutes=1))
    with pytest.raises(NotFound):
        accept(vault_, old.token, now=NOW + timedelta(minutes=2))
    accept(vault_, new.token, now=NOW + timedelta(minutes=2))


def test_accepting_signs_out_every_browser(vault_, person):
    pid = person()
    with vault_.transaction() as session:
        token = web_sessions.start(session, pid, second_factor_done=True, now=NOW, policy=WebSessionSettings())
    accept(vault_, invite(vault_, pid).token)
    with vault_.transaction() as session, pytest.raises(Unauthenticated):
        web_sessions.check(session, token, now=NOW, policy=WebSessionSettings())


def test_invitations_need_a_live_principal_with_a_login(vault_, person):
    with vault_.transaction() as session:
        nameless, _ = principals.create_principal(session, vault_.keys, role="clinic", name="C", now=NOW)
    with pytest.raises(InvalidInput, match="no login"):
        invite(vault_, nameless.id)
    with pytest.raises(NotFound):
        invite(vault_, "p-nobody")
    with pytest.raises(InvalidInput):
        invite(vault_, person(password=None), hours=0)


def test_an_erased_residents_invitation_is_dead(vault_, person):
    pid = person(password=None)
    link = invite(vault_, pid)
    erase(vault_, None, pid)
    with pytest.raises(NotFound):
        accept(vault_, link.token)
    with pytest.raises(NotFound):
        invite(vault_, pid)


@pytest.mark.parametrize("token", ["", "cvi_", "cvi_" + "A" * 43, "z" * 100_000, None])
def test_hostile_links_get_one_answer(vault_, token):
    with pytest.raises(NotFound, match="not valid"):
        accept(vault_, token)
