"""Master key rotation: 10,000 residents re-wrapped while others read and write; resume; retire; the environment."""

import base64
import json
import os
import threading
import time

import pytest
from click.testing import CliRunner
from sqlalchemy import insert, select

import crypto
from vault.cli.main import cli
from vault.core.caller import Caller
from vault.core.clock import utcnow
from vault.core.config import Settings
from vault.core.errors import ConfigError
from vault.core.ids import new_id
from vault.core.keyfile import read_keyring, write_keyring
from vault.identity import principals
from vault.keys import key_rotation
from vault.records import records
from vault.runtime import Vault, init_home
from vault.storage.models import Event, Principal, SubjectKey
from vault.verification.verify import verify

# The 10,000 residents on SQLite; the same code on PostgreSQL with
# fewer, to keep the suite's time (a full 10,000 there took 30-50 s).
RESIDENTS = {"sqlite": 10_000, "postgres": 3_000}


def file_settings(home, database_url) -> Settings:
    """Settings whose master keyring is the key file in the home (what rotation writes)."""
    settings = Settings(home=home, database_url=database_url)
    write_keyring(settings.key_file, crypto.Keyring({1: os.urandom(32)}))
    init_home(settings)
    return settings


@pytest.fixture
def fsettings(tmp_path, database_url) -> Settings:
    return file_settings(tmp_path, database_url)


@pytest.fixture
def fvault(fsettings):
    vault = Vault.open(fsettings)
    yield vault
    vault.close()


def bulk_residents(vault: Vault, count: int) -> list[str]:
    """Residents with bound subject keys, written with bulk inserts (no API calls)."""
    now = utcnow()
    ids = [new_id("p") for _ in range(count)]
    vault.keys.secrets.add_many(ids)
    secrets = vault.keys.secrets.get_many(ids)
    ring = vault.keys.keyring
    people, keys = [], []
    for pid in ids:
        bound = ring.bound_to(secrets[pid], subject_id=pid)
        people.append(
            {
                "id": pid,
                "role": "resident",
                "name_sealed": vault.keys.seal_name(pid, f"R {pid[-4:]}", scheme=2, secret=secrets[pid]),
                "name_scheme": 2,
                "created_at": now,
            }
        )
        keys.append(
            {
                "subject_id": pid,
                "version": 1,
                "wrapped": crypto.wrap_key(bound, crypto.new_key(), subject_id=pid, version=1),
                "master_key_version": ring.current_version,
                "created_at": now,
                "wrap_scheme": 2,
                "uses": 0,
            }
        )
    with vault.transaction() as session:
        for start in range(0, count, 2000):
            session.execute(insert(Principal), people[start : start + 2000])
            session.execute(insert(SubjectKey), keys[start : start + 2000])
    return ids


def make_resident(vault: Vault, name: str = "Amina") -> Caller:
    with vault.transaction() as session:
        info, _ = principals.create_principal(session, vault.keys, role="resident", name=name, now=utcnow())
    return Caller(info.id, "resident")


def write(vault: Vault, who: Caller, content: dict) -> str:
    with vault.transaction() as session:
        return records.create_record(
            session, vault.keys, who, subject_id=who.id, category="health.labs", content=content, now=utcnow()
        ).id


def read(vault: Vault, who: Caller, record_id: str) -> dict:
    with vault.transaction() as session:
        return records.read_record(session, vault.keys, who, record_id, now=utcnow()).content


def every_subject_key_opens(vault: Vault) -> int:
    with vault.read_transaction() as session:
        rows = session.scalars(select(SubjectKey)).all()
    secrets = vault.keys.secrets.get_many(r.subject_id for r in rows)
    for row in rows:
        assert len(vault.keys.unwrap(row, secret=secrets[row.subject_id])) == 32
    return len(rows)


def test_rotation_over_10000_residents_while_others_read_and_write(fsettings, fvault, database_url):
    backend = "sqlite" if database_url.startswith("sqlite") else "postgres"
    count = RESIDENTS[backend]
    ids = bulk_residents(fvault, count)
    amina, tomasz = make_resident(fvault, "Amina"), make_resident(fvault, "Tomasz")
    written = {write(fvault, amina, {"n": i}): {"n": i} for i in range(20)}
    # A sample of the bulk residents get records too, sealed through the service.
    sample = [Caller(pid, "resident") for pid in ids[:: count // 20]]
    sampled = {write(fvault, who, {"who": who.id}): (who, {"who": who.id}) for who in sample}
    with fvault.read_transaction() as session:
        before = {(r.subject_id, r.version): bytes(r.wrapped) for r in session.scalars(select(SubjectKey))}

    # Another process's view: its own Vault on the same home and database, reloading the key file.
    other = Vault.open(fsettings)
    errors, reads, writes = [], [0], [0]
    done = threading.Event()

    def reader_writer():
        record_ids = list(written)
        i = 0
        while not done.is_set():
            try:
                record_id = record_ids[i % len(record_ids)]
                assert read(other, amina, record_id) == written[record_id]
                reads[0] += 1
                if i % 5 == 0:
                    new = write(other, tomasz, {"during": i})
                    assert read(other, tomasz, new) == {"during": i}
                    writes[0] += 1
            except Exception:
                import traceback

                errors.append(traceback.format_exc())
            i += 1
            time.sleep(0.005)  # a busy client, not a spin loop fighting the rotation for the interpreter

    thread = threading.Thread(target=reader_writer)
    thread.start()
    progressed = []
    started = time.perf_counter()
    try:
        report = key_rotation.rotate(fvault, progress=progressed.append)
    finally:
        elapsed = time.perf_counter() - started
        done.set()
        thread.join()
    print(
        f"\nrotation of {count + 2} residents on {backend}: {elapsed:.1f} s; concurrent reads {reads[0]}, writes "
        f"{writes[0]}"
    )
    assert errors == []
    assert reads[0] > 0 and writes[0] > 0
    assert report.version == 2 and report.new_version and report.remaining == 0 and report.skipped == 0
    assert report.subject_keys == count + 2
    assert sum(progressed) >= count and len(progressed) > 10  # batches, reported as they went

    # Every key re-wrapped under version 2; every record opens.
    with fvault.read_transaction() as session:
        rows = session.scalars(select(SubjectKey)).all()
        assert {r.master_key_version for r in rows} == {2}
        assert all(
            bytes(r.wrapped) != before[(r.subject_id, r.version)] for r in rows if (r.subject_id, r.version) in before
        )
        event = session.scalars(select(Event).where(Event.kind == "keys.rotated")).one()
    assert json.loads(event.data) == {
        "master_key_version": 2,
        "new_version": True,
        "subject_keys_rewrapped": count + 2,
        "names_resealed": count + 2,
        "remaining": 0,
    }
    assert event.subject_id is None
    assert every_subject_key_opens(fvault) == count + 2
    for record_id, content in written.items():
        assert read(fvault, amina, record_id) == content
    for record_id, (who, content) in sampled.items():
        assert read(fvault, who, record_id) == content

    # Before re-wrapping, the keyring without version 1 could not open the old wrapping ...
    v2_only = crypto.Keyring({2: read_keyring(fsettings.key_file).key(2)})
    row = next(r for r in rows if (r.subject_id, r.version) in before)
    secret = fvault.keys.secrets.get(row.subject_id)
    with pytest.raises(crypto.InvalidEnvelope):
        crypto.unwrap_key(
            v2_only.bound_to(secret, subject_id=row.subject_id),
            before[(row.subject_id, row.version)],
            subject_id=row.subject_id,
            version=row.version,
        )
    # ... and after it, version 1 retires and everything still opens, in a vault opened afresh.
    retired = key_rotation.retire(fvault)
    assert retired.retired == (1,) and retired.in_use == ()
    assert read_keyring(fsettings.key_file).versions == (2,)
    other.close()
    fresh = Vault.open(fsettings)
    try:
        assert fresh.keys.keyring.versions == (2,)
        assert every_subject_key_opens(fresh) == count + 2
        for record_id, content in written.items():
            assert read(fresh, amina, record_id) == content
        with fresh.read_transaction() as session:
            names = principals.list_principals(session, fresh.keys)
        assert {"Amina", "Tomasz"} <= {p.name for p in names}
        with fresh.read_transaction() as session:
            verify(session)
    finally:
        fresh.close()


def test_an_interrupted_rotation_resumes_without_a_new_version(fsettings, fvault, monkeypatch):
    bulk_residents(fvault, 3 * key_rotation.BATCH + 7)
    amina = make_resident(fvault)
    record_id = write(fvault, amina, {"a": 1})
    real = key_rotation._subject_key_batch
    calls = []

    def crash_after_two(*args, **kwargs):
        if len(calls) == 2:
            raise KeyboardInterrupt  # the operator's ^C, or a crash
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(key_rotation, "_subject_key_batch", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        key_rotation.rotate(fvault)
    monkeypatch.setattr(key_rotation, "_subject_key_batch", real)
    with fvault.read_transaction() as session:
        used = key_rotation.usage(session)
    assert used.subject_keys[2] == 2 * key_rotation.BATCH and used.subject_keys[1] > 0  # half way
    assert read(fvault, amina, record_id) == {"a": 1}  # both versions in use, both open
    # Retiring now would strand keys: refused.
    assert key_rotation.retire(fvault).in_use == (1,)
    assert read_keyring(fsettings.key_file).versions == (1, 2)

    assert key_rotation.plan(fvault) == (2, False)  # resume, no version 3
    report = key_rotation.rotate(fvault)
    assert report.version == 2 and not report.new_version and report.remaining == 0
    assert read_keyring(fsettings.key_file).versions == (1, 2)
    assert key_rotation.retire(fvault).retired == (1,)
    assert every_subject_key_opens(fvault) == 3 * key_rotation.BATCH + 8
    assert read(fvault, amina, record_id) == {"a": 1}


def test_a_second_rotation_adds_another_version(fvault, fsettings):
    amina = make_resident(fvault)
    record_id = write(fvault, amina, {"a": 1})
    assert key_rotation.rotate(fvault).version == 2
    assert key_rotation.rotate(fvault).version == 3
    assert key_rotation.retire(fvault).retired == (1, 2)
    assert read_keyring(fsettings.key_file).versions == (3,)
    assert read(fvault, amina, record_id) == {"a": 1}


def test_removing_a_version_still_in_use_by_hand_fails_at_start(fvault, fsettings):
    make_resident(fvault)
    ring = read_keyring(fsettings.key_file)
    write_keyring(fsettings.key_file, ring.rotated(), replace=True)  # version 2 added but nothing re-wrapped
    write_keyring(fsettings.key_file, crypto.Keyring({2: read_keyring(fsettings.key_file).key(2)}), replace=True)
    with pytest.raises(ConfigError, match=r"lacks version\(s\) \[1\]"):
        Vault.open(fsettings)


def test_environment_keyring_rotation_is_done_by_the_operator(tmp_path, database_url):
    key1 = base64.b64encode(os.urandom(32)).decode()
    settings = Settings(home=tmp_path, database_url=database_url, master_key=key1)
    vault = Vault.open(settings)
    amina = make_resident(vault)
    record_id = write(vault, amina, {"a": 1})
    with pytest.raises(ConfigError, match="CIVICVAULT_MASTER_KEY, which the vault cannot change"):
        key_rotation.rotate(vault)
    vault.close()
    key2 = base64.b64encode(os.urandom(32)).decode()
    both = Settings(home=tmp_path, database_url=database_url, master_key=f"1:{key1},2:{key2}")
    vault = Vault.open(both)
    try:
        report = key_rotation.rotate(vault)
        assert report.version == 2 and not report.new_version and report.subject_keys == 1
        retired = key_rotation.retire(vault)  # names what may go; the environment is the operator's to edit
        assert retired.retired == (1,)
        with vault.read_transaction() as session:
            assert session.scalars(select(Event).where(Event.kind == "keys.retired")).first() is None
        assert not (tmp_path / "master.key").exists()
    finally:
        vault.close()
    only2 = Vault.open(Settings(home=tmp_path, database_url=database_url, master_key=f"2:{key2}"))
    try:
        assert read(only2, amina, record_id) == {"a": 1}
    finally:
        only2.close()


def test_rotation_binds_keys_and_names_from_before_the_secret_store(fvault):
    """Data written before migration 0005 (scheme 1, master key alone) is bound to a secret by the next rotation."""
    amina = make_resident(fvault)
    record_id = write(fvault, amina, {"a": 1})
    with fvault.transaction() as session:  # rewrite Amina as a pre-0005 resident
        row = session.get(SubjectKey, (amina.id, 1))
        plain = fvault.keys.unwrap(row)
        row.wrapped = crypto.wrap_key(fvault.keys.keyring, plain, subject_id=amina.id, version=1)
        row.wrap_scheme = 1
        person = session.get(Principal, amina.id)
        person.name_sealed, person.name_scheme = fvault.keys.seal_name(amina.id, "Amina"), 1
    fvault.keys.secrets.destroy(amina.id)
    assert read(fvault, amina, record_id) == {"a": 1}
    with fvault.read_transaction() as session:
        assert key_rotation.usage(session).unbound_subject_keys == 1
    key_rotation.rotate(fvault)
    with fvault.read_transaction() as session:
        used = key_rotation.usage(session)
        assert used.unbound_subject_keys == 0 and used.unbound_resident_names == 0
        assert session.get(SubjectKey, (amina.id, 1)).wrap_scheme == 2
    assert fvault.keys.secrets.get(amina.id) is not None
    assert read(fvault, amina, record_id) == {"a": 1}


def test_cli_keys_status_rotate_retire(fsettings, fvault):
    amina = make_resident(fvault)
    record_id = write(fvault, amina, {"a": 1})
    runner = CliRunner()
    home = ["--home", str(fsettings.home)]
    env = {"CIVICVAULT_DATABASE_URL": fsettings.database_url, "CIVICVAULT_MASTER_KEY": ""}
    status = runner.invoke(cli, ["keys", "status", "--json", *home], env=env)
    assert status.exit_code == 0, status.output
    body = json.loads(status.stdout)
    assert body["current_version"] == 1 and body["versions"] == [
        {"version": 1, "in_keyring": True, "subject_keys": 1, "names": 1, "sign_in_credentials": 0}
    ]
    rotated = runner.invoke(cli, ["keys", "rotate", *home], env=env)
    assert rotated.exit_code == 0, rotated.output
    assert "master key version 2 (new): 1 subject key(s) re-wrapped" in rotated.stdout
    assert "re-wrapping" in rotated.stderr  # the progress bar goes to stderr
    retired = runner.invoke(cli, ["keys", "retire", *home], env=env)
    assert retired.exit_code == 0 and "retired master key version(s) [1]" in retired.stdout
    again = runner.invoke(cli, ["keys", "retire", *home], env=env)
    assert again.exit_code == 0 and "no old master key version to retire" in again.stdout
    both = runner.invoke(cli, ["keys", "rotate", "--retire", *home], env=env)
    assert both.exit_code == 0 and "retired master key version(s) [2]" in both.stdout
    assert read_keyring(fsettings.key_file).versions == (3,)
    with fvault.read_transaction() as session:
        retirements = [
            json.loads(e.data)
            for e in session.scalars(select(Event).where(Event.kind == "keys.retired").order_by(Event.ledger_index))
        ]
    assert retirements == [
        {"retired_versions": [1], "master_key_version": 2},
        {"retired_versions": [2], "master_key_version": 3},
    ]
    assert read(fvault, amina, record_id) == {"a": 1}  # this running vault followed the key file
    with_env = runner.invoke(
        cli,
        ["keys", "rotate", *home],
        env={**env, "CIVICVAULT_MASTER_KEY": f"3:{base64.b64encode(read_keyring(fsettings.key_file).key(3)).decode()}"},
    )
    assert with_env.exit_code == 1 and "CIVICVAULT_MASTER_KEY, which the vault cannot change" in with_env.stderr
    assert "Traceback" not in with_env.output


def test_a_wrong_secret_store_is_refused_at_start(vault_, settings, tmp_path):
    import dataclasses

    make_resident(vault_)
    elsewhere = dataclasses.replace(settings, secrets_url=f"sqlite:///{tmp_path / 'another-store.db'}")
    with pytest.raises(ConfigError, match="CIVICVAULT_SECRETS_DATABASE_URL"):
        Vault.open(elsewhere)
    Vault.open(settings).close()  # the right one opens
