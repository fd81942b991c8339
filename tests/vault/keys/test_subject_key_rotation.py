"""Subject keys are replaced automatically at CIVICVAULT_SUBJECT_KEY_MAX_USES seals (AES-GCM nonce budget)."""

import dataclasses
import json
import threading

import pytest
from sqlalchemy import select

import crypto
from vault.core.caller import Caller
from vault.core.clock import utcnow
from vault.core.config import DEFAULT_SUBJECT_KEY_MAX_USES, Settings
from vault.core.errors import ConfigError
from vault.identity import principals
from vault.records import records
from vault.runtime import Vault
from vault.storage.models import Event, RecordVersion, SubjectKey
from vault.verification.verify import verify

LIMIT = 3


@pytest.fixture
def small_vault(settings):
    vault = Vault.open(dataclasses.replace(settings, subject_key_max_uses=LIMIT))
    yield vault
    vault.close()


def resident(vault):
    with vault.transaction() as session:
        info, _ = principals.create_principal(session, vault.keys, role="resident", name="Amina", now=utcnow())
    return Caller(info.id, "resident")


def write(vault, who, content, title=None):
    with vault.transaction() as session:
        return records.create_record(
            session,
            vault.keys,
            who,
            subject_id=who.id,
            category="health.labs",
            content=content,
            title=title,
            now=utcnow(),
        ).id


def read(vault, who, record_id):
    with vault.transaction() as session:
        return records.read_record(session, vault.keys, who, record_id, now=utcnow()).content


def key_version_of(vault, record_id):
    with vault.read_transaction() as session:
        return crypto.envelope_key_id(bytes(session.get(RecordVersion, (record_id, 1)).content_sealed))


def test_a_new_subject_key_version_takes_over_at_the_limit(small_vault):
    amina = resident(small_vault)
    first = [write(small_vault, amina, {"i": i}) for i in range(LIMIT)]
    assert {key_version_of(small_vault, r) for r in first} == {1}
    with small_vault.read_transaction() as session:
        assert session.get(SubjectKey, (amina.id, 1)).uses == LIMIT
        assert session.get(SubjectKey, (amina.id, 2)) is None
    later = [write(small_vault, amina, {"j": j}) for j in range(LIMIT + 1)]
    assert [key_version_of(small_vault, r) for r in later] == [2, 2, 2, 3]
    with small_vault.read_transaction() as session:
        rows = {r.version: r.uses for r in session.scalars(select(SubjectKey).where(SubjectKey.subject_id == amina.id))}
        events = session.scalars(
            select(Event).where(Event.kind == "subject-key.rotated").order_by(Event.ledger_index)
        ).all()
    assert rows == {1: LIMIT, 2: LIMIT, 3: 1}
    assert [json.loads(e.data) for e in events] == [
        {"version": 2, "retired_version": 1, "uses": LIMIT},
        {"version": 3, "retired_version": 2, "uses": LIMIT},
    ]
    assert all(e.subject_id == amina.id and e.actor_id == "system" for e in events)
    # Old data stays readable under the old versions.
    for i, record_id in enumerate(first):
        assert read(small_vault, amina, record_id) == {"i": i}
    for j, record_id in enumerate(later):
        assert read(small_vault, amina, record_id) == {"j": j}
    with small_vault.read_transaction() as session:
        verify(session)


def test_reads_do_not_count_and_every_seal_does(small_vault):
    amina = resident(small_vault)
    record_id = write(small_vault, amina, {"a": 1})
    for _ in range(5):
        read(small_vault, amina, record_id)
    with small_vault.transaction() as session:
        records.add_version(session, small_vault.keys, amina, record_id, content={"a": 2}, title="t", now=utcnow())
    with small_vault.read_transaction() as session:
        uses = {r.version: r.uses for r in session.scalars(select(SubjectKey).where(SubjectKey.subject_id == amina.id))}
    assert uses == {1: 3}  # one record, then content and title of version 2: three seals, no reads


def test_a_content_and_its_title_are_sealed_under_one_version_counted_twice(small_vault):
    """Both parts of a version are counted in one statement; when the newest key has room for only one of
    them, both go under the next version (never a part under each, never over the limit)."""
    amina = resident(small_vault)
    first = write(small_vault, amina, {"a": 1}, title="one")
    second = write(small_vault, amina, {"b": 2}, title="two")
    with small_vault.read_transaction() as session:
        uses = {r.version: r.uses for r in session.scalars(select(SubjectKey).where(SubjectKey.subject_id == amina.id))}
        parts = {
            record_id: {crypto.envelope_key_id(bytes(v.content_sealed)), crypto.envelope_key_id(bytes(v.title_sealed))}
            for record_id in (first, second)
            for v in [session.get_one(RecordVersion, (record_id, 1))]
        }
    assert uses == {1: 2, 2: 2}  # version 1 had room for one more seal, not two
    assert parts == {first: {1}, second: {2}}
    with small_vault.transaction() as session:
        assert records.read_record(session, small_vault.keys, amina, second, now=utcnow()).title == "two"


def test_concurrent_sealers_share_one_new_version(small_vault, settings):
    """Writers in several threads cross the limit together: no error, no version skipped, none over its budget."""
    amina = resident(small_vault)
    others = [Vault.open(dataclasses.replace(settings, subject_key_max_uses=LIMIT)) for _ in range(3)]
    errors, written = [], []

    def work(vault):
        for i in range(6):
            try:
                written.append(write(vault, amina, {"i": i}))
            except Exception as exc:
                errors.append(repr(exc))

    threads = [threading.Thread(target=work, args=(v,)) for v in others]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for v in others:
        v.close()
    assert errors == []
    assert len(written) == 18
    with small_vault.read_transaction() as session:
        uses = {r.version: r.uses for r in session.scalars(select(SubjectKey).where(SubjectKey.subject_id == amina.id))}
    assert sorted(uses) == list(range(1, len(uses) + 1))
    assert all(n <= LIMIT for n in uses.values()) and sum(uses.values()) == 18
    for record_id in written:
        assert "i" in read(small_vault, amina, record_id)


def test_the_limit_is_configured_from_the_environment(tmp_path):
    assert Settings.from_env(tmp_path, {}).subject_key_max_uses == DEFAULT_SUBJECT_KEY_MAX_USES < 2**32
    assert Settings.from_env(tmp_path, {"CIVICVAULT_SUBJECT_KEY_MAX_USES": "1000"}).subject_key_max_uses == 1000
    for bad in ("0", "-1", "lots", str(2**32 + 1)):
        with pytest.raises(ConfigError, match="CIVICVAULT_SUBJECT_KEY_MAX_USES"):
            Settings.from_env(tmp_path, {"CIVICVAULT_SUBJECT_KEY_MAX_USES": bad})
