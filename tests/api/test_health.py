"""``GET /healthz`` and vault/storage/health.py: is the database there?"""

import pytest
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import sessionmaker

from tests.api.helpers import assert_problem
from vault.storage import health


def _unreachable(tmp_path) -> sessionmaker:
    # A SQLite file in a folder that does not exist: every connection attempt fails.
    return sessionmaker(bind=create_engine(f"sqlite:///{tmp_path / 'missing' / 'vault.db'}"))


def test_the_check_returns_when_the_database_answers(vault_):
    with vault_.read_transaction() as session:
        assert health.check(session) is None


def test_the_check_raises_when_the_database_does_not_answer(tmp_path):
    with _unreachable(tmp_path)() as session, pytest.raises(OperationalError):
        health.check(session)


def test_healthz_is_a_503_problem_when_the_database_does_not_answer(client, vault_, tmp_path):
    vault_.read_sessions = _unreachable(tmp_path)
    body = assert_problem(client.get("/healthz"), 503)
    assert "missing" not in body["detail"] and "sqlite" not in body["detail"].lower()  # no path or driver leaks
