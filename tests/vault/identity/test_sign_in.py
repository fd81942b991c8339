"""Signing in: one answer and one argon2 check for every failure, then the second factor."""

from datetime import timedelta

import pyotp
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from vault.core.config import WebSessionSettings
from vault.core.errors import Unauthenticated
from vault.identity import passwords, sign_in, totp, web_sessions
from vault.rights.erasure import erase
from vault.storage.models import Principal, WebSession

from .conftest import NOW, PASSWORD

POLICY = WebSessionSettings()


class CountingHasher(PasswordHasher):
    """The cheap hasher, counting verifications and the parameters of the hashes verified."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.verified: list[str] = []

    def verify(self, hash, password):
        self.verified.append(hash.rsplit("$", 2)[0])
        return super().verify(hash, password)


def attempt(vault_, login, password, now=NOW):
    with vault_.transaction() as session:
        return sign_in.sign_in(session, vault_.keys, login=login, password=password, now=now, policy=POLICY)


def test_a_resident_signs_in_and_gets_a_session(vault_, person):
    pid = person(login="Amina@Example.org")
    result = attempt(vault_, "amina@example.org", PASSWORD)
    assert (result.principal_id, result.role, result.second_factor) == (pid, "resident", sign_in.DONE)
    assert result.token.startswith("cvs_") and len(result.token) == 47
    with vault_.transaction() as session:
        info = web_sessions.check(session, result.token, now=NOW, policy=POLICY)
        row = session.scalars(select(WebSession)).one()
    assert info.principal_id == pid and info.second_factor_done
    assert row.token_hash == web_sessions.token_digest(result.token) and result.token not in row.token_hash


@pytest.mark.parametrize(
    "login, password",
    [
        ("amina@example.org", PASSWORD + "x"),  # wrong password
        ("amina@example.org", ""),
        ("nobody@example.org", PASSWORD),  # unknown login
        ("", PASSWORD),  # malformed login
        ("a" * 10_000, PASSWORD),
        ("ami\x00na", PASSWORD),
        ("amina@example.org", "p" * 1_000_000),  # oversized password
        ("no-password@example.org", PASSWORD),  # a login without a password yet
    ],
)
def test_every_failure_is_one_answer_and_one_argon2_check(vault_, person, login, password):
    person(login="amina@example.org")
    person(role="clinic", login="no-password@example.org", password=None)
    counting = CountingHasher()
    passwords.use_hasher(counting)
    with pytest.raises(Unauthenticated) as refused:
        attempt(vault_, login, password)
    assert refused.value.detail == "The login or password is wrong."
    # Exactly one verification, of a hash with the current parameters, whatever the failure:
    # the unknown login costs what the known one costs.
    assert counting.verified == ["$argon2id$v=19$m=1024,t=1,p=1"]
    with vault_.transaction() as session:
        assert session.scalars(select(WebSession)).all() == []


def test_an_old_hash_is_replaced_at_sign_in(vault_, person):
    pid = person(password=None)
    old = PasswordHasher(time_cost=1, memory_cost=512, parallelism=1).hash(PASSWORD)
    with vault_.transaction() as session:
        session.get(Principal, pid).password_hash = old
    attempt(vault_, "amina@example.org", PASSWORD)
    with vault_.transaction() as session:
        stored = session.get(Principal, pid).password_hash
    assert stored != old and stored.startswith("$argon2id$v=19$m=1024,t=1,p=1$")


def test_an_erased_resident_cannot_sign_in(vault_, person):
    pid = person()
    token = attempt(vault_, "amina@example.org", PASSWORD).token
    erase(vault_, None, pid)
    with pytest.raises(Unauthenticated):
        attempt(vault_, "amina@example.org", PASSWORD)
    with vault_.transaction() as session, pytest.raises(Unauthenticated):
        web_sessions.check(session, token, now=NOW, policy=POLICY)


def test_a_clinic_must_enrol_then_give_a_code_before_it_is_signed_in(vault_, person):
    pid = person(role="clinic", login="riverside")
    first = attempt(vault_, "riverside", PASSWORD)
    assert first.second_factor == sign_in.ENROL
    with vault_.transaction() as session:
        with pytest.raises(Unauthenticated, match="code"):
            web_sessions.check(session, first.token, now=NOW, policy=POLICY)
        info = web_sessions.check(session, first.token, now=NOW, policy=POLICY, require_second_factor=False)
        assert not info.second_factor_done
        enrolment = totp.enrol(session, vault_.keys, pid)
    code = pyotp.TOTP(enrolment.secret).at(NOW)
    with vault_.transaction() as session:
        done = sign_in.give_code(session, vault_.keys, first.token, code, now=NOW, policy=POLICY)
    assert done.accepted and done.token != first.token
    with vault_.transaction() as session:
        assert web_sessions.check(session, done.token, now=NOW, policy=POLICY).second_factor_done
        with pytest.raises(Unauthenticated):  # the cookie from before the second factor is worth nothing
            web_sessions.check(session, first.token, now=NOW, policy=POLICY, require_second_factor=False)
        assert session.get(Principal, pid).totp_enabled_at == NOW
    # The next sign-in asks for a code, and the code just used is refused.
    later = NOW + timedelta(seconds=5)
    second = attempt(vault_, "riverside", PASSWORD, now=later)
    assert second.second_factor == sign_in.CODE
    with vault_.transaction() as session:
        replay = sign_in.give_code(session, vault_.keys, second.token, code, now=later, policy=POLICY)
    assert not replay.accepted and replay.token is None


def test_wrong_codes_end_the_half_signed_in_session(vault_, person):
    pid = person(role="compliance", login="dana")
    with vault_.transaction() as session:
        enrolment = totp.enrol(session, vault_.keys, pid)
        assert totp.confirm_enrolment(session, vault_.keys, pid, pyotp.TOTP(enrolment.secret).at(NOW), now=NOW)
    later = NOW + timedelta(minutes=1)
    token = attempt(vault_, "dana", PASSWORD, now=later).token
    results = []
    for _ in range(sign_in.MAX_CODE_FAILURES):
        with vault_.transaction() as session:
            results.append(sign_in.give_code(session, vault_.keys, token, "000000", now=later, policy=POLICY))
    assert [r.session_ended for r in results] == [False] * (sign_in.MAX_CODE_FAILURES - 1) + [True]
    with vault_.transaction() as session, pytest.raises(Unauthenticated):
        sign_in.give_code(session, vault_.keys, token, pyotp.TOTP(enrolment.secret).at(later), now=later, policy=POLICY)


def test_a_resident_with_totp_gives_a_code_and_one_without_does_not(vault_, person):
    with_totp = person(login="grace")
    person(login="tomasz")
    with vault_.transaction() as session:
        enrolment = totp.enrol(session, vault_.keys, with_totp)
        assert totp.confirm_enrolment(session, vault_.keys, with_totp, pyotp.TOTP(enrolment.secret).at(NOW), now=NOW)
    assert attempt(vault_, "grace", PASSWORD).second_factor == sign_in.CODE
    plain = attempt(vault_, "tomasz", PASSWORD)
    assert plain.second_factor == sign_in.DONE
    with vault_.transaction() as session, pytest.raises(Unauthenticated, match="already"):
        sign_in.give_code(session, vault_.keys, plain.token, "123456", now=NOW, policy=POLICY)
