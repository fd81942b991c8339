"""A running vault: settings, database, sessions and keys, opened once.

``init_home`` creates a data home (idempotent, never overwrites keys, and
never creates a master key for a database that already holds data sealed
under one; on a restored database it names what is left to do when
residents were erased after the copy was taken); ``Vault.open`` refuses to
start without a master key, with a database whose schema is not current,
with a master key that does not open the data, or with a database whose
durability settings did not take effect (``vault.storage.db``), each with
one clear sentence. A restored database that lacks residents erased since it
was taken is not refused: ``civicvault replay-erasures`` erases them again
(docs/operations.md, "Restoring").
"""

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from crypto import Keyring
from vault.core.clock import utcnow
from vault.core.config import Settings
from vault.core.errors import ConfigError, RecordUnreadable, VaultError
from vault.core.keyfile import write_keyring
from vault.keys import attestation_key, ledger_key
from vault.keys.key_rotation import residents_without_secret
from vault.keys.keys import KeyStore
from vault.keys.subject_secrets import SecretStore
from vault.ledger import ledger
from vault.ledger.events import emit
from vault.ledger.group_commit import GroupCommit
from vault.ledger.sequencer import Sequencer
from vault.storage import schema
from vault.storage.db import READ_ONLY, describe_db_error, make_engine, make_sessions, writer_queue
from vault.storage.models import Principal, SubjectKey

MAX_LISTED = 100_000  # residents without a secret counted by ``init`` (beyond: "N+")


@dataclass
class InitReport:
    home_created: bool = False
    key_created: bool = False
    ledger_key_created: bool = False
    attestation_key_created: bool = False
    notes: list[str] = field(default_factory=list)


def _holds_sealed_data(engine: Engine) -> bool:
    """Whether the database already holds principals or subject keys (sealed under some master key)."""
    try:
        with engine.connect() as connection:
            tables = set(inspect(connection).get_table_names())
            return any(
                connection.execute(text(f"SELECT 1 FROM {table} LIMIT 1")).first() is not None
                for table in ("principals", "subject_keys")
                if table in tables
            )
    except OperationalError as exc:
        raise ConfigError(f"Cannot reach the database: {describe_db_error(exc)}.") from None


def init_home(settings: Settings) -> InitReport:
    """Create the home, the master key file and the schema, as far as missing.

    A database that already holds data is never given a new master key: with
    no key (neither file nor ``CIVICVAULT_MASTER_KEY``) ``init`` refuses, and
    with a key it checks, once the schema is current, that the key opens the
    data (as ``Vault.open`` does), so a wrong key is refused here and not
    discovered by every request.
    """
    report = InitReport()
    if not settings.home.exists():
        settings.home.mkdir(parents=True, mode=0o700)
        report.home_created = True
    elif not settings.home.is_dir():
        raise ConfigError(f"{settings.home} exists and is not a directory.")
    engine = make_engine(settings.database_url)
    try:
        existing = _holds_sealed_data(engine)
        if settings.master_key is not None:
            settings.load_keyring()  # validate it
            report.notes.append("master key taken from CIVICVAULT_MASTER_KEY; no key file written")
        elif not settings.key_file.exists():
            if existing:
                raise ConfigError(
                    f"The database already holds data sealed under a master key and there is no key at "
                    f"{settings.key_file}: restore that key file (or set CIVICVAULT_MASTER_KEY); init never "
                    "creates a new key for an existing database."
                )
            write_keyring(settings.key_file, Keyring({1: os.urandom(32)}))
            report.key_created = True
        else:
            settings.load_keyring()  # an unreadable key file is an error, never replaced
        report.ledger_key_created = ledger_key.create(settings.ledger_key_file)
        report.attestation_key_created = attestation_key.create(settings.attestation_key_file)
        SecretStore.open(settings.secrets_database_url).close()  # the subject-secret store, created if missing
        try:
            schema.upgrade(engine)
        except OperationalError as exc:
            raise ConfigError(f"Cannot reach the database: {describe_db_error(exc)}.") from None
    finally:
        engine.dispose()
    if existing:
        vault = Vault.open(settings)  # the key must open the data that is there
        try:
            gone = residents_without_secret(vault, limit=MAX_LISTED)
        finally:
            vault.close()
        if gone:
            # A database backup older than some erasures was restored: say what finishes them.
            report.notes.append(
                f"{len(gone)}{'+' if len(gone) == MAX_LISTED else ''} resident(s) not marked erased have no "
                "subject secret (erased after this database copy was taken): run 'civicvault replay-erasures' "
                'before serving (docs/operations.md, "Restoring")'
            )
    return report


class Vault:
    """The services' shared state for one process."""

    def __init__(self, settings: Settings, engine: Engine, keys: KeyStore) -> None:
        self.settings = settings
        self.engine = engine
        self.keys = keys
        self.limits = settings.limits
        # The clock services are given; tests replace it to freeze time.
        self.clock: Callable[[], datetime] = utcnow
        self.sessions: sessionmaker[Session] = make_sessions(engine)
        self.read_sessions: sessionmaker[Session] = make_sessions(engine.execution_options(**{READ_ONLY: True}))
        keys.clock = lambda: self.clock()  # events the key store emits follow the vault's clock
        self.writers = writer_queue(engine)  # SQLite: writers queue here, not in the busy handler
        self.ledger_state = ledger.LedgerState(
            max_pending=settings.sequencer.max_pending,
            inline=engine.dialect.name == "sqlite" and settings.sequencer.mode == "server",
        )
        # SQLite: a process's writers share transactions and their commits (vault.ledger.group_commit).
        self.group = (
            GroupCommit(engine, self.writers, sequence=settings.sequencer.mode == "server")
            if self.writers is not None
            else None
        )
        self.sequencer = Sequencer(
            write=self.write_transaction,
            read=self.read_transaction,
            settings=settings.sequencer,
            state=self.ledger_state,
            postgres=engine.dialect.name == "postgresql",
        )

    def now(self) -> datetime:
        return self.clock()

    @classmethod
    def open(cls, settings: Settings) -> "Vault":
        keyring = settings.load_keyring()
        engine = make_engine(settings.database_url)
        try:
            current = schema.is_current(engine)  # the first connection: durability is checked here
        except OperationalError as exc:
            engine.dispose()
            raise ConfigError(f"Cannot reach the database: {describe_db_error(exc)}.") from None
        except BaseException:
            engine.dispose()
            raise
        if not current:
            engine.dispose()
            raise ConfigError("The database schema is missing or out of date: run 'civicvault init'.")
        try:
            secrets = SecretStore.open(settings.secrets_database_url)
        except Exception:
            engine.dispose()
            raise
        keys = KeyStore(
            keyring,
            secrets=secrets,
            source=None if settings.master_key is not None else settings.key_file,
            max_uses=settings.subject_key_max_uses,
        )
        vault = cls(settings, engine, keys)
        try:
            vault.check_master_key()
            vault.check_subject_secrets()
        except Exception:
            vault.close()
            raise
        return vault

    def check_master_key(self) -> None:
        """Refuse to start with a master key that does not open this database.

        Opens the oldest principal's sealed name and checks that every master
        key version that wrapped a subject key is in the keyring, so a wrong
        ``CIVICVAULT_MASTER_KEY`` fails at start-up, not on every request.
        """
        with self.read_transaction() as session:
            used = set(session.scalars(select(SubjectKey.master_key_version).distinct()))
            missing = sorted(used - set(self.keys.keyring.versions))
            if missing:
                raise ConfigError(f"The master keyring lacks version(s) {missing} used by this database.")
            first = session.scalars(
                select(Principal)
                .where(Principal.name_scheme == 1, Principal.erased_at.is_(None))
                .order_by(Principal.created_at, Principal.id)
                .limit(1)
            ).first()
            if first is not None:
                try:
                    self.keys.open_name(first.id, first.name_sealed)
                except RecordUnreadable:
                    raise ConfigError(
                        "The master key does not open this database's data: is it the right key?"
                    ) from None

    def check_subject_secrets(self) -> None:
        """Refuse to start with a subject-secret store that does not belong to this database.

        Looks at the newest bound subject keys of residents not erased first,
        then, if none of them has a secret, at all of them: a restored older
        database lacks the secrets of the residents erased since it was taken
        (perhaps every one of the newest; docs/operations.md, "Restoring"),
        which is no reason to refuse. When no resident's secret is there, the
        store is the wrong one; a secret that is there must open its
        resident's key.
        """
        with self.read_transaction() as session:
            bound = (
                select(SubjectKey)
                .join(Principal, Principal.id == SubjectKey.subject_id)
                .where(SubjectKey.wrap_scheme == 2, Principal.erased_at.is_(None))
                .order_by(SubjectKey.created_at.desc(), SubjectKey.subject_id)
            )
            rows = session.scalars(bound.limit(50)).all()
            if not rows:
                return
            found = self.keys.secrets.get_many(r.subject_id for r in rows) if self.keys.secrets is not None else {}
            row = next((r for r in rows if r.subject_id in found), None)
            if row is None and self.keys.secrets is not None:
                ids = session.scalars(
                    select(SubjectKey.subject_id)
                    .join(Principal, Principal.id == SubjectKey.subject_id)
                    .where(SubjectKey.wrap_scheme == 2, Principal.erased_at.is_(None))
                    .distinct()
                ).all()
                found = self.keys.secrets.get_many(ids)
                if found:
                    row = session.scalars(bound.where(SubjectKey.subject_id.in_(sorted(found)[:500])).limit(1)).first()
            if row is None:
                raise ConfigError(
                    "The subject-secret store lacks the secrets of this database's residents: "
                    "is CIVICVAULT_SECRETS_DATABASE_URL right?"
                )
            try:
                self.keys.unwrap(row, secret=found[row.subject_id])
            except RecordUnreadable:
                raise ConfigError(
                    "The master key and subject-secret store do not open this database's data: is it the right key?"
                ) from None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: commits on success, rolls back on any error.

        A ``VaultError`` that carries events (a refused access) has them
        recorded in a transaction of their own after the rollback, so that a
        refusal leaves its trace although the action left nothing.

        The events are committed as pending; after the commit this waits (a
        bounded time, ``vault.ledger.sequencer``) for the sequencer to give
        them their indices, which it fills into the receipts in place.
        """
        try:
            with self.write_transaction() as session:
                yield session
                receipts = ledger.receipts_of(session)
        except VaultError as exc:
            if exc.events:
                with self.write_transaction() as session:
                    for event in exc.events:
                        emit(session, event)
                    receipts = ledger.receipts_of(session)
                self.sequencer.settle(receipts)
            raise
        self.sequencer.settle(receipts)

    @contextlib.contextmanager
    def write_transaction(self) -> Iterator[Session]:
        """A write transaction and nothing more (no refusal events, no waiting for receipts).

        On a SQLite file it is one member of a batch of the process's writers,
        committed together (``vault.ledger.group_commit``), returning once
        the batch is committed; the batches take turns in the writers' queue
        (``vault.storage.db.WriterQueue``).
        """
        if self.group is not None:
            with self.group.member({ledger.STATE: self.ledger_state}) as session:
                yield session
            return
        with self.writers.turn() if self.writers is not None else contextlib.nullcontext():
            with self.sessions.begin() as session:
                session.info[ledger.STATE] = self.ledger_state
                yield session

    @contextlib.contextmanager
    def read_transaction(self) -> Iterator[Session]:
        """A transaction that only reads (authentication, health checks).

        On SQLite it begins DEFERRED, so in WAL mode it never waits for the
        write lock; it must not write.
        """
        with self.read_sessions.begin() as session:
            yield session

    def close(self) -> None:
        self.engine.dispose()
        if self.writers is not None:
            self.writers.close()
        if self.keys.secrets is not None:
            self.keys.secrets.close()
