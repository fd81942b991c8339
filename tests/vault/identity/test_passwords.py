"""Passwords: the policy, argon2id hashes, verification and rehashing."""

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from vault.core.errors import InvalidInput, NotFound
from vault.identity import passwords, principals
from vault.storage.models import Principal

from .conftest import NOW, PASSWORD


def test_hashes_are_argon2id_with_the_library_defaults():
    passwords.use_hasher(PasswordHasher())  # the production hasher (the fixture puts the cheap one back)
    stored = passwords.hash_password(PASSWORD)
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert passwords.verify_password(stored, PASSWORD)
    assert not passwords.verify_password(stored, PASSWORD + "!")
    assert stored != passwords.hash_password(PASSWORD)  # a fresh salt each time
    assert not passwords.needs_rehash(stored)


def test_wrong_and_malformed_inputs_verify_false_and_never_raise():
    stored = passwords.hash_password(PASSWORD)
    for attempt in ("", "correct horse battery stapl", PASSWORD.upper(), "x" * 10_000, "\udc80" * 20):
        assert passwords.verify_password(stored, attempt) is False
    for broken in ("", "$argon2id$v=19$m=8,t=1,p=1$bad", "plain text", "$2b$12$bcrypthashbcrypthash"):
        assert passwords.verify_password(broken, PASSWORD) is False
    assert passwords.verify_password(stored, None) is False  # type: ignore[arg-type]


def test_equivalent_unicode_spellings_verify():
    stored = passwords.hash_password("ﬁrst of many words")  # the ﬁ ligature
    assert passwords.verify_password(stored, "first of many words")
    composed, decomposed = "caf\u00e9 au lait 2026", "cafe\u0301 au lait 2026"
    assert passwords.verify_password(passwords.hash_password(composed), decomposed)


@pytest.mark.parametrize(
    "password, rule",
    [
        ("", "at least 12"),
        ("short pass1", "at least 12"),
        ("x" * 129, "at most 128"),
        ("y" * 1_000_000, "at most 128"),
        ("tab\tinside password", "control"),
        ("nul\x00inside password", "control"),
        ("aaaaaaaaaaaaaaaa", "too easy"),
        ("Password1234", "too easy"),
        ("AMINA@EXAMPLE.ORG", "not be the login"),
    ],
)
def test_the_policy_names_the_rule_never_the_password(password, rule):
    with pytest.raises(InvalidInput, match=rule) as refused:
        passwords.check_password(password, login="amina@example.org")
    if len(password) > 3:
        assert password not in refused.value.detail


def test_the_policy_allows_spaces_and_any_script_without_composition_rules():
    for fine in ("correct horse battery staple", "всё будет хорошо", "日本語のパスワードですよ", "   twelve chars"):
        assert passwords.check_password(fine, login="someone") == fine
    assert passwords.check_password("xy" * 64) == "xy" * 64  # 128 characters: the longest


def test_setting_a_password_needs_a_live_principal_with_a_login(vault_, person):
    with vault_.transaction() as session:
        info, _ = principals.create_principal(session, vault_.keys, role="clinic", name="C", now=NOW)
        with pytest.raises(InvalidInput, match="no login"):
            passwords.set_password(session, vault_.keys, info.id, PASSWORD, now=NOW)
        with pytest.raises(NotFound):
            passwords.set_password(session, vault_.keys, "p-nobody", PASSWORD, now=NOW)
    pid = person(password=None)
    with vault_.transaction() as session:
        with pytest.raises(InvalidInput, match="not be the login"):
            passwords.set_password(session, vault_.keys, pid, "Amina@Example.org", now=NOW)
        passwords.set_password(session, vault_.keys, pid, PASSWORD, now=NOW)
        stored = session.scalar(select(Principal.password_hash).where(Principal.id == pid))
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_a_hash_with_other_parameters_needs_a_rehash():
    old = PasswordHasher(time_cost=1, memory_cost=512, parallelism=1).hash(PASSWORD)
    assert passwords.needs_rehash(old)
    assert passwords.needs_rehash("not a hash")
    assert passwords.verify_password(old, PASSWORD)  # still verifies until replaced
