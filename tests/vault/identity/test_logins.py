"""Logins: normalised, unique in every variant, found by blind index, never stored in clear."""

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

import crypto
from vault.core.content import MAX_LOGIN_LENGTH, normalise_login
from vault.core.errors import Conflict, InvalidInput, NotFound, RecordUnreadable
from vault.identity import logins, principals
from vault.storage.models import Principal

from .conftest import NOW


@pytest.mark.parametrize(
    "variant",
    [
        "amina@example.org",
        "Amina@Example.ORG",
        "  amina@example.org\t",
        "ＡＭＩＮＡ@example.org",  # full-width letters (NFKC)
    ],
)
def test_variants_of_a_login_normalise_to_one(variant):
    assert normalise_login(variant) == "amina@example.org"


def test_case_folding_goes_beyond_lower():
    assert normalise_login("STRASSE") == normalise_login("straße") == "strasse"
    assert normalise_login("ﬁona") == "fiona"  # a ligature, NFKC


@pytest.mark.parametrize(
    "login",
    [
        "",
        "   ",
        "amina yusuf",  # a space inside
        "amina\x00",
        "ami\nna",
        "ami\u200bna",  # zero-width space (format character)
        "\u202eanima",  # right-to-left override
        "ami\ue000na",  # private use
        "a" * (MAX_LOGIN_LENGTH + 1),
        "a" * 100_000,
        "\ufdfa" * 20,  # one character NFKC expands to 18: too long once normalised
    ],
)
def test_hostile_logins_are_refused_without_echoing_them(login):
    with pytest.raises(InvalidInput) as refused:
        normalise_login(login)
    if login.strip():
        assert login.strip() not in refused.value.detail


def test_a_login_is_unique_in_every_variant(vault_, person):
    first = person(login="Amina@Example.org")
    with pytest.raises(Conflict) as taken:
        person(login="ＡＭＩＮＡ@example.org ")
    assert "amina" not in taken.value.detail.lower()
    with vault_.transaction() as session:
        found = logins.find_principal(session, vault_.keys, "amina@EXAMPLE.org")
        assert found is not None and found.id == first
        assert logins.get_login(session, vault_.keys, first) == "Amina@Example.org"  # as given, for display
        assert logins.find_principal(session, vault_.keys, "someone@example.org") is None
        # Setting one's own login again, in another spelling, is no conflict.
        assert logins.set_login(session, vault_.keys, first, "amina@example.org") == "amina@example.org"


def test_the_unique_index_refuses_a_duplicate_index_the_lookup_missed(vault_, person):
    first = person(login="amina@example.org")
    with vault_.transaction() as session:
        other, _ = principals.create_principal(session, vault_.keys, role="clinic", name="C", now=NOW)
    with pytest.raises(IntegrityError), vault_.transaction() as session:
        index = session.scalar(select(Principal.login_index).where(Principal.id == first))
        session.execute(
            text("UPDATE principals SET login_index = :index WHERE id = :id"), {"index": index, "id": other.id}
        )


def test_what_is_stored_is_an_hmac_and_a_sealed_login(vault_, person):
    pid = person(login="amina@example.org")
    with vault_.transaction() as session:
        row = session.get(Principal, pid)
        version, index = vault_.keys.login_index("amina@example.org")
        key = crypto.blind_index_key(vault_.keys.keyring, 1, purpose="login")
        assert (
            (row.login_index, row.login_index_version)
            == (index, version)
            == (
                crypto.blind_index(key, b"amina@example.org").hex(),
                1,
            )
        )
        assert b"amina" not in bytes(row.login_sealed)
        # The sealed login is bound to its principal: copied to another row, it does not open.
        other, _ = principals.create_principal(session, vault_.keys, role="clinic", name="C", now=NOW)
        with pytest.raises(RecordUnreadable):
            vault_.keys.open_login(other.id, bytes(row.login_sealed), scheme=row.name_scheme)


def test_no_plaintext_login_reaches_the_sqlite_files(vault_, person, database_url, tmp_path):
    if not database_url.startswith("sqlite"):
        pytest.skip("scans the SQLite file's bytes")
    login = "zq-unusual-login@example.org"
    pid = person(login=login)
    with vault_.transaction() as session:
        assert logins.find_principal(session, vault_.keys, login.upper()).id == pid
    raw = b"".join(path.read_bytes() for path in tmp_path.glob("vault.db*") if path.is_file())
    assert b"resident" in raw  # the scan sees what is stored in clear (the role)
    for form in (login, login.upper(), "zq-unusual-login"):
        assert form.encode() not in raw
        assert form.encode("utf-16-le") not in raw


def test_unknown_and_erased_principals_get_no_login(vault_):
    with vault_.transaction() as session:
        with pytest.raises(NotFound):
            logins.set_login(session, vault_.keys, "p-nobody", "x@example.org")
        with pytest.raises(NotFound):
            logins.get_login(session, vault_.keys, "../../etc")


def test_rate_keys_name_a_login_without_revealing_it(vault_):
    keys = vault_.keys
    key = logins.rate_key(keys, "Amina@Example.org")
    assert key == logins.rate_key(keys, " amina@example.org") and key.startswith("login:")
    assert "amina" not in key and key != logins.rate_key(keys, "grace@example.org")
    assert logins.rate_key(keys, "") == logins.rate_key(keys, "a b") == "login:malformed"
