"""Subject keys are unwrapped once per transaction and never kept beyond it (vault/keys/keys.py).

A read opens its content and its title under one key: one key row and one
secret-store read. Nothing is kept from one transaction to the next, so a
destroyed secret (erasure), a deleted key row, or a key row re-wrapped by a
master key rotation is seen by the very next transaction of the same process.
"""

import dataclasses

import pytest
from sqlalchemy import Engine, event, update

import crypto
from tests.vault.keys.test_key_rotation import fsettings, fvault  # noqa: F401 - fixtures
from vault.core.caller import Caller
from vault.core.clock import utcnow
from vault.core.errors import NotFound, RecordUnreadable
from vault.identity import principals
from vault.keys import key_rotation
from vault.keys.keys import _UNWRAPPED
from vault.records import records
from vault.rights import erasure
from vault.runtime import Vault
from vault.storage.models import RecordVersion, SubjectKey


class Statements:
    def __init__(self, engine: Engine) -> None:
        self.seen: list[str] = []
        event.listen(engine, "before_cursor_execute", self._on)

    def _on(self, _conn, _cursor, statement, *_args) -> None:
        if not statement.lstrip().upper().startswith("BEGIN"):
            self.seen.append(statement)


def resident(vault: Vault) -> Caller:
    with vault.transaction() as session:
        info, _ = principals.create_principal(session, vault.keys, role="resident", name="Amina", now=utcnow())
    return Caller(info.id, "resident")


def write(vault: Vault, who: Caller, content: dict, title: str | None = "HbA1c") -> str:
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


def read(vault: Vault, who: Caller, record_id: str) -> records.RecordContent:
    with vault.transaction() as session:
        return records.read_record(session, vault.keys, who, record_id, now=utcnow())


def sealed_content(vault: Vault, record_id: str) -> bytes:
    with vault.read_transaction() as session:
        return bytes(session.get_one(RecordVersion, (record_id, 1)).content_sealed)


def test_a_read_opens_content_and_title_with_one_key_row_and_one_secret(vault_):
    amina = resident(vault_)
    record_id = write(vault_, amina, {"a": 1})
    main, store = Statements(vault_.engine), Statements(vault_.keys.secrets.engine)
    result = read(vault_, amina, record_id)
    assert (result.content, result.title) == ({"a": 1}, "HbA1c")
    assert len(store.seen) == 1
    assert sum("FROM subject_keys" in s for s in main.seen) == 1


def test_unwrapped_keys_end_with_their_transaction_and_with_a_savepoint(vault_):
    amina = resident(vault_)
    record_id = write(vault_, amina, {"a": 1})
    with vault_.transaction() as session:
        records.read_record(session, vault_.keys, amina, record_id, now=utcnow())
        assert session.info[_UNWRAPPED], "the read kept its key for the rest of the transaction"
        with session.begin_nested():
            pass
        assert not session.info.get(_UNWRAPPED)
        records.read_record(session, vault_.keys, amina, record_id, now=utcnow())
        assert session.info[_UNWRAPPED]
    assert _UNWRAPPED not in session.info


def test_a_destroyed_secret_is_seen_by_the_next_transaction_of_the_same_process(vault_):
    """An erasure that destroyed the secret and then crashed: the key rows are still there, nothing opens."""
    amina = resident(vault_)
    record_id = write(vault_, amina, {"a": 1})
    assert read(vault_, amina, record_id).content == {"a": 1}
    assert vault_.keys.secrets.destroy(amina.id)
    with pytest.raises(RecordUnreadable):
        read(vault_, amina, record_id)


def test_after_erasure_an_old_envelope_does_not_open_in_the_same_process(vault_):
    amina = resident(vault_)
    record_id = write(vault_, amina, {"a": 1})
    kept = sealed_content(vault_, record_id)  # a copy taken before the erasure
    assert read(vault_, amina, record_id).content == {"a": 1}
    with vault_.transaction() as session:  # the copy opens before the erasure, so the check below means something
        aad = crypto.record_aad(
            record_id=record_id, subject_id=amina.id, version=1, category="health.labs", part="content"
        )
        assert vault_.keys.open_for_subject(session, amina.id, kept, aad=aad)
    erasure.erase(vault_, amina, amina.id)
    with pytest.raises(NotFound):
        read(vault_, amina, record_id)
    with vault_.transaction() as session, pytest.raises(RecordUnreadable):
        aad = crypto.record_aad(
            record_id=record_id, subject_id=amina.id, version=1, category="health.labs", part="content"
        )
        vault_.keys.open_for_subject(session, amina.id, kept, aad=aad)


def test_a_key_row_is_unwrapped_afresh_after_a_master_key_rotation(fvault, fsettings):  # noqa: F811
    """After rotate and retire, the row as it was before the rotation no longer opens: nothing was kept."""
    amina = resident(fvault)
    record_id = write(fvault, amina, {"a": 1})
    assert read(fvault, amina, record_id).content == {"a": 1}
    with fvault.read_transaction() as session:
        before = session.get_one(SubjectKey, (amina.id, 1))
        old_wrapped, old_master = bytes(before.wrapped), before.master_key_version
    assert key_rotation.rotate(fvault).version == 2
    assert key_rotation.retire(fvault).retired == (1,)
    assert read(fvault, amina, record_id).content == {"a": 1}  # under the re-wrapped row
    with fvault.transaction() as session:
        session.execute(
            update(SubjectKey)
            .where(SubjectKey.subject_id == amina.id, SubjectKey.version == 1)
            .values(wrapped=old_wrapped, master_key_version=old_master)
        )
    with pytest.raises(RecordUnreadable):
        read(fvault, amina, record_id)


def test_subject_key_versions_taken_within_one_transaction_each_seal_under_their_own_key(settings):
    vault = Vault.open(dataclasses.replace(settings, subject_key_max_uses=2))
    try:
        amina = resident(vault)
        with vault.transaction() as session:
            ids = [
                records.create_record(
                    session,
                    vault.keys,
                    amina,
                    subject_id=amina.id,
                    category="health.labs",
                    content={"i": i},
                    now=utcnow(),
                ).id
                for i in range(5)
            ]
            opened = [records.read_record(session, vault.keys, amina, r, now=utcnow()).content for r in ids]
        assert opened == [{"i": i} for i in range(5)]
        assert [read(vault, amina, r).content for r in ids] == [{"i": i} for i in range(5)]
        with vault.read_transaction() as session:
            versions = sorted(v for (v,) in session.query(SubjectKey.version).filter_by(subject_id=amina.id))
        assert versions == [1, 2, 3]
    finally:
        vault.close()
