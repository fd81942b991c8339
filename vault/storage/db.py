"""Engines and sessions for SQLite (the embedded default) and PostgreSQL.

SQLite runs in WAL mode with ``synchronous=FULL`` and foreign keys on. Every
transaction starts with ``BEGIN IMMEDIATE``: in this vault even a read appends
to the ledger, so transactions are writers, and taking the write lock up front
lets SQLite's busy timeout queue concurrent writers instead of failing them
with "database is locked" when a reader tries to upgrade.

Errors carry no values. Every engine is made with ``hide_parameters=True``,
so a statement's parameters (ids, token hashes, sealed bytes) never appear in
an exception's text, in a log line or a traceback. PostgreSQL adds a
``DETAIL`` line that quotes the values of a violated key
(``Key (id)=(...) already exists``): only the first line of its messages is
kept (the fields stay available to code, in ``orig.diag``).

Durability is checked, never assumed. A record is acknowledged only once its
transaction is on disk, so every new connection checks that it is: on SQLite
that the journal is the write-ahead log and ``synchronous`` is ``FULL`` (or
``EXTRA``) once the pragmas ran, and the URL may not switch off locking or
writing (``nolock``, ``immutable``, ``vfs``, ``mode=ro``/``memory``); on
PostgreSQL that ``fsync`` is on and ``synchronous_commit`` is not ``off``.
Otherwise opening the database fails with one sentence (``ConfigError``), so
``init``, ``Vault.open`` and ``serve`` refuse to start rather than lose
acknowledged writes in a crash.
"""

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Result, create_engine, event
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from vault.core.errors import ConfigError

SQLITE_BUSY_TIMEOUT_S = 30
# Execution option marking an engine whose transactions only read (see
# Vault.read_transaction): on SQLite they begin DEFERRED, not IMMEDIATE.
READ_ONLY = "civicvault_read_only"


def normalise_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and use the psycopg 3 driver for them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, **kwargs) -> Engine:
    try:
        parsed = make_url(normalise_url(url))
    except ArgumentError:
        raise ConfigError(f"Cannot parse the database URL {url!r}.") from None
    kwargs["hide_parameters"] = True  # on every engine, whatever a caller passed
    if parsed.get_backend_name() == "sqlite":
        _refuse_unsafe_sqlite_options(dict(parsed.query))
        engine = create_engine(
            parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}, **kwargs
        )
        _configure_sqlite(engine)
        return engine
    if parsed.get_backend_name() == "postgresql":
        engine = create_engine(parsed, pool_pre_ping=True, **kwargs)
        event.listen(engine, "handle_error", _first_line_only)
        event.listen(engine, "connect", _check_postgres_connection)
        return engine
    raise ConfigError(f"Unsupported database {parsed.get_backend_name()!r}: use SQLite or PostgreSQL.")


# SQLite URI parameters (https://sqlite.org/uri.html) that switch off locking or writing, or keep the
# database in memory: with them a write can be lost, or fail only once requests arrive.
_UNSAFE_SQLITE_OPTIONS = {"nolock", "immutable", "vfs"}
_SAFE_SQLITE_MODES = {"rw", "rwc"}
_DURABLE_SQLITE_SYNCHRONOUS = {2, 3}  # FULL, EXTRA


def _refuse_unsafe_sqlite_options(query: dict[str, Any]) -> None:
    options = {name.lower(): value for name, value in query.items()}
    unsafe = sorted(name for name in options if name in _UNSAFE_SQLITE_OPTIONS)
    mode = options.get("mode")
    if mode is not None and str(mode).lower() not in _SAFE_SQLITE_MODES:
        unsafe.append("mode")
    if unsafe:
        named = ", ".join(f"{name}={options[name]}" for name in unsafe)
        raise ConfigError(
            f"The SQLite database URL sets {named}, which gives up the locking or durability the vault needs: "
            "remove it from the URL."
        )


def check_sqlite_durability(journal_mode: str, synchronous: int) -> None:
    """Refuse a SQLite connection on which the pragmas did not take effect."""
    if journal_mode.lower() != "wal" or synchronous not in _DURABLE_SQLITE_SYNCHRONOUS:
        raise ConfigError(
            f"SQLite runs this database with journal_mode={journal_mode} and synchronous={synchronous}, "
            "not the write-ahead log with synchronous=FULL (2) that keeps acknowledged writes: "
            "use a database file on a local disk, with no options in the URL that change how it is written."
        )


def check_postgres_durability(settings: dict[str, str]) -> None:
    """Refuse a PostgreSQL session that may lose acknowledged commits (``SHOW fsync``, ``SHOW synchronous_commit``)."""
    if settings["fsync"].lower() != "on":
        raise ConfigError(
            f"PostgreSQL runs with fsync={settings['fsync']}, which loses acknowledged writes in a crash: "
            "set fsync=on in postgresql.conf."
        )
    if settings["synchronous_commit"].lower() == "off":
        raise ConfigError(
            "PostgreSQL runs this session with synchronous_commit=off, which loses acknowledged writes in a crash: "
            "remove it from the URL's options, the role's or database's settings (ALTER ROLE/DATABASE ... RESET "
            "synchronous_commit) or postgresql.conf."
        )


def _check_postgres_connection(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        found = {}
        for name in ("fsync", "synchronous_commit"):
            cursor.execute(f"SHOW {name}")
            found[name] = str(cursor.fetchone()[0])
    finally:
        cursor.close()
        dbapi_connection.rollback()  # SHOW opened a transaction; leave the connection idle
    check_postgres_durability(found)


def _first_line(exc: BaseException | None) -> None:
    if exc is not None and exc.args and isinstance(exc.args[0], str) and "\n" in exc.args[0].strip():
        exc.args = (exc.args[0].strip().splitlines()[0], *exc.args[1:])


def _first_line_only(context: ExceptionContext) -> None:
    """PostgreSQL's ``DETAIL``, ``HINT`` and ``CONTEXT`` lines may quote values: keep the first line only.

    Both the driver's exception and SQLAlchemy's, which copied the driver's
    text, are trimmed in place, so a logged traceback (which shows both) holds
    no value either.
    """
    _first_line(context.original_exception)
    wrapped = context.sqlalchemy_exception
    if wrapped is not None and wrapped.args and isinstance(wrapped.args[0], str):
        wrapped.args = (wrapped.args[0].split("\n", 1)[0], *wrapped.args[1:])


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Let SQLAlchemy's "begin" event below decide when transactions start.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            journal_mode = str(cursor.execute("PRAGMA journal_mode=WAL").fetchone()[0])
            cursor.execute("PRAGMA synchronous=FULL")
            synchronous = int(cursor.execute("PRAGMA synchronous").fetchone()[0])
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        finally:
            cursor.close()
        check_sqlite_durability(journal_mode, synchronous)

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")


class WriterQueue:
    """Writers to one SQLite database wait their turn in a queue, not in SQLite's busy handler.

    SQLite lets one transaction write at a time; a writer that finds the lock
    taken sleeps in its busy handler, in steps of up to 100 ms, and tries
    again, so under load most of a request's time is spent asleep while the
    lock is free. Here writers of this process queue on a lock, and the
    processes of one database on an exclusive ``flock`` of a file beside it
    (``<database>-writer.lock``): the kernel wakes the next writer the moment
    the lock is released. Held from before ``BEGIN IMMEDIATE`` to after the
    commit or rollback. (Lock-file libraries poll with sleeps too, which is
    what this replaces.) Writers that do not take the queue (another program)
    still meet SQLite's busy handler, so correctness never depends on it.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._threads = threading.Lock()
        self._fd: int | None = None
        self._pid = 0

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        with self._threads:
            if self._fd is None or self._pid != os.getpid():
                # Opened per process: a forked worker sharing its parent's open file would share its lock.
                self._fd, self._pid = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600), os.getpid()
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        with self._threads:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = None


def writer_queue(engine: Engine) -> WriterQueue | None:
    """The queue for a SQLite database file; ``None`` for PostgreSQL and in-memory SQLite."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return WriterQueue(f"{database}-writer.lock")


def make_sessions(engine: Engine) -> sessionmaker[Session]:
    # Services return plain dataclasses, so objects need not survive commit.
    return sessionmaker(bind=engine, expire_on_commit=False)


def describe_db_error(exc: Exception) -> str:
    """The first line of a driver's error message, for one-sentence reports."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return (text.splitlines() or [type(exc).__name__])[0].rstrip(".")


def rowcount(result: Result[Any]) -> int:
    """The rows an UPDATE or DELETE matched (``Session.execute`` is typed as returning a plain ``Result``)."""
    return cast(CursorResult[Any], result).rowcount
