"""Master key rotation carries sign-in credentials along: logins re-indexed, logins and TOTP secrets re-sealed."""

from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select

from vault.core.errors import Conflict
from vault.identity import logins, passwords, principals, totp
from vault.keys import key_rotation
from vault.keys.keys import KeyStore
from vault.runtime import Vault
from vault.storage.models import Principal

from ..keys.test_key_rotation import file_settings
from .conftest import NOW, PASSWORD


@pytest.fixture
def fvault(tmp_path, database_url):
    vault = Vault.open(file_settings(tmp_path, database_url))
    yield vault
    vault.close()


def test_rotation_reindexes_logins_and_reseals_totp_secrets_before_retiring(fvault):
    with fvault.transaction() as session:
        resident, _ = principals.create_principal(session, fvault.keys, role="resident", name="Amina", now=NOW)
        clinic, _ = principals.create_principal(session, fvault.keys, role="clinic", name="Riverside", now=NOW)
        for info, login in ((resident, "Amina@Example.org"), (clinic, "riverside")):
            logins.set_login(session, fvault.keys, info.id, login)
            passwords.set_password(session, fvault.keys, info.id, PASSWORD, now=NOW)
        secret = totp.enrol(session, fvault.keys, clinic.id).secret
        assert totp.confirm_enrolment(session, fvault.keys, clinic.id, pyotp.TOTP(secret).at(NOW), now=NOW)
        before = {row.id: (row.login_index, row.login_sealed) for row in session.scalars(select(Principal))}
        assert key_rotation.usage(session).credentials == {1: 5}  # 2 sealed logins, 2 indices, 1 TOTP secret

    report = key_rotation.rotate(fvault)
    assert report.version == 2 and report.remaining == 0
    with fvault.transaction() as session:
        rows = {row.id: row for row in session.scalars(select(Principal))}
        for pid, (index, sealed) in before.items():
            assert rows[pid].login_index_version == 2 and rows[pid].login_index != index
            assert bytes(rows[pid].login_sealed) != bytes(sealed)
        assert key_rotation.usage(session).credentials == {2: 5}

    assert key_rotation.retire(fvault).retired == (1,)
    assert fvault.keys.keyring.versions == (2,)
    with fvault.transaction() as session:
        assert logins.find_principal(session, fvault.keys, "amina@example.org").id == resident.id
        assert logins.get_login(session, fvault.keys, resident.id) == "Amina@Example.org"
        later = NOW + timedelta(minutes=5)
        assert totp.verify(session, fvault.keys, clinic.id, pyotp.TOTP(secret).at(later), now=later)


def test_a_login_is_found_under_an_old_version_until_the_rotation_reaches_it(fvault):
    with fvault.transaction() as session:
        info, _ = principals.create_principal(session, fvault.keys, role="clinic", name="Riverside", now=NOW)
        logins.set_login(session, fvault.keys, info.id, "riverside")
    # A new master key version, as a server sees it before 'keys rotate' has re-indexed anything.
    keys = KeyStore(fvault.keys.keyring.rotated(), secrets=fvault.keys.secrets)
    with fvault.transaction() as session:
        assert logins.find_principal(session, keys, "RIVERSIDE").id == info.id
        other, _ = principals.create_principal(session, keys, role="clinic", name="X", now=NOW)
        with pytest.raises(Conflict, match="already taken"):  # the unique index alone would not see it
            logins.set_login(session, keys, other.id, "riverside")
