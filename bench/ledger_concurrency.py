"""Concurrent appenders: the ledger under 16 writer threads, against plain inserts and pymerkle.

Each writer thread opens its own ``Vault`` (so its own engine and connection)
and, for a fixed time after a warm-up, appends one event at a time through
the vault's public path, each in its own committed transaction::

    with vault.transaction() as session:
        events.emit(session, DomainEvent(kind="access.permitted", ...))

The event is what a clinic's read under a grant emits
(``vault.consent.access``): action, category, purpose, the actor's role, the
basis and the grant's id, the record's id and version, with real-looking ids.
The ledger is first filled with ``PREFILL`` entries (``ledger.append_many``),
so appends land on a tree of some height, not an empty one.

An append counts when its transaction has committed and its commit ended
inside the measured window (``warmup`` seconds after all threads started, for
``duration`` seconds); the threads run until the window closes. A failed
append (an exception out of the transaction) is an error, counted and shown,
never a success. The sides run in turn, ``ROUNDS`` times (ours, baseline,
ours, ...), so that a change in a shared machine's load hits both; a rate is
the median over rounds, a ratio the median of the per-round ratios. At the
end the ledger's size must equal the prefill plus every committed append,
and ``verify`` must pass over the result.

* **PostgreSQL** (``CIVICVAULT_BENCH_POSTGRES_URL``, default
  ``postgresql://postgres@127.0.0.1:5432/test``): a throwaway schema,
  migrated by ``init_home``, dropped at the end. The baseline is the same 16
  threads, each with its own engine (``make_engine``, the vault's driver and
  settings), inserting one row per transaction into one table the bench
  creates in that schema: the event's own columns (kind, time, actor,
  subject, data JSON, a 32-byte salt and a body of the canonical body's
  size), a ``BIGSERIAL`` key and no other index. Target: appends/s >= 0.5x
  inserts/s. Skipped with one line when the server cannot be reached.
* **SQLite**, durable (WAL, ``synchronous=FULL``, ``BEGIN IMMEDIATE``: how the
  vault opens it). The baseline is pymerkle's ``SqliteTree`` appending our
  33-byte log entries with ``append_entry``, which commits each one, on its
  connection as shipped (rollback journal, ``synchronous=FULL``): the same
  durability per append as today's single-writer "durable appends"
  comparison. pymerkle runs two ways: one tree shared by the 16 threads (its
  documented way: calls are serialised by the tree's lock), and one tree per
  thread on the same file (SQLite's file lock serialises the commits); the
  target uses the faster of the two. Target: appends/s >= 2x pymerkle's.
"""

import base64
import dataclasses
import os
import secrets
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from vault.core.clock import rfc3339
from vault.core.config import SequencerSettings, Settings
from vault.core.ids import new_id
from vault.ledger import events, ledger
from vault.ledger.events import DomainEvent
from vault.runtime import Vault, init_home
from vault.storage.db import make_engine

try:
    import pymerkle
except ImportError:  # `pip install -e '.[bench]'`; `make bench` does it
    pymerkle = None

THREADS = 16
WARMUP, DURATION, ROUNDS = 2.0, 5.0, 3
QUICK_WARMUP, QUICK_DURATION = 0.1, 0.3
PREFILL = 10_000
QUICK_PREFILL = 200
POSTGRES_ENV = "CIVICVAULT_BENCH_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"

# The targets.
POSTGRES_TARGET = 0.5  # ours >= 0.5x plain single-row inserts, 16 threads
SQLITE_TARGET = 2.0  # ours >= 2x pymerkle's SqliteTree appends, 16 threads

SQLITE_TITLE = f"SQLite, {THREADS} writer threads, durable appends"
POSTGRES_TITLE = f"PostgreSQL, {THREADS} writer threads, appends"

PLAIN_TABLE = """CREATE TABLE bench_plain_rows (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    actor_id TEXT NOT NULL,
    subject_id TEXT,
    data TEXT NOT NULL,
    salt BYTEA NOT NULL,
    body BYTEA NOT NULL
)"""
PLAIN_INSERT = text(
    "INSERT INTO bench_plain_rows (kind, occurred_at, actor_id, subject_id, data, salt, body) "
    "VALUES (:kind, :occurred_at, :actor_id, :subject_id, :data, :salt, :body)"
)


# --- What is appended ------------------------------------------------------------


class Population:
    """Real-looking ids: clinics reading residents' records under the residents' grants."""

    def __init__(self, residents: int = 1_000, clinics: int = 50) -> None:
        self.residents = [new_id("p") for _ in range(residents)]
        self.clinics = [new_id("p") for _ in range(clinics)]
        self.grants = [new_id("g") for _ in range(residents)]
        self.records = [new_id("r") for _ in range(residents * 4)]

    def access(self, n: int) -> DomainEvent:
        """Event ``n``: a clinic's permitted read of a resident's record under a grant."""
        resident = n * 7919 % len(self.residents)
        return DomainEvent(
            kind="access.permitted",
            occurred_at=datetime.now(UTC),
            actor_id=self.clinics[n % len(self.clinics)],
            subject_id=self.residents[resident],
            data={
                "action": "read",
                "category": "health.labs",
                "purpose": "treatment",
                "actor_role": "clinic",
                "basis": "grant",
                "grant_id": self.grants[resident],
                "delegation_id": None,
                "break_glass_id": None,
                "flagged": False,
                "record_id": self.records[n * 31 % len(self.records)],
                "version": 1,
            },
        )

    def plain_row(self, n: int) -> dict:
        """The same event as one plain row: its columns, a salt and a body of the canonical body's size."""
        event = self.access(n)
        data_json = events.encode(event.data)
        body = (
            f'{{"actor_id":"{event.actor_id}","data":{data_json},"kind":"{event.kind}",'
            f'"occurred_at":"{rfc3339(event.occurred_at)}","subject_id":"{event.subject_id}","v":1}}'
        ).encode()
        return {
            "kind": event.kind,
            "occurred_at": event.occurred_at,
            "actor_id": event.actor_id,
            "subject_id": event.subject_id,
            "data": data_json,
            "salt": os.urandom(ledger.SALT_SIZE),
            "body": body,
        }


def emit_one(vault: Vault, event: DomainEvent) -> None:
    """One append through the vault's public path, in its own committed transaction."""
    with vault.transaction() as session:
        events.emit(session, event)


def prefill(vault: Vault, population: Population, count: int, batch: int = 1_000) -> None:
    for start in range(0, count, batch):
        rows = []
        for n in range(start, min(start + batch, count)):
            event = population.access(n)
            rows.append(
                {
                    "kind": event.kind,
                    "occurred_at": event.occurred_at,
                    "actor_id": event.actor_id,
                    "subject_id": event.subject_id,
                    "data_json": events.encode(event.data),
                }
            )
        with vault.transaction() as session:
            ledger.append_many(session, rows)


# --- Writer threads -------------------------------------------------------------


@dataclass
class Writers:
    """One side's run: ``ops`` committed inside the window of ``seconds``; ``total`` committed in all."""

    name: str
    threads: int
    seconds: float
    ops: int = 0
    total: int = 0
    errors: int = 0
    first_error: str | None = None

    @property
    def rate(self) -> float:
        return self.ops / self.seconds


# A writer: given its thread number, opens what it needs (in its thread) and returns (op, close); op(n) does
# one operation, n counting that thread's operations.
Setup = Callable[[int], tuple[Callable[[int], None], Callable[[], None]]]


def run_writers(name: str, setup: Setup, *, threads: int, warmup: float, duration: float) -> Writers:
    """``threads`` threads doing ``op`` back to back; counts what completed inside the measured window."""
    result = Writers(name=name, threads=threads, seconds=duration)
    lock = threading.Lock()
    ready = threading.Barrier(threads + 1)
    window: list[float] = []
    failures: list[BaseException] = []

    def writer(number: int) -> None:
        try:
            op, close = setup(number)
        except BaseException as exc:
            failures.append(exc)
            ready.abort()
            return
        ops = total = errors = 0
        first_error = None
        try:
            ready.wait()
            start, end = window
            n = 0
            while True:
                try:
                    op(n)
                except Exception as exc:  # counted and shown: a failed operation is never a success
                    errors += 1
                    first_error = first_error or f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                else:
                    total += 1
                    now = time.perf_counter()
                    if start <= now < end:
                        ops += 1
                n += 1
                if time.perf_counter() >= end:
                    break
        except threading.BrokenBarrierError:
            pass  # another writer failed to start: the run is reported as failed below
        finally:
            close()
            with lock:
                result.ops += ops
                result.total += total
                result.errors += errors
                result.first_error = result.first_error or first_error

    workers = [threading.Thread(target=writer, args=(i,), name=f"bench-writer-{i}") for i in range(threads)]
    for thread in workers:
        thread.start()
    try:
        now = time.perf_counter() + 0.05
        window.extend((now + warmup, now + warmup + duration))
        ready.wait()
    except threading.BrokenBarrierError:
        pass  # a writer failed to start; ``failures`` says which, after the join
    for thread in workers:
        thread.join()
    if failures:
        raise RuntimeError(f"{name}: a writer could not start") from failures[0]
    return result


VAULTS = 4  # writer threads share this many vaults, as gunicorn's threads share their worker's


def vault_writers(settings: Settings, population: Population, *, vaults: int = VAULTS, wait: bool = True) -> Setup:
    """The threads share ``vaults`` ``Vault`` objects (engines, pools, sequencers), as the threads of
    ``vaults`` server workers do; op: one ``events.emit`` in its own transaction, returning once the event
    is committed (durable). With ``wait`` (the default configuration) also once its receipt has its index;
    without (``CIVICVAULT_LEDGER_RECEIPT_WAIT_MS=0``) the receipt names the entry by its leaf hash and each
    vault's background sequencer, as in a server worker, gives the indices in batches meanwhile."""
    opened: dict[int, Vault] = {}
    users: dict[int, int] = {}
    loops: dict[int, tuple[threading.Event, threading.Thread]] = {}
    guard = threading.Lock()
    if not wait:
        settings = dataclasses.replace(settings, sequencer=SequencerSettings(receipt_wait_ms=0))

    def setup(number: int):
        slot = number % vaults
        with guard:
            if slot not in opened:
                opened[slot] = Vault.open(settings)
                if not wait:
                    stop = threading.Event()
                    loop = threading.Thread(
                        target=opened[slot].sequencer.run, args=(stop,), kwargs={"interval": 0.002}, daemon=True
                    )
                    loop.start()
                    loops[slot] = (stop, loop)
            users[slot] = users.get(slot, 0) + 1
            vault = opened[slot]

        def op(n: int) -> None:
            emit_one(vault, population.access(number * 1_000_003 + n))

        def close() -> None:
            with guard:
                users[slot] -= 1
                if not users[slot]:
                    if slot in loops:
                        stop, loop = loops.pop(slot)
                        stop.set()
                        loop.join()
                    opened.pop(slot).close()

        return op, close

    return setup


NO_WAIT = "vault appends (events.emit; index given in the background)"
WAITING = "vault appends, each waiting for its index"


def check_ledger(settings: Settings, expected: int) -> None:
    """The ledger holds every committed append once the sequencer has caught up, and verifies."""
    from vault.verification.verify import verify

    vault = Vault.open(settings)
    try:
        vault.sequencer.drain()
        with vault.read_transaction() as session:
            size = ledger.size(session)
            if size != expected:
                raise RuntimeError(f"the ledger holds {size:,} entries, {expected:,} were committed")
            report = verify(session)
            if report.size != expected:
                raise RuntimeError(f"verify checked {report.size:,} entries, {expected:,} were committed")
    finally:
        vault.close()


# --- PostgreSQL -----------------------------------------------------------------


@dataclass(frozen=True)
class Skipped:
    title: str
    reason: str


@dataclass
class Side:
    """One side's runs, one per round: rates are medians over rounds, errors and commits are sums."""

    name: str
    runs: list[Writers]

    @property
    def rate(self) -> float:
        return statistics.median(run.rate for run in self.runs)

    @property
    def errors(self) -> int:
        return sum(run.errors for run in self.runs)

    @property
    def total(self) -> int:
        return sum(run.total for run in self.runs)


@dataclass
class Comparison:
    """Ours against one or more baselines, in alternated rounds; the target is taken against the fastest."""

    title: str
    ours: Side
    baselines: list[Side]
    target: float
    where: str  # the database and its version
    also: list[Side] = dataclasses.field(default_factory=list)  # other ways of ours, shown against the same baselines

    @property
    def best(self) -> Side:
        return max(self.baselines, key=lambda side: side.rate)

    @staticmethod
    def ratio_to(ours: Side, base: Side) -> float:
        """The median of the per-round ratios."""
        pairs = zip(ours.runs, base.runs, strict=True)
        return statistics.median(o.rate / b.rate if b.rate else float("inf") for o, b in pairs)

    @property
    def ratio(self) -> float:
        return self.ratio_to(self.ours, self.best)

    @property
    def met(self) -> bool:
        return self.ratio >= self.target


def alternate(sides: list[tuple[str, Setup]], *, rounds: int, threads: int, warmup: float, duration: float, log):
    """Each side in turn, ``rounds`` times (A, B, A, B, ...), so that a change in the machine's load hits all."""
    results = [Side(name, []) for name, _ in sides]
    for round_no in range(1, rounds + 1):
        for (name, setup), side in zip(sides, results, strict=True):
            run = run_writers(name, setup, threads=threads, warmup=warmup, duration=duration)
            side.runs.append(run)
            log(
                f"  round {round_no}, {name}: {run.rate:,.0f}/s ({run.errors} errors"
                + (f"; first: {run.first_error}" if run.first_error else "")
                + ")"
            )
    return results


def postgres_url() -> str:
    return os.environ.get(POSTGRES_ENV) or DEFAULT_POSTGRES_URL


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def bench_postgres(workdir: Path, *, rounds: int, prefill_count: int, log, **timing) -> Comparison | Skipped:
    """Ours against plain single-row inserts on PostgreSQL; ``Skipped`` (and one line) when it cannot be reached."""
    import psycopg

    url = postgres_url()
    admin_url = url.replace("postgresql+psycopg://", "postgresql://")
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as connection:
            version = connection.info.server_version
            schema = f"cv_bench_ledger_{secrets.token_hex(4)}"
            connection.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        reason = f"{_shown(url)} ({POSTGRES_ENV}) cannot be reached: {first}"
        log(f"  PostgreSQL concurrent appends: skipped, {reason}")
        return Skipped(POSTGRES_TITLE, reason)
    separator = "&" if "?" in url else "?"
    schema_url = f"{url}{separator}options=-csearch_path%3D{schema}"
    where = f"PostgreSQL {version // 10000}.{version % 10000}"
    log(f"  {where} at {_shown(url)}, schema {schema} (dropped at the end)")
    try:
        home = workdir / "pg-home"
        home.mkdir()
        settings = Settings(home=home, database_url=schema_url, master_key=base64.b64encode(os.urandom(32)).decode())
        init_home(settings)
        population = Population()
        vault = Vault.open(settings)
        try:
            prefill(vault, population, prefill_count)
        finally:
            vault.close()
        engine = make_engine(schema_url)
        with engine.begin() as connection:
            connection.execute(text(PLAIN_TABLE))
        engine.dispose()

        def plain_setup(number: int):
            engine = make_engine(schema_url)

            def op(n: int) -> None:
                row = population.plain_row(number * 1_000_003 + n)
                with engine.begin() as connection:
                    connection.execute(PLAIN_INSERT, row)

            return op, engine.dispose

        ours, plain, waiting = alternate(
            [
                (NO_WAIT, vault_writers(settings, population, wait=False)),
                ("plain single-row inserts", plain_setup),
                (WAITING, vault_writers(settings, population)),
            ],
            rounds=rounds,
            log=log,
            **timing,
        )
        check_ledger(settings, prefill_count + ours.total + waiting.total)
        return Comparison(
            title=POSTGRES_TITLE, ours=ours, baselines=[plain], target=POSTGRES_TARGET, where=where, also=[waiting]
        )
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# --- SQLite against pymerkle --------------------------------------------------------


def bench_sqlite(workdir: Path, *, rounds: int, prefill_count: int, log, **timing) -> Comparison | Skipped:
    """Ours on SQLite against pymerkle's SqliteTree, shared and one per thread; ``Skipped`` without pymerkle."""
    if pymerkle is None:
        reason = "pymerkle is not installed (pip install -e '.[bench]')"
        log(f"  SQLite concurrent appends: skipped, {reason}")
        return Skipped(SQLITE_TITLE, reason)
    import sqlite3

    home = workdir / "sqlite-home"
    home.mkdir()
    settings = Settings(
        home=home,
        database_url=f"sqlite:///{home / 'vault.db'}",
        master_key=base64.b64encode(os.urandom(32)).decode(),
    )
    init_home(settings)
    population = Population()
    vault = Vault.open(settings)
    try:
        prefill(vault, population, prefill_count)
    finally:
        vault.close()

    def entry() -> bytes:  # a log entry of ours: version byte and commitment, 33 bytes
        return bytes([ledger.ENTRY_VERSION]) + os.urandom(32)

    shared_path, own_path = home / "pymerkle-shared.db", home / "pymerkle-per-thread.db"
    for path in (shared_path, own_path):
        with pymerkle.SqliteTree(str(path)) as tree:
            tree.append_entries([entry() for _ in range(prefill_count)])
    shared = pymerkle.SqliteTree(str(shared_path))

    def shared_setup(number: int):
        return (lambda n: shared.append_entry(entry())), (lambda: None)

    def own_setup(number: int):
        tree = pymerkle.SqliteTree(str(own_path))
        return (lambda n: tree.append_entry(entry())), tree.close

    try:
        ours, *baselines = alternate(
            [
                ("vault appends (events.emit)", vault_writers(settings, population)),
                ("pymerkle append_entry, one tree shared by the threads", shared_setup),
                ("pymerkle append_entry, one tree per thread", own_setup),
            ],
            rounds=rounds,
            log=log,
            **timing,
        )
    finally:
        shared.close()
    check_ledger(settings, prefill_count + ours.total)
    for path, side in ((shared_path, baselines[0]), (own_path, baselines[1])):
        with pymerkle.SqliteTree(str(path)) as tree:
            if tree.get_size() != prefill_count + side.total:
                raise RuntimeError(
                    f"pymerkle's tree holds {tree.get_size():,} leaves, {prefill_count + side.total:,} were appended"
                )
    return Comparison(
        title=SQLITE_TITLE,
        ours=ours,
        baselines=baselines,
        target=SQLITE_TARGET,
        where=f"SQLite {sqlite3.sqlite_version}, pymerkle {pymerkle.__version__}",
    )


def run(workdir: Path, *, quick: bool, log=print) -> list[Comparison | Skipped]:
    """Both comparisons; under ``quick`` the SQLite one in under a few seconds and PostgreSQL skipped."""
    options = {
        "threads": THREADS,
        "warmup": QUICK_WARMUP if quick else WARMUP,
        "duration": QUICK_DURATION if quick else DURATION,
        "rounds": 1 if quick else ROUNDS,
        "prefill_count": QUICK_PREFILL if quick else PREFILL,
        "log": log,
    }
    log(
        f"\nConcurrent appenders: {THREADS} writer threads, {options['rounds']} alternated round(s) of "
        f"{options['duration']:g} s measured after {options['warmup']:g} s warm-up, on a ledger that starts with "
        f"{options['prefill_count']:,} entries"
    )
    results: list[Comparison | Skipped] = []
    log("SQLite (WAL, synchronous=FULL) against pymerkle's SqliteTree:")
    results.append(bench_sqlite(workdir, **options))
    log("PostgreSQL against plain single-row inserts:")
    if quick:
        log("  PostgreSQL concurrent appends: skipped under --quick")
        results.append(Skipped(POSTGRES_TITLE, "skipped under --quick"))
    else:
        results.append(bench_postgres(workdir, **options))
    return results
