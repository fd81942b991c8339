"""The subject-secret store: one random 32-byte secret per resident, kept apart.

Every key and name sealed for a resident under the master keyring is sealed
under ``HKDF(master key, this secret, subject id)`` (``Keyring.bound_to``).
The secret lives in its own database, never in the main one, so that erasure
can destroy it: afterwards a copy of the main database taken at any earlier
time, opened with the master key, still yields nothing of that resident
(docs/operations.md, "Erasure"). By default it is ``subject-secrets.db`` in
the data home; ``CIVICVAULT_SECRETS_DATABASE_URL`` points it elsewhere (a
separate PostgreSQL database when several hosts serve one vault).

The store commits on its own: a secret is created (and committed) before the
main transaction that uses it, and destroyed before the main transaction that
erases the rest. A secret whose main transaction rolled back is an orphan and
harmless; a resident whose secret is gone can no longer be read, which is
what erasure wants even if its main transaction has not yet run.

A destroyed secret must be gone from the files too, not only from the table.
On SQLite every connection sets ``PRAGMA secure_delete=ON`` (whatever the
host's SQLite was built with), so a deleted row is overwritten with zeros in
the database file, and ``destroy`` then truncates the write-ahead log, where
the page that held the secret may still sit. PostgreSQL keeps deleted rows in
its heap files until they are rewritten: ``vacuum`` (``civicvault maintenance
vacuum-secrets``) rewrites the table with ``VACUUM FULL`` (docs/operations.md,
"Serving and durability").
"""

import logging
import os
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, LargeBinary, String, bindparam, delete, event, func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from crypto import SECRET_SIZE
from vault.core.clock import utcnow
from vault.core.errors import ConfigError
from vault.storage.db import READ_ONLY, describe_db_error, make_engine, make_sessions, rowcount
from vault.storage.models import UTCDateTime

log = logging.getLogger("civicvault.secrets")


def _secure_delete(dbapi_connection: Any, _record: Any) -> None:
    """Deleted content is overwritten with zeros, however the host's SQLite was built (sqlite.org/pragma.html)."""
    dbapi_connection.execute("PRAGMA secure_delete=ON")
    if dbapi_connection.execute("PRAGMA secure_delete").fetchone()[0] != 1:
        raise ConfigError("This SQLite cannot overwrite deleted data (secure_delete), which erasure needs.")


class _Base(DeclarativeBase):
    """The secret store's own metadata: its one table never joins the main schema or its migrations."""


class SubjectSecret(_Base):
    __tablename__ = "subject_secrets"

    subject_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    secret: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


# Every seal or open of a resident's data starts with this lookup: built once, run without the ORM.
_SECRET = select(SubjectSecret.__table__.c.secret).where(
    SubjectSecret.__table__.c.subject_id == bindparam("subject_id")
)


class SecretStore:
    """Create, fetch and destroy subject secrets, each call its own transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = make_sessions(engine)
        self.read_engine = engine.execution_options(**{READ_ONLY: True})
        self.read_sessions = make_sessions(self.read_engine)

    @classmethod
    def open(cls, url: str) -> "SecretStore":
        engine = make_engine(url)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _secure_delete)
        try:
            _Base.metadata.create_all(engine)  # one table, created if missing
        except OperationalError as exc:
            engine.dispose()
            raise ConfigError(f"Cannot reach the subject-secret store: {describe_db_error(exc)}.") from None
        return cls(engine)

    def get(self, subject_id: str) -> bytes | None:
        """The subject's secret, or None once destroyed: one short read-only transaction, one Core statement."""
        with self.read_engine.begin() as connection:
            secret = connection.execute(_SECRET, {"subject_id": subject_id}).scalar()
        return None if secret is None else bytes(secret)

    def get_many(self, subject_ids: Iterable[str]) -> dict[str, bytes]:
        ids = sorted(set(subject_ids))
        found: dict[str, bytes] = {}
        with self.read_sessions.begin() as session:
            for start in range(0, len(ids), 500):
                rows = session.execute(
                    select(SubjectSecret.subject_id, SubjectSecret.secret).where(
                        SubjectSecret.subject_id.in_(ids[start : start + 500])
                    )
                )
                found.update((sid, bytes(secret)) for sid, secret in rows)
        return found

    def ensure(self, subject_id: str) -> bytes:
        """The subject's secret, created (and committed) if it has none yet."""
        existing = self.get(subject_id)
        if existing is not None:
            return existing
        try:
            with self.sessions.begin() as session:
                session.add(SubjectSecret(subject_id=subject_id, secret=os.urandom(SECRET_SIZE), created_at=utcnow()))
        except IntegrityError:
            pass  # created concurrently: use that one
        secret = self.get(subject_id)
        if secret is None:
            raise ConfigError("The subject-secret store did not keep a new secret.")
        return secret

    def add_many(self, subject_ids: Iterable[str]) -> None:
        """Bulk creation, for tools that create many residents at once."""
        now = utcnow()
        with self.sessions.begin() as session:
            session.add_all(
                SubjectSecret(subject_id=sid, secret=os.urandom(SECRET_SIZE), created_at=now) for sid in subject_ids
            )

    def destroy(self, subject_id: str) -> bool:
        """Delete the subject's secret, and on SQLite its bytes from the files; True when there was one."""
        with self.sessions.begin() as session:
            found = rowcount(session.execute(delete(SubjectSecret).where(SubjectSecret.subject_id == subject_id))) > 0
        if self.engine.dialect.name == "sqlite":
            self._truncate_wal()
        return found

    def _truncate_wal(self) -> None:
        """Copy the write-ahead log into the (secure-deleted) database file and cut the log to zero bytes.

        The log still holds the page as it was before the delete; truncating
        it is what removes those bytes. ``TRUNCATE`` waits (up to the busy
        timeout) for readers to finish; if some are still reading, the log
        is truncated at a later checkpoint, and this says so.
        """
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            busy = (cursor.fetchone() or (1,))[0]
            cursor.close()
        finally:
            raw.close()
        if busy:
            log.warning("the subject-secret store's write-ahead log is in use; it is truncated at a later checkpoint")

    def vacuum(self) -> str:
        """Rewrite the store so that no deleted secret survives in its files; what was done, in words.

        PostgreSQL: ``VACUUM FULL subject_secrets`` writes the live rows into
        new files and removes the old ones, deleted rows included (a plain
        ``VACUUM`` only marks their space reusable). It locks the table for
        the moment it takes: the table holds one short row per resident.
        SQLite: ``VACUUM`` (which also clears rows deleted before
        ``secure_delete`` was on) and a truncating checkpoint.
        """
        if self.engine.dialect.name == "postgresql":
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.exec_driver_sql(f"VACUUM FULL {SubjectSecret.__tablename__}")
            return f"VACUUM FULL {SubjectSecret.__tablename__}: the table was rewritten without its deleted rows"
        raw = self.engine.raw_connection()
        try:
            raw.cursor().execute("VACUUM")  # outside any transaction: the store's connections autocommit
        finally:
            raw.close()
        self._truncate_wal()
        return "VACUUM and a truncating checkpoint: the file was rewritten without its deleted rows"

    def count(self) -> int:
        with self.read_sessions.begin() as session:
            return session.scalar(select(func.count()).select_from(SubjectSecret)) or 0

    def close(self) -> None:
        self.engine.dispose()
