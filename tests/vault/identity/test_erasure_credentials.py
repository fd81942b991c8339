"""Erasing a resident destroys what they signed in with: login, password hash, TOTP secret, sessions, links."""

import pyotp
import pytest
from sqlalchemy import func, select

from vault.core.config import WebSessionSettings
from vault.core.errors import Unauthenticated
from vault.identity import invitations, logins, sign_in, totp, web_sessions
from vault.rights.erasure import ERASED_CREDENTIALS, erase
from vault.storage.models import Invitation, Principal, WebSession

from .conftest import NOW, PASSWORD


def test_erasure_destroys_every_sign_in_credential(vault_, person):
    amina = person()
    grace = person(login="grace@example.org")
    with vault_.transaction() as session:
        enrolment = totp.enrol(session, vault_.keys, amina)
        assert totp.confirm_enrolment(session, vault_.keys, amina, pyotp.TOTP(enrolment.secret).at(NOW), now=NOW)
        token = web_sessions.start(session, amina, second_factor_done=True, now=NOW, policy=WebSessionSettings())
        invitations.create(session, vault_.keys, amina, now=NOW)
        sign_in.sign_in(
            session, vault_.keys, login="grace@example.org", password=PASSWORD, now=NOW, policy=WebSessionSettings()
        )
    erase(vault_, None, amina)
    with vault_.transaction() as session:
        row = session.get(Principal, amina)
        assert {column: getattr(row, column) for column in ERASED_CREDENTIALS} == dict.fromkeys(ERASED_CREDENTIALS)
        assert session.scalar(select(func.count()).select_from(WebSession).where(WebSession.principal_id == amina)) == 0
        assert session.scalar(select(func.count()).select_from(Invitation)) == 0
        assert logins.find_principal(session, vault_.keys, "amina@example.org") is None
        # Another resident's credentials and session are untouched.
        assert logins.find_principal(session, vault_.keys, "grace@example.org").id == grace
        assert session.scalar(select(func.count()).select_from(WebSession)) == 1
    # The login is free again: it names nobody now.
    other = person(login="amina@example.org")
    with vault_.transaction() as session:
        assert logins.find_principal(session, vault_.keys, "amina@example.org").id == other
    with vault_.transaction() as session, pytest.raises(Unauthenticated):
        web_sessions.check(session, token, now=NOW, policy=WebSessionSettings())


def test_every_credential_column_is_erased():
    """A new credential column of principals must be added to what erasure destroys."""
    kept = {"id", "role", "name_sealed", "name_scheme", "created_at", "erased_at"}
    assert {c.name for c in Principal.__table__.columns} - kept == set(ERASED_CREDENTIALS)
