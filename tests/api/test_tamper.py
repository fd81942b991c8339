"""A stored envelope that was altered in any way is refused, and no content leaks."""

import pytest
from sqlalchemy import select, update

from tests.api.helpers import assert_problem
from vault.storage.models import Principal, RecordVersion, SubjectKey


@pytest.fixture
def resident(make_actor):
    return make_actor("resident")


def create(client, actor, content, title=None, category="health.notes"):
    response = client.post(
        f"/api/v1/subjects/{actor.id}/records",
        json={"category": category, "content": content, "title": title},
        headers=actor.auth,
    )
    assert response.status_code == 201
    return response.get_json()["id"]


def envelope(vault_, record_id, column="content_sealed", version=1) -> bytes:
    with vault_.transaction() as session:
        row = session.get(RecordVersion, (record_id, version))
        return bytes(getattr(row, column))


def store(vault_, record_id, data: bytes, column="content_sealed", version=1) -> None:
    with vault_.transaction() as session:
        session.execute(
            update(RecordVersion)
            .where(RecordVersion.record_id == record_id, RecordVersion.version == version)
            .values({column: data})
        )


def assert_unreadable(client, actor, record_id, secret: str) -> None:
    response = client.get(f"/api/v1/records/{record_id}", headers=actor.auth)
    body = assert_problem(response, 500)
    assert body["type"] == "urn:civicvault:problem:record-unreadable"
    assert secret not in response.get_data(as_text=True)


def test_every_single_bit_flip_of_a_content_envelope_is_refused(client, vault_, resident):
    record_id = create(client, resident, {"s": "SECRET"})
    original = envelope(vault_, record_id)
    assert len(original) == 17 + len(b'{"s":"SECRET"}') + 16
    for bit in range(len(original) * 8):
        tampered = bytearray(original)
        tampered[bit // 8] ^= 1 << (bit % 8)
        store(vault_, record_id, bytes(tampered))
        assert_unreadable(client, resident, record_id, "SECRET")
    store(vault_, record_id, original)
    assert client.get(f"/api/v1/records/{record_id}", headers=resident.auth).get_json()["content"] == {"s": "SECRET"}


def test_title_envelope_bit_flips_are_refused(client, vault_, resident):
    record_id = create(client, resident, {"s": 1}, title="SECRETTITLE")
    original = envelope(vault_, record_id, "title_sealed")
    for bit in range(0, len(original) * 8, 7):
        tampered = bytearray(original)
        tampered[bit // 8] ^= 1 << (bit % 8)
        store(vault_, record_id, bytes(tampered), "title_sealed")
        assert_unreadable(client, resident, record_id, "SECRETTITLE")
        listing = client.get(f"/api/v1/subjects/{resident.id}/records", headers=resident.auth)
        assert_problem(listing, 500)
        assert "SECRETTITLE" not in listing.get_data(as_text=True)


@pytest.mark.parametrize("cut", [1, 16, 17, 33, None])
def test_truncated_and_emptied_envelopes_are_refused(client, vault_, resident, cut):
    record_id = create(client, resident, {"s": "SECRET"})
    original = envelope(vault_, record_id)
    store(vault_, record_id, b"" if cut is None else original[:-cut])
    assert_unreadable(client, resident, record_id, "SECRET")


def test_extended_envelope_is_refused(client, vault_, resident):
    record_id = create(client, resident, {"s": "SECRET"})
    store(vault_, record_id, envelope(vault_, record_id) + b"\x00")
    assert_unreadable(client, resident, record_id, "SECRET")


def test_an_envelope_moved_to_another_record_does_not_open(client, vault_, resident):
    a = create(client, resident, {"s": "SECRET-A"})
    b = create(client, resident, {"s": "SECRET-B"})
    store(vault_, b, envelope(vault_, a))
    assert_unreadable(client, resident, b, "SECRET-A")


def test_an_envelope_moved_to_another_version_does_not_open(client, vault_, resident):
    record_id = create(client, resident, {"s": "SECRET-1"})
    client.put(f"/api/v1/records/{record_id}", json={"content": {"s": "SECRET-2"}}, headers=resident.auth)
    store(vault_, record_id, envelope(vault_, record_id, version=1), version=2)
    assert_unreadable(client, resident, record_id, "SECRET-1")


def test_title_and_content_envelopes_cannot_be_swapped(client, vault_, resident):
    record_id = create(client, resident, {"s": "SECRET"}, title="TITLE")
    content, title = envelope(vault_, record_id), envelope(vault_, record_id, "title_sealed")
    store(vault_, record_id, title)
    assert_unreadable(client, resident, record_id, "TITLE")
    store(vault_, record_id, content)
    store(vault_, record_id, content, "title_sealed")
    assert_unreadable(client, resident, record_id, "SECRET")


def test_an_envelope_moved_to_another_resident_does_not_open(client, vault_, make_actor):
    alice, bob = make_actor("resident"), make_actor("resident")
    a = create(client, alice, {"s": "SECRET-ALICE"})
    b = create(client, bob, {"s": "bob"})
    store(vault_, b, envelope(vault_, a))
    assert_unreadable(client, bob, b, "SECRET-ALICE")


def test_a_tampered_wrapped_subject_key_is_refused(client, vault_, resident):
    record_id = create(client, resident, {"s": "SECRET"})
    with vault_.transaction() as session:
        row = session.scalars(select(SubjectKey).where(SubjectKey.subject_id == resident.id)).one()
        wrapped = bytearray(row.wrapped)
        wrapped[-1] ^= 0x80
        row.wrapped = bytes(wrapped)
    assert_unreadable(client, resident, record_id, "SECRET")


def test_a_wrong_master_key_is_refused_at_start_and_opens_nothing(client, vault_, resident, settings):
    from api import create_app
    from tests.conftest import new_master_key
    from vault.core.config import Settings
    from vault.core.errors import ConfigError
    from vault.core.keyfile import keyring_from_env
    from vault.keys.keys import KeyStore
    from vault.runtime import Vault

    record_id = create(client, resident, {"s": "SECRET"})
    wrong = Settings(home=settings.home, database_url=settings.database_url, master_key=new_master_key())
    with pytest.raises(ConfigError, match="right key"):
        Vault.open(wrong)
    # Even past the start-up check (a key swapped under a running process),
    # nothing opens.
    other = Vault(wrong, vault_.engine, KeyStore(keyring_from_env(wrong.master_key)))
    other_client = create_app(vault=other).test_client()
    assert_unreadable(other_client, resident, record_id, "SECRET")
    assert_problem(other_client.get("/api/v1/me", headers=resident.auth), 500)


def test_a_keyring_missing_a_used_version_is_refused_at_start(vault_, resident, settings):
    from vault.core.errors import ConfigError
    from vault.runtime import Vault

    with vault_.transaction() as session:
        session.execute(update(SubjectKey).values(master_key_version=2))
    with pytest.raises(ConfigError, match=r"lacks version\(s\) \[2\]"):
        Vault.open(settings)


def test_principal_names_are_sealed_and_bound_to_their_principal(vault_, make_actor, client):
    alice, bob = make_actor("resident", "Alice Secret"), make_actor("resident", "Bob")
    with vault_.transaction() as session:
        a, b = session.get(Principal, alice.id), session.get(Principal, bob.id)
        assert b"Alice" not in a.name_sealed
        b.name_sealed = a.name_sealed
    response = client.get("/api/v1/me", headers=bob.auth)
    assert_problem(response, 500)
    assert "Alice" not in response.get_data(as_text=True)
