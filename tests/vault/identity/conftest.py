"""Identity tests hash with cheap argon2id parameters; one test checks the real defaults.

The default profile (64 MiB, t=3, p=4) costs about 0.2 s a hash on the test
machine: dozens of sign-ins would make the suite slow for nothing, since what
these tests check does not depend on the cost.
"""

from datetime import UTC, datetime

import pytest
from argon2 import PasswordHasher

from vault.identity import logins, passwords, principals

NOW = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def cheap_hashes():
    previous = passwords.use_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    yield
    passwords.use_hasher(previous)


@pytest.fixture
def person(vault_):
    """Make a principal with a login (and a password unless ``password=None``); returns its id."""

    def make(role: str = "resident", login: str = "amina@example.org", password: str | None = PASSWORD) -> str:
        with vault_.transaction() as session:
            info, _ = principals.create_principal(session, vault_.keys, role=role, name=f"{role} person", now=NOW)
            logins.set_login(session, vault_.keys, info.id, login)
            if password is not None:
                passwords.set_password(session, vault_.keys, info.id, password, now=NOW)
        return info.id

    return make
