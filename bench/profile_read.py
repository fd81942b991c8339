"""Profile a clinic's granted read through the Flask API: ``python -m bench.profile_read``.

Builds a temporary vault (SQLite files in a temporary directory, or a
throwaway PostgreSQL schema with ``--postgres URL``), a resident with one
record and a clinic holding the resident's grant for ``health.*`` and
``treatment``, then:

1. counts, for one warm granted read (``GET /api/v1/records/{id}?purpose=treatment``
   with the clinic's bearer token, through the Flask test client), the SQL
   statements and transactions on the main database and on the subject-secret
   store (SQLAlchemy ``before_cursor_execute`` and ``begin`` events on both
   engines; on SQLite the ``BEGIN`` the vault sends itself counts as the
   transaction, not as a statement), and lists the statements;
2. times ``--reads`` granted reads without the profiler: reads/s and the
   process's CPU time per read (best of ``--repeats``; on a shared machine
   the CPU time moves less with other load than the rate does);
3. runs ``--reads`` granted reads under cProfile and prints the top functions
   by cumulative and by total time.

Figures from this script are in docs/performance.md ("The granted-read path").
"""

import argparse
import base64
import cProfile
import io
import os
import pstats
import re
import secrets
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, text

from vault.consent import consent
from vault.core.caller import Caller
from vault.core.config import Settings
from vault.identity import principals
from vault.records import records
from vault.runtime import Vault, init_home
from vault.storage.db import make_engine

CONTENT = {
    "resourceType": "Observation",
    "code": {"text": "HbA1c"},
    "valueQuantity": {"value": 6.1, "unit": "%"},
    "note": "x" * 400,
}


class StatementCounter:
    """SQL statements and transactions on a few engines, by engine name."""

    def __init__(self, engines: dict[str, Engine]) -> None:
        self.statements: Counter[str] = Counter()
        self.transactions: Counter[str] = Counter()
        self.log: list[tuple[str, str]] = []
        self.recording = False
        for name, engine in engines.items():
            event.listen(engine, "before_cursor_execute", self._on_statement(name))
            event.listen(engine, "begin", self._on_begin(name))

    def _on_statement(self, name: str) -> Callable[..., None]:
        def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if not self.recording or statement.lstrip().upper().startswith("BEGIN"):
                return
            self.statements[name] += 1
            self.log.append((name, " ".join(statement.split())))

        return count

    def _on_begin(self, name: str) -> Callable[..., None]:
        def count(_conn: Any) -> None:
            if self.recording:
                self.transactions[name] += 1

        return count

    def measure(self, fn: Callable[[], None]) -> None:
        self.statements.clear()
        self.transactions.clear()
        self.log.clear()
        self.recording = True
        try:
            fn()
        finally:
            self.recording = False


def build(workdir: Path, postgres_url: str | None) -> tuple[Vault, str, str, Callable[[], None]]:
    """A vault with a resident's record and a clinic's grant: (vault, record id, clinic token, cleanup)."""
    cleanup: Callable[[], None] = lambda: None  # noqa: E731
    url = f"sqlite:///{workdir / 'vault.db'}"
    if postgres_url:
        schema = f"cv_profile_{secrets.token_hex(6)}"
        admin = make_engine(postgres_url)
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{postgres_url}{'&' if '?' in postgres_url else '?'}options=-csearch_path%3D{schema}"

        def cleanup() -> None:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()

    settings = Settings(home=workdir, database_url=url, master_key=base64.b64encode(os.urandom(32)).decode())
    init_home(settings)
    vault = Vault.open(settings)
    now = vault.now()
    with vault.transaction() as session:
        resident, _ = principals.create_principal(session, vault.keys, role="resident", name="Amina", now=now)
        clinic, clinic_token = principals.create_principal(
            session, vault.keys, role="clinic", name="Riverside Clinic", now=now
        )
    owner = Caller(id=resident.id, role="resident")
    with vault.transaction() as session:
        record = records.create_record(
            session,
            vault.keys,
            owner,
            subject_id=resident.id,
            category="health.labs",
            title="HbA1c",
            content=CONTENT,
            now=now,
        )
        consent.create_grant(
            session,
            owner,
            grantee_id=clinic.id,
            categories=["health.*"],
            purpose="treatment",
            actions=["read"],
            expires_at=now + timedelta(days=30),
            limits=vault.limits,
            now=now,
        )
    return vault, record.id, clinic_token, cleanup


# Stages of a granted read, by (module file, function): their cumulative time under the profiler.
STAGES = (
    ("context.py", "authenticate_request", "authentication hook (api/context.py)"),
    ("principals.py", "authenticate", "token lookup (vault/identity/principals.py)"),
    ("records.py", "read_record", "read_record (vault/records/records.py)"),
    ("access.py", "authorize", "consent: authorize (facts, decision, use count, event)"),
    ("access.py", "load_facts", "consent facts"),
    ("access.py", "_consume", "grant use count (UPDATE)"),
    ("events.py", "emit", "ledger event (emit)"),
    ("keys.py", "open_for_subject", "open content and title (keys, secrets, AES)"),
    ("keys.py", "_subject_key", "subject key: key row, secret, unwrap (after the memo)"),
    ("subject_secrets.py", "get", "subject-secret store reads"),
    ("session.py", "commit", "commit"),
)


LABELS = {"cumulative": "cumulative time", "tottime": "own time (tottime)"}


def stage_table(profiler: cProfile.Profile, total: float) -> list[str]:
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    lines = ["| stage | cumulative s | share of request |", "|---|---:|---:|"]
    for filename, function, label in STAGES:
        cumulative = sum(
            value[3] for (file, _line, name), value in stats.items() if name == function and file.endswith(filename)
        )
        lines.append(f"| {label} | {cumulative:.3f} | {100 * cumulative / total:.0f} % |")
    return lines


def _shorten(statement: str, width: int = 150) -> str:
    statement = re.sub(r"\s+", " ", statement)
    return statement if len(statement) <= width else statement[: width - 3] + "..."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_read", description=__doc__.split("\n\n")[0])
    parser.add_argument("--reads", type=int, default=300, help="granted reads per timed run and per profile")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs; the best counts")
    parser.add_argument("--top", type=int, default=25, help="functions listed per ordering")
    parser.add_argument("--postgres", default=os.environ.get("CIVICVAULT_BENCH_POSTGRES_URL"), help="PostgreSQL URL")
    parser.add_argument("--statements", action="store_true", help="list the statements of one read")
    args = parser.parse_args(argv)

    from api import create_app

    with tempfile.TemporaryDirectory() as workdir:
        vault, record_id, token, cleanup = build(Path(workdir), args.postgres)
        try:
            secrets_engine = vault.keys.secrets.engine if vault.keys.secrets is not None else None
            engines = {"main": vault.engine, **({"secrets": secrets_engine} if secrets_engine is not None else {})}
            counter = StatementCounter(engines)
            client = create_app(vault=vault).test_client()
            url = f"/api/v1/records/{record_id}?purpose=treatment"
            headers = {"Authorization": f"Bearer {token}"}

            def read() -> None:
                response = client.get(url, headers=headers)
                if response.status_code != 200:
                    raise SystemExit(f"granted read answered {response.status_code}: {response.get_data(as_text=True)}")

            for _ in range(20):  # warm: pools, caches, compiled statements
                read()
            counter.measure(read)
            backend = vault.engine.dialect.name
            print(f"CivicVault granted read via the Flask test client ({backend}, Python {sys.version.split()[0]})")
            print()
            print("| database | statements | transactions |")
            print("|---|---:|---:|")
            for name in engines:
                print(f"| {name} | {counter.statements[name]} | {counter.transactions[name]} |")
            total_s, total_t = sum(counter.statements.values()), sum(counter.transactions.values())
            print(f"| total | {total_s} | {total_t} |")
            if args.statements:
                print()
                for name, statement in counter.log:
                    print(f"  [{name}] {_shorten(statement)}")

            best, cpu = 0.0, float("inf")
            for _ in range(args.repeats):
                start, start_cpu = time.perf_counter(), time.process_time()
                for _ in range(args.reads):
                    read()
                best = max(best, args.reads / (time.perf_counter() - start))
                cpu = min(cpu, 1000 * (time.process_time() - start_cpu) / args.reads)
            print()
            print(f"reads/s (best of {args.repeats} x {args.reads}, no profiler): {best:,.0f}")
            print(f"CPU ms per read in this process (best of {args.repeats}): {cpu:.2f}")

            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(args.reads):
                read()
            profiler.disable()
            total = pstats.Stats(profiler).total_tt  # type: ignore[attr-defined]
            print()
            print(f"== stages, {args.reads} reads under the profiler ({total:.2f} s in all) ==")
            print("\n".join(stage_table(profiler, total)))
            for order in ("cumulative", "tottime"):
                out = io.StringIO()
                stats = pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order)
                stats.print_stats(args.top)
                print()
                print(f"== top {args.top} by {LABELS[order]}, {args.reads} reads ==")
                lines = out.getvalue().splitlines()
                start_at = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
                print("\n".join(lines[start_at:]))
        finally:
            vault.close()
            cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
