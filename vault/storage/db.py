"""Engines and sessions for SQLite (the embedded default) and PostgreSQL.

SQLite runs in WAL mode with ``synchronous=FULL`` and foreign keys on. Every
transaction starts with ``BEGIN IMMEDIATE``: in this vault even a read appends
to the ledger, so transactions are writers, and taking the write lock up front
lets SQLite's busy timeout queue concurrent writers instead of failing them
with "database is locked" when a reader tries to upgrade.
"""

from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Result, create_engine, event
from sqlalchemy.engine import make_url
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
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}, **kwargs
        )
        _configure_sqlite(engine)
        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_engine(parsed, pool_pre_ping=True, **kwargs)
    raise ConfigError(f"Unsupported database {parsed.get_backend_name()!r}: use SQLite or PostgreSQL.")


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Let SQLAlchemy's "begin" event below decide when transactions start.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")


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
