"""Engines: errors carry no values, and durability settings are checked, never assumed."""

import secrets
import traceback

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from tests.conftest import new_master_key
from vault.cli.main import cli
from vault.core.config import Settings
from vault.core.errors import ConfigError
from vault.runtime import Vault, init_home
from vault.storage.db import check_postgres_durability, check_sqlite_durability, make_engine


def with_query(url: str, query: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{query}"


# --- hide_parameters -----------------------------------------------------------------------------


def test_a_database_error_names_no_value(database_url):
    secret = f"token-hash-{secrets.token_hex(8)}"
    other = f"sealed-{secrets.token_hex(8)}"
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            connection.execute(text("CREATE TEMPORARY TABLE cv_probe (id VARCHAR(80) PRIMARY KEY, note VARCHAR(80))"))
            connection.execute(text("INSERT INTO cv_probe VALUES (:id, :note)"), {"id": secret, "note": other})
            with pytest.raises(IntegrityError) as caught:
                connection.execute(text("INSERT INTO cv_probe VALUES (:id, :note)"), {"id": secret, "note": other})
    finally:
        engine.dispose()
    error = caught.value
    shown = "".join(traceback.format_exception(error))  # what a logged traceback prints, the driver's error included
    assert "INSERT INTO cv_probe" in str(error)  # the statement is still named ...
    assert "parameters hidden" in str(error)
    assert secret not in str(error) and other not in str(error)  # ... its values are not
    assert secret not in shown and other not in shown
    assert secret not in str(error.orig)
    if database_url.startswith("postgresql"):
        # PostgreSQL's DETAIL line quoted the key; it stays available to code, not in the text.
        assert secret in (error.orig.diag.message_detail or "")  # type: ignore[union-attr]


def test_a_caller_cannot_switch_parameters_back_on(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}", hide_parameters=False)
    assert engine.hide_parameters is True
    engine.dispose()


# --- durability: SQLite --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("nolock=1", "nolock=1"),
        ("uri=true&nolock=1", "nolock=1"),
        ("uri=true&immutable=1", "immutable=1"),
        ("uri=true&vfs=unix-none", "vfs=unix-none"),
        ("uri=true&mode=ro", "mode=ro"),
        ("uri=true&mode=memory", "mode=memory"),
        ("uri=true&NoLock=1", "nolock=1"),
    ],
)
def test_sqlite_options_that_defeat_locking_or_durability_are_refused(tmp_path, query, named):
    url = with_query(f"sqlite:///{tmp_path / 'vault.db'}", query)
    with pytest.raises(ConfigError) as caught:
        init_home(Settings(home=tmp_path / "home", database_url=url, master_key=new_master_key()))
    assert caught.value.detail == (
        f"The SQLite database URL sets {named}, which gives up the locking or durability the vault needs: "
        "remove it from the URL."
    )
    assert not (tmp_path / "vault.db").exists()


def test_an_existing_vault_refuses_to_open_with_nolock(tmp_path):
    url = f"sqlite:///{tmp_path / 'vault.db'}"
    settings = Settings(home=tmp_path / "home", database_url=url, master_key=new_master_key())
    init_home(settings)
    Vault.open(settings).close()
    for query in ("nolock=1", "uri=true&nolock=1"):
        with pytest.raises(ConfigError, match="nolock=1"):
            Vault.open(
                Settings(home=settings.home, database_url=with_query(url, query), master_key=settings.master_key)
            )


def test_safe_sqlite_options_are_kept(tmp_path):
    url = f"sqlite:///file:{tmp_path / 'vault.db'}?uri=true&mode=rwc"
    settings = Settings(home=tmp_path / "home", database_url=url, master_key=new_master_key())
    init_home(settings)
    vault = Vault.open(settings)
    with vault.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2
    vault.close()


def test_a_database_where_the_pragmas_do_not_take_is_refused(tmp_path):
    # An in-memory database cannot use the write-ahead log: journal_mode stays "memory".
    with pytest.raises(ConfigError) as caught:
        init_home(Settings(home=tmp_path / "home", database_url="sqlite://", master_key=new_master_key()))
    assert caught.value.detail.startswith("SQLite runs this database with journal_mode=memory and synchronous=2, ")


@pytest.mark.parametrize(("mode", "synchronous"), [("delete", 2), ("wal", 1), ("wal", 0), ("truncate", 3)])
def test_sqlite_pragmas_other_than_wal_and_full_are_refused(mode, synchronous):
    with pytest.raises(ConfigError, match=f"journal_mode={mode} and synchronous={synchronous}"):
        check_sqlite_durability(mode, synchronous)


@pytest.mark.parametrize(("mode", "synchronous"), [("wal", 2), ("WAL", 3)])
def test_wal_with_full_or_extra_is_accepted(mode, synchronous):
    check_sqlite_durability(mode, synchronous)


def test_init_with_nolock_is_one_sentence_and_a_non_zero_exit(tmp_path):
    url = f"sqlite:///{tmp_path / 'vault.db'}?uri=true&nolock=1"
    result = CliRunner().invoke(cli, ["init", "--home", str(tmp_path / "home")], env={"CIVICVAULT_DATABASE_URL": url})
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: The SQLite database URL sets nolock=1, which gives up the locking or durability the vault needs: "
        "remove it from the URL."
    )
    assert not (tmp_path / "home" / "master.key").exists()


# --- durability: PostgreSQL ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("found", "said"),
    [
        ({"fsync": "off", "synchronous_commit": "on"}, "PostgreSQL runs with fsync=off"),
        ({"fsync": "on", "synchronous_commit": "off"}, "PostgreSQL runs this session with synchronous_commit=off"),
        ({"fsync": "OFF", "synchronous_commit": "off"}, "PostgreSQL runs with fsync=OFF"),
    ],
)
def test_postgres_settings_that_lose_commits_are_refused(found, said):
    with pytest.raises(ConfigError) as caught:
        check_postgres_durability(found)
    assert caught.value.detail.startswith(said)


@pytest.mark.parametrize("level", ["on", "local", "remote_write", "remote_apply"])
def test_postgres_synchronous_commit_levels_that_wait_for_disk_are_accepted(level):
    check_postgres_durability({"fsync": "on", "synchronous_commit": level})


@pytest.mark.postgres
def test_postgres_with_synchronous_commit_off_is_refused_at_start(tmp_path, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL setting")
    settings = Settings(home=tmp_path / "home", database_url=database_url, master_key=new_master_key())
    init_home(settings)
    Vault.open(settings).close()  # the same database, as configured: it opens
    # The test URL already has options (its search_path): the setting joins them.
    assert "options=-c" in database_url
    unsafe = database_url.replace("options=-c", "options=-csynchronous_commit%3Doff%20-c", 1)
    bad = Settings(home=settings.home, database_url=unsafe, master_key=settings.master_key)
    with pytest.raises(ConfigError, match="synchronous_commit=off"):
        Vault.open(bad)
    with pytest.raises(ConfigError, match="synchronous_commit=off"):
        init_home(bad)
    result = CliRunner().invoke(
        cli,
        ["init", "--home", str(tmp_path / "other")],
        env={"CIVICVAULT_DATABASE_URL": unsafe, "CIVICVAULT_MASTER_KEY": new_master_key()},
    )
    assert result.exit_code == 1 and result.output.startswith(
        "Error: PostgreSQL runs this session with synchronous_commit=off, which loses acknowledged writes"
    )


_TURN_HOLDER = """
import sys
from vault.storage.db import WriterQueue
queue = WriterQueue(sys.argv[1])
with queue.turn():
    print("held", flush=True)
    sys.stdin.readline()
"""


def test_sqlite_writers_queue_across_processes_and_wake_at_once(tmp_path):
    """The writers' queue (vault.storage.db.WriterQueue): another process's turn blocks ours, and its release
    wakes us at once, not after a busy handler's sleep."""
    import subprocess
    import sys
    import threading
    import time

    from vault.storage.db import WriterQueue

    path = str(tmp_path / "vault.db-writer.lock")
    holder = subprocess.Popen(
        [sys.executable, "-c", _TURN_HOLDER, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        queue = WriterQueue(path)
        got: list[float] = []

        def take() -> None:
            with queue.turn():
                got.append(time.monotonic())

        waiter = threading.Thread(target=take)
        waiter.start()
        time.sleep(0.3)
        assert not got  # blocked while the other process holds its turn
        released = time.monotonic()
        holder.stdin.write("go\n")
        holder.stdin.flush()
        waiter.join(timeout=10)
        assert got and got[0] - released < 0.1
        queue.close()
    finally:
        holder.kill()
        holder.wait()


def test_a_vault_on_sqlite_queues_its_writers_and_postgresql_needs_no_queue(vault_):
    queue = vault_.writers
    if vault_.engine.dialect.name == "postgresql":
        assert queue is None
    else:
        assert queue is not None and queue.path.endswith("vault.db-writer.lock")
