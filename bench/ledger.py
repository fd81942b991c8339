"""The ledger against pymerkle's SQLite tree, side by side in one run on SQLite.

For each size N (default 10^4, 10^5, 10^6), in a temporary directory, both
logs get the same N entries: our ledger ``N`` ``access.permitted`` events,
pymerkle's ``SqliteTree`` our RFC 9162 log entries (``0x01 || commitment``,
33 bytes, read back from our ledger), so both trees hash the same leaves with
the same SHA-256 and the bench checks that both roots are equal.

* **Appends, durable** (the target's figure): the last ``DURABLE`` (1,000)
  entries one at a time, each committed before the next, as the vault appends
  (every action is its own transaction). Ours: ``ledger.append`` in its own
  ``Vault.transaction`` (SQLite WAL, ``synchronous=FULL``); theirs:
  ``tree.append_entry``, which commits each entry (pymerkle's defaults:
  rollback journal, ``synchronous=FULL``).
* **Appends, batched**: the first ``N - DURABLE`` entries 1,000 per
  transaction: ours ``ledger.append_many``, theirs ``append_entries``. Shown
  for what it says about the cost of each design, not a target.
* **Inclusion proofs.** Random leaves (one seeded sequence, same for both).
  Ours: ``ledger.inclusion(session, leaf_index=i, tree_size=N)``, each in its
  own ``Vault.read_transaction`` as the API serves one. Theirs:
  ``tree.prove_inclusion(i + 1, N)`` answered from its SQLite file, with its
  in-memory cache disabled (the target's figure: what the tree's storage
  gives, as a fresh process or a proof of a leaf not asked before gets), and,
  shown apart, with its default subroot cache warmed by proving each of the
  10,000 leaves once (a long-running process that keeps subtree hashes in
  memory). Best of three runs of ``seconds`` each (one for the cold tree).
* **Full verification.** ``vault.verify.verify(session)`` in a subprocess
  (its time, and the peak resident set size of that whole process, ``VmHWM``).
  The hashlib limit is the time Python takes for the same number of SHA-256
  calls on inputs of the same sizes in a tight loop: ``3N + popcount(N) - 2``
  calls, counted (``count_verify_hashes``) at the smallest size: per entry one
  commitment (``27 + 32 + len(body)`` bytes) and one leaf hash (34 bytes);
  ``N - popcount(N)`` interior nodes, each computed once and compared with the
  stored one; ``popcount(N) - 1`` to fold the peaks into the root and as many
  for the root served from stored nodes (65 bytes each).
* **Read floor** (``read_floor``): in the same process, right after each
  verify, the time to read what verify reads with nothing done to it: the
  events with verify's columns and the stored nodes with verify's query, one
  level at a time, on the driver's own cursor ``READ_BATCH`` rows per
  ``fetchmany``, as verify reads them; plus the hashlib limit. The search
  categories' read is timed too and shown apart, outside the floor. Target:
  verify <= 1.5x the floor.
* **Concurrent appenders**: bench/ledger_concurrency.py (16 writer threads;
  PostgreSQL against plain inserts, SQLite against pymerkle).

The run ends by printing the ledger targets' tables and, unless told not to,
rewriting them in docs/performance.md between ``TARGETS_START`` and
``TARGETS_END``.

Run ``python -m bench --ledger [--sizes 10000,100000,1000000] [--quick]``.
"""

import base64
import hashlib
import itertools
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from bench import http as http_bench
from bench import ledger_concurrency
from crypto import merkle
from vault.core.config import Settings
from vault.ledger import ledger
from vault.ledger.events import encode
from vault.runtime import Vault, init_home
from vault.storage.models import Event

try:
    import pymerkle
except ImportError:  # `pip install -e '.[bench]'`; `make bench` does it
    pymerkle = None

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (500, 1_000)
QUICK_DURABLE = 50  # durable appends in a --quick run (each pays an fsync)
BATCH = 1_000  # appends per transaction in the batched fill, ours and pymerkle's
DURABLE = 1_000  # appends committed one at a time, at the end of the fill
SEED = 9162
BASE_TIME = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)

# The targets.
APPEND_TARGET = 2.0  # ours >= 2x pymerkle appends/s
PROOF_TARGET = 50.0  # ours >= 50x pymerkle proofs/s at PROOF_TARGET_SIZE
PROOF_TARGET_SIZE = 100_000
FLAT_TARGET = 1.5  # proof time at the largest size <= 1.5x that at the smallest
VERIFY_TARGET = 3.0  # verify <= 3x the hashlib limit at the largest size
MEMORY_TARGET_MB = 256
READ_FLOOR_TARGET = 1.5  # verify <= 1.5x the read floor (read_floor + the hashlib limit)

TARGETS_SECTION = "## Ledger targets: concurrent appenders and the read floor"
TARGETS_START, TARGETS_END = "<!-- bench-ledger-targets:start -->", "<!-- bench-ledger-targets:end -->"


def event_args(i: int) -> dict:
    """Event number ``i``: an access under a grant, the vault's most common event."""
    data = {
        "action": "read",
        "category": "health.labs",
        "purpose": "treatment",
        "actor_role": "clinic",
        "basis": "grant",
        "grant_id": f"g_{i % 997:022d}",
        "delegation_id": None,
        "break_glass_id": None,
        "flagged": False,
        "record_id": f"r_{i:022d}",
    }
    return {
        "kind": "access.permitted",
        "occurred_at": BASE_TIME + timedelta(milliseconds=i),
        "actor_id": f"p_{i % 101:022d}",
        "subject_id": f"p_{1000 + i % 1009:022d}",
        "data_json": encode(data),
    }


def open_vault(home: Path, master_key: str) -> Vault:
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'vault.db'}", master_key=master_key)
    init_home(settings)
    return Vault.open(settings)


# --- Filling -------------------------------------------------------------------


def fill_batched(vault: Vault, start: int, count: int) -> float:
    """Events ``start .. start + count - 1`` through ``ledger.append_many``.

    ``BATCH`` per transaction; returns the seconds spent in transactions.
    """
    elapsed, index, end = 0.0, start, start + count
    while index < end:
        batch = [event_args(i) for i in range(index, min(index + BATCH, end))]
        began = time.perf_counter()
        with vault.transaction() as session:
            ledger.append_many(session, batch)
        elapsed += time.perf_counter() - began
        index += len(batch)
    return elapsed


def fill_bulk(vault: Vault, count: int) -> float:
    """An empty ledger filled with ``count`` events by ``fill_batched`` (tests build large ledgers with it)."""
    return fill_batched(vault, 0, count)


def fill_durable(vault: Vault, start: int, count: int) -> float:
    """Events ``start .. start + count - 1`` through ``ledger.append``, each in its own committed transaction."""
    args = [event_args(i) for i in range(start, start + count)]
    began = time.perf_counter()
    for one in args:
        with vault.transaction() as session:
            ledger.append(session, **one)
    return time.perf_counter() - began


def log_entries(vault: Vault):
    """Our RFC 9162 log entries (``0x01 || commitment``) in index order, recomputed from the stored rows."""
    with vault.engine.connect() as connection:
        rows = connection.execution_options(yield_per=BATCH).execute(
            select(Event.salt, Event.body).order_by(Event.ledger_index)
        )
        for salt, body in rows:
            yield ledger.entry_bytes(bytes(salt), bytes(body))


def fill_pymerkle(path: Path, vault: Vault, durable: int) -> tuple[float, float]:
    """pymerkle's ``SqliteTree`` with our N entries: all but the last ``durable`` by ``append_entries``
    (``BATCH`` per call), the rest by ``append_entry`` (one commit each). Seconds spent in each."""
    tree = pymerkle.SqliteTree(str(path), algorithm="sha256")
    entries = list(log_entries(vault))
    batched = 0.0
    head = entries[: len(entries) - durable]
    for start in range(0, len(head), BATCH):
        batch = head[start : start + BATCH]
        began = time.perf_counter()
        tree.append_entries(batch)
        batched += time.perf_counter() - began
    began = time.perf_counter()
    for entry in entries[len(entries) - durable :]:
        tree.append_entry(entry)
    one_by_one = time.perf_counter() - began
    tree.close()
    return batched, one_by_one


# --- Proofs --------------------------------------------------------------------


def best_rate(fn, indices: list[int], *, seconds: float, repeats: int = 3) -> list[float]:
    """Operations per second of each of ``repeats`` runs of at least ``seconds`` (and one call)."""
    cycle = itertools.cycle(indices)
    rates = []
    for _ in range(repeats):
        n, began = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - began) < seconds or n == 0:
            fn(next(cycle))
            n += 1
        rates.append(n / elapsed)
    return rates


def our_proof(vault: Vault, size: int):
    def prove(index: int):
        with vault.read_transaction() as session:
            return ledger.inclusion(session, leaf_index=index, tree_size=size)

    return prove


def check_our_proof(vault: Vault, size: int, index: int) -> bytes:
    proof = our_proof(vault, size)(index)
    root = bytes.fromhex(proof.root_hash)
    merkle.verify_inclusion(
        index, size, bytes.fromhex(proof.leaf_hash), [bytes.fromhex(h) for h in proof.audit_path], root
    )
    return root


# --- Verification and the hashlib limit ----------------------------------------


def verify_hash_count(size: int) -> int:
    """SHA-256 calls ``vault.verify.verify`` makes for a ledger of ``size`` entries (see the module docstring)."""
    return 3 * size + size.bit_count() - 2 if size else 0


def count_verify_hashes(vault: Vault) -> int:
    """Count the SHA-256 calls of one ``verify`` (hashlib.sha256 wrapped for its duration)."""
    from vault.verification.verify import verify

    real, calls = hashlib.sha256, 0

    def counting(*args, **kwargs):
        nonlocal calls
        calls += 1
        return real(*args, **kwargs)

    hashlib.sha256 = counting
    try:
        with vault.read_transaction() as session:
            verify(session)
    finally:
        hashlib.sha256 = real
    return calls


def hashlib_limit(size: int, body_size: int, repeats: int = 3) -> float:
    """Best-of-``repeats`` seconds for ``verify_hash_count(size)`` SHA-256 calls on inputs of verify's sizes."""
    sha256 = hashlib.sha256
    commitment_input = bytes(len(ledger.ENTRY_DOMAIN) + 1 + ledger.SALT_SIZE + body_size)
    leaf_input, node_input = bytes(1 + 1 + 32), bytes(1 + 32 + 32)
    nodes = verify_hash_count(size) - 2 * size
    best = float("inf")
    for _ in range(repeats):
        began = time.perf_counter()
        for _ in range(size):
            sha256(commitment_input).digest()
        for _ in range(size):
            sha256(leaf_input).digest()
        for _ in range(nodes):
            sha256(node_input).digest()
        best = min(best, time.perf_counter() - began)
    return best


def run_verify(home: Path, master_key: str, workers: int = 1, *, read_floor: bool = False) -> dict:
    """``verify`` of the ledger in ``home``, in a fresh process, with ``workers`` processes: seconds and peak RSS.

    With ``read_floor``, the same process then times ``read_floor`` (after verify's figures are taken).
    """
    env = {
        **os.environ,
        "CIVICVAULT_MASTER_KEY": master_key,
        "BENCH_VERIFY_WORKERS": str(workers),
        "BENCH_READ_FLOOR": "1" if read_floor else "",
    }
    result = subprocess.run(
        [sys.executable, "-m", "bench.ledger", "--verify-worker", str(home)],
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"verify failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _peak_rss_kib() -> int:
    """This process's peak resident set size in KiB.

    Linux's ``VmHWM`` belongs to the process image, so it starts afresh at
    ``exec``; ``ru_maxrss`` does not (a child started with vfork, as
    ``subprocess`` does, inherits the parent's peak), so it is only the fallback.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # no /proc: the kernel's rusage peak
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


READ_BATCH = 2048  # rows per fetchmany, as verify fetches them (vault.verification.verify.BATCH)
EVENT_COLUMNS = "ledger_index, kind, occurred_at, actor_id, subject_id, data, salt, body, outcome, purpose, erased_by"


def _read_all(cursor, sql: str, params: tuple) -> int:
    """Every row of ``sql`` through a plain DB-API cursor, ``READ_BATCH`` at a time (verify's style); the count."""
    cursor.execute(sql, params)
    count = 0
    while rows := cursor.fetchmany(READ_BATCH):
        count += len(rows)
    return count


def read_floor(vault: Vault, size: int) -> dict:
    """Seconds to read the rows verify reads, with nothing done to them: the events (verify's columns), the
    stored nodes (one ordered query per level, as verify streams them) and, apart, the search categories.

    Through the vault's engine (the same driver and connection settings), in a read transaction, on the
    driver's own cursor (SQLite) fetched ``READ_BATCH`` rows at a time, as verify reads them.
    """
    with vault.read_transaction() as session:
        connection = session.connection()
        if connection.dialect.name != "sqlite":
            raise RuntimeError("the read floor is measured on SQLite, where the ledger benchmark runs")
        cursor = connection.connection.driver_connection.cursor()
        try:
            began = time.perf_counter()
            events = _read_all(
                cursor,
                f"SELECT {EVENT_COLUMNS} FROM events WHERE ledger_index >= ? AND ledger_index < ? "
                "ORDER BY ledger_index",
                (0, size),
            )
            events_s = time.perf_counter() - began
            began, nodes = time.perf_counter(), 0
            for level in range(size.bit_length()):
                nodes += _read_all(
                    cursor,
                    "SELECT idx, hash FROM ledger_nodes WHERE level = ? AND idx >= ? AND idx < ? ORDER BY idx",
                    (level, 0, size >> level),
                )
            nodes_s = time.perf_counter() - began
            began = time.perf_counter()
            categories = _read_all(
                cursor,
                "SELECT ledger_index, category FROM event_categories WHERE ledger_index >= ? AND ledger_index < ? "
                "ORDER BY ledger_index, category",
                (0, size),
            )
            categories_s = time.perf_counter() - began
        finally:
            cursor.close()
    if events != size:
        raise RuntimeError(f"read {events:,} events of {size:,}")
    return {
        "events_read_s": events_s,
        "nodes_read_s": nodes_s,
        "categories_read_s": categories_s,
        "nodes_read": nodes,
        "categories_read": categories,
    }


def _verify_worker(home: str) -> None:
    from vault.verification.verify import verify

    home_path = Path(home)
    settings = Settings(
        home=home_path,
        database_url=f"sqlite:///{home_path / 'vault.db'}",
        master_key=os.environ["CIVICVAULT_MASTER_KEY"],
    )
    vault = Vault.open(settings)
    workers = int(os.environ.get("BENCH_VERIFY_WORKERS", "1"))
    before = _peak_rss_kib()
    began = time.perf_counter()
    with vault.read_transaction() as session:
        report = verify(session, workers=workers)
    seconds = time.perf_counter() - began
    after = _peak_rss_kib()
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the largest worker's peak, KiB
    floor = read_floor(vault, report.size) if os.environ.get("BENCH_READ_FLOOR") else {}
    vault.close()
    print(
        json.dumps(
            {
                **floor,
                "seconds": seconds,
                "size": report.size,
                "root": report.root,
                "nodes": report.nodes,
                "rss_before_mb": before / 1024,
                "peak_rss_mb": after / 1024,
                "worker_peak_mb": children / 1024,
                "workers": workers,
            }
        )
    )


# --- One size ------------------------------------------------------------------


@dataclass
class Result:
    size: int
    durable_rate: float = 0.0
    batched_rate: float = 0.0
    pm_durable_rate: float | None = None
    pm_batched_rate: float | None = None
    proof_rate: float = 0.0
    pm_cold_proof_rate: float | None = None
    pm_warm_proof_rate: float | None = None
    pm_warm_up_rate: float | None = None
    verify_s: float = 0.0
    hashlib_s: float = 0.0
    peak_mb: float = 0.0
    par_workers: int = 0
    par_verify_s: float | None = None
    par_peak_total_mb: float | None = None
    rss_before_mb: float = 0.0
    hash_calls: int = 0
    events_read_s: float = 0.0  # the read floor's parts (read_floor), best of the verify runs
    nodes_read_s: float = 0.0
    categories_read_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def read_floor_s(self) -> float:
        """Reading the events and nodes verify reads, plus hashlib for the SHA-256 calls it makes."""
        return self.events_read_s + self.nodes_read_s + self.hashlib_s


def bench_size(
    size: int,
    workdir: Path,
    *,
    seconds: float,
    count_hashes: bool,
    durable: int = DURABLE,
    verify_runs: int = 3,
    log=print,
) -> Result:
    home = workdir / f"n{size}"
    home.mkdir()
    master_key = base64.b64encode(os.urandom(32)).decode()
    vault = open_vault(home, master_key)
    result = Result(size=size)
    durable = min(durable, size // 2)
    try:
        result.batched_rate = (size - durable) / fill_batched(vault, 0, size - durable)
        result.durable_rate = durable / fill_durable(vault, size - durable, durable)
        log(
            f"  ours: {result.durable_rate:,.0f} durable appends/s (ledger.append, one commit each, last {durable:,}); "
            f"{result.batched_rate:,.0f}/s batched (ledger.append_many, {BATCH:,} per transaction)"
        )
        with vault.read_transaction() as session:
            assert ledger.size(session) == size
            our_root = ledger.root(session, size)
            body_size = len(session.scalar(select(Event.body).where(Event.ledger_index == 0)))

        rng = random.Random(SEED)
        indices = [rng.randrange(size) for _ in range(10_000)]
        check_our_proof(vault, size, indices[0])
        result.proof_rate = max(best_rate(our_proof(vault, size), indices, seconds=seconds))
        log(f"  ours: {result.proof_rate:,.0f} proofs/s")

        if pymerkle is not None:
            tree_path = home / "pymerkle.db"
            batched, one_by_one = fill_pymerkle(tree_path, vault, durable)
            result.pm_batched_rate, result.pm_durable_rate = (size - durable) / batched, durable / one_by_one
            log(
                f"  pymerkle: {result.pm_durable_rate:,.0f} durable appends/s (append_entry); "
                f"{result.pm_batched_rate:,.0f}/s batched (append_entries, {BATCH:,} per call)"
            )
            with pymerkle.SqliteTree(str(tree_path)) as tree:  # a separate object: its cache stays out of the proofs
                if tree.get_size() != size or tree.get_root(size) != our_root:
                    raise RuntimeError("pymerkle's tree differs from ours: the comparison would not be fair")
                proof = tree.prove_inclusion(indices[0] + 1, size)
                pymerkle.verify_inclusion(
                    tree.get_leaf(indices[0] + 1), our_root, proof, index=indices[0] + 1, size=size
                )
            with pymerkle.SqliteTree(str(tree_path), disable_cache=True) as tree:
                result.pm_cold_proof_rate = best_rate(
                    lambda i: tree.prove_inclusion(i + 1, size), indices, seconds=seconds, repeats=1
                )[0]
            with pymerkle.SqliteTree(str(tree_path)) as tree:  # fresh: its default cache starts cold
                began = time.perf_counter()
                for index in indices:  # one pass over the leaves the runs ask for: the cache is then warm
                    tree.prove_inclusion(index + 1, size)
                result.pm_warm_up_rate = len(indices) / (time.perf_counter() - began)
                result.pm_warm_proof_rate = max(
                    best_rate(lambda i: tree.prove_inclusion(i + 1, size), indices, seconds=seconds)
                )
            log(
                f"  pymerkle: {result.pm_cold_proof_rate:,.1f} proofs/s from its SQLite file (cache disabled); "
                f"{result.pm_warm_proof_rate:,.0f}/s with its cache warm (warm-up pass of {len(indices):,} proofs "
                f"{result.pm_warm_up_rate:,.0f}/s)"
            )
            tree_path.unlink()

        if count_hashes:
            result.hash_calls = count_verify_hashes(vault)
            if result.hash_calls != verify_hash_count(size):
                result.notes.append(
                    f"verify made {result.hash_calls:,} SHA-256 calls, the formula says {verify_hash_count(size):,}"
                )
            log(
                f"  verify makes {result.hash_calls:,} SHA-256 calls for {size:,} entries "
                f"(3N + popcount(N) - 2 = {verify_hash_count(size):,})"
            )
    finally:
        vault.close()

    runs = [run_verify(home, master_key, read_floor=True) for _ in range(1 if size > 100_000 else verify_runs)]
    if any(run["size"] != size or run["root"] != our_root.hex() for run in runs):
        raise RuntimeError("verify reported another size or root")
    result.verify_s = min(run["seconds"] for run in runs)
    result.peak_mb = max(run["peak_rss_mb"] for run in runs)
    result.rss_before_mb = max(run["rss_before_mb"] for run in runs)
    result.events_read_s = min(run["events_read_s"] for run in runs)
    result.nodes_read_s = min(run["nodes_read_s"] for run in runs)
    result.categories_read_s = min(run["categories_read_s"] for run in runs)
    result.hashlib_s = hashlib_limit(size, body_size)
    log(
        f"  verify: {_seconds(result.verify_s)} s (hashlib limit {_seconds(result.hashlib_s)} s), peak RSS "
        f"{result.peak_mb:.0f} MB"
    )
    log(
        f"  read floor: {_seconds(result.read_floor_s)} s = events read {_seconds(result.events_read_s)} s "
        f"+ nodes read {_seconds(result.nodes_read_s)} s + hashlib {_seconds(result.hashlib_s)} s "
        f"(categories read, not in the floor: {_seconds(result.categories_read_s)} s); "
        f"verify / floor {result.verify_s / result.read_floor_s:.2f}x"
    )
    from vault.verification.verify import PARALLEL_MIN_SIZE

    result.par_workers = os.cpu_count() or 1
    if result.par_workers > 1 and size >= PARALLEL_MIN_SIZE:
        runs = [run_verify(home, master_key, result.par_workers) for _ in range(1 if size > 100_000 else verify_runs)]
        if any(run["size"] != size or run["root"] != our_root.hex() for run in runs):
            raise RuntimeError("parallel verify reported another size or root")
        result.par_verify_s = min(run["seconds"] for run in runs)
        result.par_peak_total_mb = max(run["peak_rss_mb"] + result.par_workers * run["worker_peak_mb"] for run in runs)
        log(
            f"  verify with {result.par_workers} worker processes: {_seconds(result.par_verify_s)} s, "
            f"peak RSS of all processes together {result.par_peak_total_mb:.0f} MB"
        )
    return result


# --- Report --------------------------------------------------------------------


def _ratio(ours: float | None, theirs: float | None) -> str:
    if not ours or not theirs:
        return "n/a"
    ratio = ours / theirs
    return f"{ratio:,.1f}" if ratio >= 10 else f"{ratio:.2f}" if ratio >= 0.1 else f"{ratio:.2g}"


def _times(ours: float | None, theirs: float | None) -> str:
    ratio = _ratio(ours, theirs)
    return ratio if ratio == "n/a" else f"{ratio}x"


def _seconds(value: float) -> str:
    return f"{value:,.2f}" if value >= 1 else f"{value:.3g}"


def _num(value: float | None, fmt: str = ",.0f") -> str:
    return "n/a" if value is None else format(value, fmt)


def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "NOT met")


def table(results: list[Result]) -> str:
    lines = [
        "| entries | ours durable appends/s | pymerkle durable appends/s | ratio | ours proofs/s | pymerkle proofs/s "
        "(its file) "
        "| ratio | ours verify s | hashlib limit s | ratio | verify peak RSS MB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.size:,} | {r.durable_rate:,.0f} | {_num(r.pm_durable_rate)} | "
            f"{_ratio(r.durable_rate, r.pm_durable_rate)} "
            f"| {r.proof_rate:,.0f} | {_num(r.pm_cold_proof_rate, ',.1f')} | "
            f"{_ratio(r.proof_rate, r.pm_cold_proof_rate)} "
            f"| {_seconds(r.verify_s)} | {_seconds(r.hashlib_s)} | {r.verify_s / r.hashlib_s:,.1f} | {r.peak_mb:,.0f} |"
        )
    return "\n".join(lines)


def details(results: list[Result]) -> str:
    lines = [
        "| entries | ours batched appends/s | pymerkle batched appends/s | ratio | pymerkle proofs/s, cache warm | "
        "ours / warm "
        "| pymerkle warm-up pass/s | SHA-256 calls in verify | RSS before verify MB | parallel verify s | ratio to "
        "hashlib "
        "| parallel peak RSS, all processes MB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.size:,} | {r.batched_rate:,.0f} | {_num(r.pm_batched_rate)} | "
            f"{_ratio(r.batched_rate, r.pm_batched_rate)} "
            f"| {_num(r.pm_warm_proof_rate)} | {_ratio(r.proof_rate, r.pm_warm_proof_rate)} | "
            f"{_num(r.pm_warm_up_rate)} "
            f"| {verify_hash_count(r.size):,} | {r.rss_before_mb:,.0f} "
            f"| {'n/a' if r.par_verify_s is None else _seconds(r.par_verify_s) + f' ({r.par_workers} workers)'} "
            f"| {'n/a' if r.par_verify_s is None else f'{r.par_verify_s / r.hashlib_s:.1f}'} | "
            f"{_num(r.par_peak_total_mb)} |"
        )
    return "\n".join(lines)


def targets(results: list[Result]) -> str:
    by_size = {r.size: r for r in results}
    first, last = results[0], results[-1]
    rows = []
    for r in results:
        ok = None if r.pm_durable_rate is None else r.durable_rate >= APPEND_TARGET * r.pm_durable_rate
        rows.append(
            (
                f"durable appends >= {APPEND_TARGET:g}x pymerkle at {r.size:,}",
                _times(r.durable_rate, r.pm_durable_rate),
                _met(ok),
            )
        )
    at = by_size.get(PROOF_TARGET_SIZE, last)
    ok = None if at.pm_cold_proof_rate is None else at.proof_rate >= PROOF_TARGET * at.pm_cold_proof_rate
    rows.append(
        (
            f"proofs >= {PROOF_TARGET:g}x pymerkle (its file) at {at.size:,}",
            _times(at.proof_rate, at.pm_cold_proof_rate),
            _met(ok),
        )
    )
    growth = first.proof_rate / last.proof_rate
    rows.append(
        (
            f"proof time flat, {first.size:,} to {last.size:,} (<= {FLAT_TARGET:g}x)",
            f"{growth:.2f}x",
            _met(growth <= FLAT_TARGET) if len(results) > 1 else "n/a",
        )
    )
    ratio = last.verify_s / last.hashlib_s
    rows.append(
        (
            f"verify of {last.size:,} <= {VERIFY_TARGET:g}x hashlib limit, one process",
            f"{ratio:.1f}x",
            _met(ratio <= VERIFY_TARGET),
        )
    )
    rows.append(
        (
            f"verify of {last.size:,} under {MEMORY_TARGET_MB} MB peak, one process",
            f"{last.peak_mb:.0f} MB",
            _met(last.peak_mb < MEMORY_TARGET_MB),
        )
    )
    if last.par_verify_s is not None:
        ratio = last.par_verify_s / last.hashlib_s
        rows.append(
            (
                f"verify of {last.size:,} <= {VERIFY_TARGET:g}x hashlib limit, {last.par_workers} processes",
                f"{ratio:.1f}x",
                _met(ratio <= VERIFY_TARGET),
            )
        )
        rows.append(
            (
                f"verify of {last.size:,} under {MEMORY_TARGET_MB} MB, {last.par_workers} processes together",
                f"{last.par_peak_total_mb:.0f} MB",
                _met(last.par_peak_total_mb < MEMORY_TARGET_MB),
            )
        )
    lines = ["| target | measured | |", "|---|---:|---|"]
    lines += [f"| {name} | {measured} | {verdict} |" for name, measured, verdict in rows]
    return "\n".join(lines)


# --- The ledger targets' section of docs/performance.md -------------------------


def read_floor_table(results: list[Result]) -> str:
    """Verify against its read floor; the last column: the parallel verify (``workers`` processes, where the ledger
    is large enough to be split) against the same, single-process floor, apart from the target."""
    lines = [
        "| entries | verify s | events read s | nodes read s | hashlib s | read floor s | verify / read floor "
        "| search categories read s (not in the floor) | parallel verify / read floor |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        parallel = (
            "n/a" if r.par_verify_s is None else f"{r.par_verify_s / r.read_floor_s:.2f}x ({r.par_workers} processes)"
        )
        lines.append(
            f"| {r.size:,} | {_seconds(r.verify_s)} | {_seconds(r.events_read_s)} | {_seconds(r.nodes_read_s)} "
            f"| {_seconds(r.hashlib_s)} | {_seconds(r.read_floor_s)} | {r.verify_s / r.read_floor_s:.2f}x "
            f"| {_seconds(r.categories_read_s)} | {parallel} |"
        )
    return "\n".join(lines)


def concurrency_table(comparisons: list) -> str:
    lines = [
        "| shape | ours appends/s | baseline | baseline/s | ratio | failed (ours / baseline) |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for c in comparisons:
        if isinstance(c, ledger_concurrency.Skipped):
            lines.append(f"| {c.title} | not measured: {c.reason} | | | | |")
            continue
        for ours in [c.ours, *c.also]:
            for base in c.baselines:
                lines.append(
                    f"| {c.title} ({c.where}): {ours.name} | {ours.rate:,.0f} | {base.name} | {base.rate:,.0f} "
                    f"| {_ratio(c.ratio_to(ours, base), 1.0)}x | {ours.errors} / {base.errors} |"
                )
    return "\n".join(lines)


def ledger_targets(results: list[Result], comparisons: list) -> str:
    rows = []
    for c in comparisons:
        if isinstance(c, ledger_concurrency.Skipped):
            rows.append((f"{c.title}: target not measured", "n/a", "n/a"))
            continue
        rows.append(
            (
                f"{c.title} >= {c.target:g}x {c.best.name}" + (" (the faster way)" if len(c.baselines) > 1 else ""),
                f"{_ratio(c.ratio, 1.0)}x",
                _met(c.met),
            )
        )
    for r in results:
        ratio = r.verify_s / r.read_floor_s
        rows.append(
            (
                f"verify of {r.size:,} <= {READ_FLOOR_TARGET:g}x the read floor",
                f"{ratio:.2f}x",
                _met(ratio <= READ_FLOOR_TARGET),
            )
        )
    lines = ["| target | measured | |", "|---|---:|---|"]
    lines += [f"| {name} | {measured} | {verdict} |" for name, measured, verdict in rows]
    return "\n".join(lines)


def write_targets_section(text: str) -> None:
    """Rewrite docs/performance.md between this section's markers with bench/http.py's writer.

    That writer takes its markers from its module; they are swapped for ours for the call.
    """
    saved = http_bench.START_MARK, http_bench.END_MARK, http_bench.SECTION
    http_bench.START_MARK, http_bench.END_MARK, http_bench.SECTION = TARGETS_START, TARGETS_END, TARGETS_SECTION
    try:
        http_bench.write_docs(text)
    finally:
        http_bench.START_MARK, http_bench.END_MARK, http_bench.SECTION = saved


def run(
    sizes: list[int],
    *,
    seconds: float,
    workdir: str | None = None,
    durable: int = DURABLE,
    verify_runs: int = 3,
    quick: bool = False,
    docs: bool = False,
) -> list[Result]:
    """The ledger against pymerkle at each size, then the concurrent appenders (bench/ledger_concurrency.py).

    With ``docs``, the ledger targets' section of docs/performance.md is rewritten with this run's figures.
    """
    import sqlite3

    import sqlalchemy

    versions = f"SQLite {sqlite3.sqlite_version}, SQLAlchemy {sqlalchemy.__version__}"
    versions += (
        f", pymerkle {pymerkle.__version__}"
        if pymerkle is not None
        else ", pymerkle not installed (pip install -e '.[bench]')"
    )
    print(
        f"\nLedger against pymerkle's SqliteTree ({versions}); sizes {', '.join(f'{s:,}' for s in sizes)}", flush=True
    )
    results = []
    started, load_before = datetime.now(UTC), os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="civicvault-bench-", dir=workdir) as tmp:
        for size in sizes:
            began = time.perf_counter()
            print(f"{size:,} entries:", flush=True)
            results.append(
                bench_size(
                    size,
                    Path(tmp),
                    seconds=seconds,
                    durable=durable,
                    verify_runs=verify_runs,
                    count_hashes=size == min(sizes),
                    log=lambda *a: print(*a, flush=True),
                )
            )
            print(f"  ({time.perf_counter() - began:.0f} s)", flush=True)
            for path in sorted((Path(tmp) / f"n{size}").glob("*")):
                path.unlink()
        began = time.perf_counter()
        comparisons = ledger_concurrency.run(Path(tmp), quick=quick, log=lambda *a: print(*a, flush=True))
        concurrency_s = time.perf_counter() - began
        print(f"  ({concurrency_s:.0f} s)", flush=True)
    print()
    print(table(results))
    print()
    print(details(results))
    print()
    print(targets(results))
    for r in results:
        for note in r.notes:
            print(f"note ({r.size:,}): {note}")
    section = "\n\n".join(
        (concurrency_table(comparisons), read_floor_table(results), ledger_targets(results, comparisons))
    )
    print()
    print(section)
    if docs:
        note = (
            f"Measured {started:%Y-%m-%d %H:%M} UTC on {http_bench.machine()}, {versions}; load average "
            f"{load_before:.2f} before the ledger benchmark, {os.getloadavg()[0]:.2f} after. Concurrent appenders: "
            f"{ledger_concurrency.THREADS} threads, {ledger_concurrency.ROUNDS} alternated rounds per side of "
            f"{ledger_concurrency.DURATION:g} s measured after {ledger_concurrency.WARMUP:g} s warm-up, on a ledger "
            f"that starts with {ledger_concurrency.PREFILL:,} entries; rates are medians over rounds, ratios the "
            f"median of the per-round ratios (they took {concurrency_s:.0f} s in all). Verify and its read floor at "
            f"{', '.join(f'{r.size:,}' for r in results)} entries: the best of this run's verify runs (three, one "
            "above 100,000 entries)."
        )
        write_targets_section(f"{note}\n\n{section}")
        print(f"written to {http_bench.DOCS.relative_to(http_bench.DOCS.parent.parent)}")
    return results


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--verify-worker":
        _verify_worker(sys.argv[2])
    else:
        sys.exit("usage: python -m bench --ledger [--sizes ...]")
