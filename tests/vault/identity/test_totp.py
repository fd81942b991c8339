"""TOTP: enrolment (secret, URI, QR code), a ±1 step window, and no code accepted twice."""

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from sqlalchemy import select

from vault.core.errors import Conflict, InvalidInput, NotFound
from vault.identity import totp
from vault.storage.models import Principal

from .conftest import NOW


def code_at(secret: str, moment) -> str:
    return pyotp.TOTP(secret).at(moment)


@pytest.fixture
def enrolled(vault_, person):
    """A clinic with TOTP enabled (confirmed with the code of the step before NOW); (id, secret)."""
    pid = person(role="clinic", login="riverside")
    with vault_.transaction() as session:
        enrolment = totp.enrol(session, vault_.keys, pid)
        assert totp.confirm_enrolment(
            session, vault_.keys, pid, code_at(enrolment.secret, NOW - timedelta(seconds=30)), now=NOW
        )
    return pid, enrolment.secret


def test_enrolment_gives_the_secret_its_uri_and_a_qr_code(vault_, person):
    pid = person(role="clinic", login="Riverside@Example.org")
    with vault_.transaction() as session:
        enrolment = totp.enrol(session, vault_.keys, pid)
        row = session.get(Principal, pid)
        assert row.totp_enabled_at is None and totp.is_pending(row)
        assert enrolment.secret.encode() not in bytes(row.totp_secret_sealed)
    assert len(enrolment.secret) == 32 and pyotp.TOTP(enrolment.secret).byte_secret()  # 160 bits, base32
    uri = urlsplit(enrolment.uri)
    assert uri.scheme == "otpauth" and uri.netloc == "totp"
    assert uri.path == "/CivicVault:Riverside%40Example.org"
    assert parse_qs(uri.query) == {"secret": [enrolment.secret], "issuer": ["CivicVault"]}
    assert enrolment.qr_svg.startswith("<svg") and enrolment.qr_svg.rstrip().endswith("</svg>")
    assert "<script" not in enrolment.qr_svg and enrolment.secret not in enrolment.qr_svg
    assert enrolment.secret not in repr(enrolment)


def test_an_enrolment_is_enabled_only_by_a_code_of_its_secret(vault_, person):
    pid = person(role="landlord", login="harbour")
    with vault_.transaction() as session:
        enrolment = totp.enrol(session, vault_.keys, pid)
        assert not totp.confirm_enrolment(session, vault_.keys, pid, "000000", now=NOW)
        assert not totp.verify(session, vault_.keys, pid, code_at(enrolment.secret, NOW), now=NOW)  # not enabled
        assert totp.confirm_enrolment(session, vault_.keys, pid, code_at(enrolment.secret, NOW), now=NOW)
        assert session.get(Principal, pid).totp_enabled_at == NOW
        with pytest.raises(InvalidInput):
            totp.confirm_enrolment(session, vault_.keys, pid, code_at(enrolment.secret, NOW), now=NOW)


def test_codes_verify_within_one_step_either_side(vault_, enrolled):
    pid, secret = enrolled
    with vault_.transaction() as session:
        at = NOW + timedelta(minutes=5)
        assert not totp.verify(session, vault_.keys, pid, code_at(secret, at - timedelta(seconds=60)), now=at)
        assert not totp.verify(session, vault_.keys, pid, code_at(secret, at + timedelta(seconds=60)), now=at)
        assert totp.verify(session, vault_.keys, pid, code_at(secret, at - timedelta(seconds=30)), now=at)
        later = at + timedelta(minutes=1)
        assert totp.verify(session, vault_.keys, pid, code_at(secret, later + timedelta(seconds=30)), now=later)


def test_a_code_is_accepted_once_and_older_steps_never_after_a_newer_one(vault_, enrolled):
    pid, secret = enrolled
    at = NOW + timedelta(minutes=10)
    code = code_at(secret, at)
    with vault_.transaction() as session:
        assert totp.verify(session, vault_.keys, pid, code, now=at)
    with vault_.transaction() as session:
        assert not totp.verify(session, vault_.keys, pid, code, now=at)  # replayed
        assert not totp.verify(session, vault_.keys, pid, code, now=at + timedelta(seconds=20))  # same step, later
        # The previous step's code is still within the window, but older than the one used.
        assert not totp.verify(session, vault_.keys, pid, code_at(secret, at - timedelta(seconds=30)), now=at)
        step = session.scalar(select(Principal.totp_last_step).where(Principal.id == pid))
    assert step == int(at.timestamp()) // 30


@pytest.mark.parametrize("code", ["", "12345", "1234567", "12345a", "١٢٣٤٥٦", "9" * 10_000, "123\x00456"])
def test_malformed_codes_fail_quietly(vault_, enrolled, code):
    pid, _ = enrolled
    with vault_.transaction() as session:
        assert totp.verify(session, vault_.keys, pid, code, now=NOW) is False


def test_codes_may_be_typed_with_a_space(vault_, enrolled):
    pid, secret = enrolled
    at = NOW + timedelta(minutes=3)
    code = code_at(secret, at)
    with vault_.transaction() as session:
        assert totp.verify(session, vault_.keys, pid, f" {code[:3]} {code[3:]} ", now=at)


def test_an_enabled_second_factor_cannot_be_replaced_without_a_reset(vault_, enrolled):
    pid, secret = enrolled
    with vault_.transaction() as session:
        with pytest.raises(Conflict):
            totp.enrol(session, vault_.keys, pid)
        totp.reset(session, pid, now=NOW)
        assert not totp.verify(session, vault_.keys, pid, code_at(secret, NOW + timedelta(minutes=1)), now=NOW)
        fresh = totp.enrol(session, vault_.keys, pid)
    assert fresh.secret != secret


def test_roles_that_need_totp():
    assert {
        role for role in ("resident", "clinic", "landlord", "compliance", "admin", "witness") if totp.required_for(role)
    } == {"clinic", "landlord", "compliance", "admin"}


def test_unknown_principals(vault_):
    with vault_.transaction() as session:
        with pytest.raises(NotFound):
            totp.enrol(session, vault_.keys, "p-nobody")
        with pytest.raises(NotFound):
            totp.verify(session, vault_.keys, "", "123456", now=NOW)
