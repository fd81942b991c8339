"""An erased resident's secret is gone from the secret store's files, not only from its table.

SQLite: the store sets ``secure_delete`` itself, so a host whose SQLite is
built without it (the upstream default) still overwrites the row, and
``destroy`` truncates the write-ahead log, which holds the page as it was.
The files are read byte by byte. PostgreSQL: ``civicvault maintenance
vacuum-secrets`` rewrites the table (``VACUUM FULL``).
"""

import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, event, text

from tests.conftest import POSTGRES_URL
from vault.cli.main import cli
from vault.keys.subject_secrets import SecretStore
from vault.storage.db import make_engine


@pytest.fixture
def built_without_secure_delete() -> Iterator[None]:
    """Every new SQLite connection starts with secure_delete off, as SQLite's default build has it."""

    def off(dbapi_connection, _record):
        if isinstance(dbapi_connection, sqlite3.Connection):
            dbapi_connection.execute("PRAGMA secure_delete=OFF")

    event.listen(Engine, "connect", off, insert=True)
    yield
    event.remove(Engine, "connect", off)


def on_disk(path: Path) -> bytes:
    """The database file and its write-ahead log, as a forensic reader would take them."""
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def test_the_store_turns_secure_delete_on_whatever_the_build(tmp_path, built_without_secure_delete):
    probe = make_engine(f"sqlite:///{tmp_path / 'probe.db'}")
    with probe.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA secure_delete").scalar() == 0  # the simulated build
    probe.dispose()
    store = SecretStore.open(f"sqlite:///{tmp_path / 'secrets.db'}")
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
    store.close()


def test_a_destroyed_secret_leaves_no_byte_in_the_files(tmp_path, built_without_secure_delete):
    path = tmp_path / "secrets.db"
    store = SecretStore.open(f"sqlite:///{path}")
    try:
        subjects = [f"p-{secrets.token_hex(8)}" for _ in range(50)]
        for subject in subjects:
            store.ensure(subject)
        kept = store.get_many(subjects)
        victim, neighbour = subjects[25], subjects[26]
        secret = kept[victim]
        assert secret in on_disk(path)  # the reader below can see a secret when there is one

        assert store.destroy(victim) is True
        assert store.get(victim) is None
        disk = on_disk(path)
        assert secret not in disk
        assert victim.encode() not in disk
        assert kept[neighbour] in disk and store.get(neighbour) == kept[neighbour]
        # The write-ahead log was cut to nothing; nothing of the old page waits in it.
        wal = path.with_name(path.name + "-wal")
        assert not wal.exists() or wal.stat().st_size == 0
        assert store.destroy(victim) is False
    finally:
        store.close()


def test_vacuum_secrets_clears_rows_deleted_before_secure_delete(tmp_path):
    """A store whose rows were deleted by an older version (or by hand) without secure_delete."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    path = home / "subject-secrets.db"
    SecretStore.open(f"sqlite:///{path}").close()  # the table
    leftover = secrets.token_bytes(32)
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("PRAGMA secure_delete=OFF")
        connection.execute("INSERT INTO subject_secrets VALUES ('p-old', ?, '2026-01-01 00:00:00')", (leftover,))
        connection.commit()
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.execute("DELETE FROM subject_secrets WHERE subject_id = 'p-old'")
        connection.commit()
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert leftover in on_disk(path)  # deleted, yet in the file

    result = CliRunner().invoke(
        cli, ["maintenance", "vacuum-secrets", "--home", str(home)], env={"CIVICVAULT_SECRETS_DATABASE_URL": None}
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("subject-secret store: VACUUM and a truncating checkpoint")
    assert leftover not in on_disk(path)


@pytest.fixture
def postgres_store() -> Iterator[SecretStore]:
    if not POSTGRES_URL:
        pytest.skip("CIVICVAULT_TEST_POSTGRES_URL is not set")
    schema = f"cv_secrets_{secrets.token_hex(6)}"
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{POSTGRES_URL}{'&' if '?' in POSTGRES_URL else '?'}options=-csearch_path%3D{schema}"
    store = SecretStore.open(url)
    store.url = url  # type: ignore[attr-defined]
    try:
        yield store
    finally:
        store.close()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.mark.postgres
def test_vacuum_secrets_rewrites_the_postgres_table(postgres_store, tmp_path):
    store = postgres_store
    subjects = [f"p-{secrets.token_hex(8)}" for _ in range(20)]
    for subject in subjects:
        store.ensure(subject)
    secret = store.get(subjects[0])
    assert secret is not None
    store.destroy(subjects[0])

    def heap() -> tuple[int, bytes | None]:
        with store.engine.connect() as connection:
            node = connection.execute(text("SELECT pg_relation_filenode('subject_secrets')")).scalar_one()
            superuser = connection.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).scalar()
            if not superuser:
                return node, None
            connection.execute(text("CHECKPOINT"))  # shared buffers to the heap file
            data = connection.execute(
                text("SELECT pg_read_binary_file(pg_relation_filepath('subject_secrets'))")
            ).scalar_one()
            return node, bytes(data)

    before, bytes_before = heap()
    if bytes_before is not None:
        assert secret in bytes_before  # deleted, yet in the heap file until the table is rewritten

    result = CliRunner().invoke(
        cli,
        ["maintenance", "vacuum-secrets", "--home", str(tmp_path / "home")],
        env={"CIVICVAULT_SECRETS_DATABASE_URL": store.url},  # type: ignore[attr-defined]
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("subject-secret store: VACUUM FULL subject_secrets")

    after, bytes_after = heap()
    assert after != before  # a new file: the old one, with the deleted row, is gone
    if bytes_after is not None:
        assert secret not in bytes_after
    assert store.get_many(subjects).keys() == set(subjects[1:])
