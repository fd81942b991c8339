"""Web sessions: idle timeout, absolute limit, sign-out (everywhere), CSRF tokens."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from vault.core.config import WebSessionSettings
from vault.core.errors import Forbidden, Unauthenticated
from vault.identity import sign_in, web_sessions
from vault.storage.models import WebSession

from .conftest import NOW, PASSWORD

POLICY = WebSessionSettings(idle_minutes=15, max_hours=12)


class Clock:
    """A clock the test moves by hand, put in place of the vault's."""

    def __init__(self, start):
        self.now = start

    def __call__(self):
        return self.now

    def advance(self, **delta):
        self.now += timedelta(**delta)


@pytest.fixture
def clock(vault_):
    frozen = Clock(NOW)
    vault_.clock = frozen
    return frozen


def open_session(vault_, login="amina@example.org"):
    with vault_.transaction() as session:
        return sign_in.sign_in(
            session, vault_.keys, login=login, password=PASSWORD, now=vault_.now(), policy=POLICY
        ).token


def check(vault_, token, policy=POLICY):
    with vault_.transaction() as session:
        return web_sessions.check(session, token, now=vault_.now(), policy=policy)


def test_a_session_ends_after_the_idle_timeout(vault_, person, clock):
    person()
    token = open_session(vault_)
    clock.advance(minutes=14, seconds=59)
    check(vault_, token)  # used: the idle clock starts again
    clock.advance(minutes=14, seconds=59)
    check(vault_, token)
    clock.advance(minutes=15)
    with pytest.raises(Unauthenticated, match="ended"):
        check(vault_, token)
    clock.advance(minutes=1)  # a refused check does not move the idle clock
    with pytest.raises(Unauthenticated):
        check(vault_, token)


def test_the_idle_clock_moves_at_most_every_30_seconds(vault_, person, clock):
    person()
    token = open_session(vault_)
    clock.advance(seconds=10)
    check(vault_, token)
    with vault_.transaction() as session:
        assert session.scalars(select(WebSession.last_seen_at)).one() == NOW  # not written for 10 s
    clock.advance(seconds=20)
    check(vault_, token)
    with vault_.transaction() as session:
        assert session.scalars(select(WebSession.last_seen_at)).one() == NOW + timedelta(seconds=30)


def test_a_busy_session_still_ends_at_the_absolute_limit(vault_, person, clock):
    person()
    token = open_session(vault_)
    for _ in range(12 * 6 - 1):
        clock.advance(minutes=10)
        check(vault_, token)
    assert clock.now == NOW + timedelta(hours=11, minutes=50)
    clock.advance(minutes=10)
    with pytest.raises(Unauthenticated):
        check(vault_, token)


def test_the_settings_apply(vault_, person, clock):
    person()
    token = open_session(vault_)
    clock.advance(minutes=5)
    with pytest.raises(Unauthenticated):
        check(vault_, token, policy=WebSessionSettings(idle_minutes=5, max_hours=1))
    check(vault_, token)


def test_sign_out_ends_one_session_and_sign_out_everywhere_all_of_one_principal(vault_, person, clock):
    amina = person()
    person(login="grace@example.org")
    laptop, phone, tablet = (open_session(vault_) for _ in range(3))
    grace = open_session(vault_, "grace@example.org")
    with vault_.transaction() as session:
        assert web_sessions.sign_out(session, laptop, now=vault_.now())
        assert not web_sessions.sign_out(session, laptop, now=vault_.now())  # twice is harmless
        assert not web_sessions.sign_out(session, "cvs_unknown", now=vault_.now())
        assert not web_sessions.sign_out(session, "x" * 10_000, now=vault_.now())
    with pytest.raises(Unauthenticated):
        check(vault_, laptop)
    check(vault_, phone)
    with vault_.transaction() as session:
        assert web_sessions.sign_out_everywhere(session, amina, now=vault_.now()) == 2
    for token in (phone, tablet):
        with pytest.raises(Unauthenticated):
            check(vault_, token)
    assert check(vault_, grace).principal_id != amina


def test_a_new_password_signs_out_everywhere(vault_, person, clock):
    from vault.identity import passwords

    amina = person()
    token = open_session(vault_)
    with vault_.transaction() as session:
        passwords.set_password(session, vault_.keys, amina, "a new and longer password", now=vault_.now())
    with pytest.raises(Unauthenticated):
        check(vault_, token)


@pytest.mark.parametrize("token", ["", "cvs_", "cvs_" + "A" * 43, "x" * 100_000, None, 42])
def test_hostile_cookies_are_refused(vault_, token):
    with pytest.raises(Unauthenticated):
        check(vault_, token)


def test_csrf_tokens_belong_to_their_session(vault_, person, clock):
    person()
    person(login="grace@example.org")
    mine = check(vault_, open_session(vault_))
    again = check(vault_, open_session(vault_))
    theirs = check(vault_, open_session(vault_, "grace@example.org"))
    token = web_sessions.csrf_token(mine)
    assert token == web_sessions.csrf_token(mine) and len(token) == 43
    web_sessions.check_csrf(mine, token)
    for wrong in (
        web_sessions.csrf_token(again),
        web_sessions.csrf_token(theirs),
        "",
        None,
        token[:-1],
        token + "A",
        "\udc80" * 43,
        "é" * 43,
    ):
        with pytest.raises(Forbidden):
            web_sessions.check_csrf(mine, wrong)
    assert mine.csrf_secret.hex() not in repr(mine)
