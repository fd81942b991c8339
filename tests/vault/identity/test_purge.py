"""Ended sessions and dead invitation links are deleted; live ones are kept."""

from datetime import timedelta

from click.testing import CliRunner
from sqlalchemy import func, select

from vault.cli.main import cli
from vault.core.config import WebSessionSettings
from vault.identity import invitations, logins, web_sessions
from vault.storage.models import Invitation, WebSession

POLICY = WebSessionSettings(idle_minutes=15, max_hours=12)


def _count(vault, model) -> int:
    with vault.read_transaction() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_purge_deletes_only_ended_sessions(vault_, make_actor):
    amina = make_actor("resident")
    now = vault_.now()
    with vault_.transaction() as session:
        live = web_sessions.start(session, amina.id, second_factor_done=True, now=now, policy=POLICY)
        signed_out = web_sessions.start(session, amina.id, second_factor_done=True, now=now, policy=POLICY)
        web_sessions.sign_out(session, signed_out, now=now)
        web_sessions.start(session, amina.id, second_factor_done=True, now=now - timedelta(minutes=20), policy=POLICY)
        web_sessions.start(session, amina.id, second_factor_done=True, now=now - timedelta(hours=13), policy=POLICY)
    with vault_.transaction() as session:
        assert web_sessions.purge_ended(session, now=now, policy=POLICY) == 3
    assert _count(vault_, WebSession) == 1
    with vault_.transaction() as session:
        assert web_sessions.check(session, live, now=now, policy=POLICY).principal_id == amina.id


def test_purge_deletes_used_and_expired_invitations(vault_, make_actor):
    amina, grace = make_actor("resident"), make_actor("resident")
    now = vault_.now()
    with vault_.transaction() as session:
        logins.set_login(session, vault_.keys, amina.id, "amina-purge")
        logins.set_login(session, vault_.keys, grace.id, "grace-purge")
        invitations.create(session, vault_.keys, amina.id, now=now - timedelta(hours=80))  # expired
        kept = invitations.create(session, vault_.keys, grace.id, now=now)
    with vault_.transaction() as session:
        assert invitations.purge_ended(session, now=now) == 1
    assert _count(vault_, Invitation) == 1
    with vault_.read_transaction() as session:
        assert invitations.peek(session, vault_.keys, kept.token, now=now)[0] == grace.id


def test_the_cli_purges(settings, vault_, make_actor, monkeypatch):
    amina = make_actor("resident")
    with vault_.transaction() as session:
        token = web_sessions.start(session, amina.id, second_factor_done=True, now=vault_.now(), policy=POLICY)
        web_sessions.sign_out(session, token, now=vault_.now())
    monkeypatch.setenv("CIVICVAULT_MASTER_KEY", settings.master_key)
    monkeypatch.setenv("CIVICVAULT_DATABASE_URL", settings.database_url)
    result = CliRunner().invoke(cli, ["maintenance", "purge-sessions", "--home", str(settings.home)])
    assert result.exit_code == 0, result.output
    assert "deleted 1 ended sessions and 0 used or expired invitations" in result.output
    assert _count(vault_, WebSession) == 0
