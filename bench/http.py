"""The vault against a plaintext records API, side by side over HTTP in one run.

Both servers run at once on 127.0.0.1, each on a fresh database of the same
kind, under gunicorn's threaded workers with the same worker and thread
counts: ``civicvault serve`` for the vault, ``python -m bench.plaintext_app``
for the baseline (Flask + SQLAlchemy Core, bearer tokens looked up by hash,
no encryption, consent or ledger). The closed-loop generator (bench/load.py)
drives one at a time, in alternated rounds (vault, plaintext, vault,
plaintext, ...), so a change in the machine's load hits both sides alike.

Shapes (the issue's table):

* ``sqlite-read``: SQLite, 2 workers, 8 clients, a clinic's granted read
  (``GET /api/v1/records/{id}?purpose=treatment``); the baseline reads the
  record by id after its token check.
* ``sqlite-create``: SQLite, 2 workers, 8 clients, a resident's record create
  (``POST /api/v1/subjects/{id}/records``); the baseline inserts the row.
* ``postgres-read`` and ``postgres-create``: PostgreSQL, 4 workers, 16
  clients; each server gets its own throwaway schema, dropped at the end.

Per shape and round: requests/s, p50 and p99 latency, errors (non-2xx or a
failed connection). The table shows the median over rounds of each figure and
the median of the per-round ratios vault/plaintext. A full run writes it into
docs/performance.md (section "HTTP: vault against a plaintext API", between
its markers) with the date and the machine.

Run ``python -m bench.http`` (``make bench-http``); ``--duration``,
``--warmup``, ``--rounds``, ``--shapes``, ``--clients`` for shorter runs,
``--postgres-url`` (or ``CIVICVAULT_BENCH_POSTGRES_URL``) for PostgreSQL,
``--no-docs`` to leave the docs alone.
"""

import argparse
import base64
import contextlib
import http.client
import os
import platform
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import load, plaintext_app

THREADS = 32  # civicvault serve's default threads per worker; the baseline gets the same
DURATION, WARMUP, ROUNDS = 10.0, 2.0, 3
POSTGRES_ENV = ("CIVICVAULT_BENCH_POSTGRES_URL", "CIVICVAULT_TEST_POSTGRES_URL")
DOCS = Path(__file__).resolve().parent.parent / "docs" / "performance.md"
SECTION = "## HTTP: vault against a plaintext API"
START_MARK, END_MARK = "<!-- bench-http:start -->", "<!-- bench-http:end -->"
CONTENT = {
    "resourceType": "Observation",
    "code": {"text": "HbA1c"},
    "valueQuantity": {"value": 6.1, "unit": "%"},
    "note": "x" * 400,
}


@dataclass(frozen=True)
class Shape:
    name: str
    backend: str  # sqlite or postgres
    operation: str  # read or create
    workers: int
    clients: int

    def label(self, clients: int) -> str:
        db = "SQLite" if self.backend == "sqlite" else "PostgreSQL"
        what = "a clinic's granted read" if self.operation == "read" else "record create"
        return f"{db}, {self.workers} workers, {clients} clients, {what}"


SHAPES = {
    s.name: s
    for s in (
        Shape("sqlite-read", "sqlite", "read", workers=2, clients=8),
        Shape("sqlite-create", "sqlite", "create", workers=2, clients=8),
        Shape("postgres-read", "postgres", "read", workers=4, clients=16),
        Shape("postgres-create", "postgres", "create", workers=4, clients=16),
    )
}


@dataclass
class Row:
    shape: Shape
    clients: int
    vault: list
    plain: list

    @property
    def ratio(self) -> float:
        return statistics.median(v.rps / p.rps if p.rps else 0.0 for v, p in zip(self.vault, self.plain, strict=True))

    @staticmethod
    def median(results: list, attribute: str) -> float:
        return statistics.median(getattr(r, attribute) for r in results)

    def errors(self, results: list) -> int:
        return sum(r.errors for r in results)


# --- Servers -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running(command: list, *, env: dict, port: int, log: Path):
    """A server started from ``command``, healthy on ``port`` within 60 s; terminated (then killed) on exit."""
    with open(log, "wb") as log_file:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log_file, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError, http.client.HTTPException):
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    connection.close()
                    break
                connection.close()
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{command[2]} did not start:\n" + log.read_text(errors="replace")[-2000:])
            time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)  # the server's own session: its master and workers, nothing else
            proc.wait()


def prepare_vault(home: Path, url: str, master_key: str) -> dict:
    """A vault with a resident, one record, a clinic and the resident's grant to it; their ids and tokens."""
    from vault.consent import consent
    from vault.core.caller import Caller
    from vault.core.clock import utcnow
    from vault.core.config import Settings
    from vault.identity import principals
    from vault.records import records
    from vault.runtime import Vault, init_home

    settings = Settings(home=home, database_url=url, master_key=master_key)
    init_home(settings)
    vault = Vault.open(settings)
    try:
        with vault.transaction() as session:
            now = utcnow()
            resident, resident_token = principals.create_principal(
                session, vault.keys, role="resident", name="Bench Resident", now=now
            )
            clinic, clinic_token = principals.create_principal(
                session, vault.keys, role="clinic", name="Bench Clinic", now=now
            )
        caller = Caller(id=resident.id, role="resident")
        with vault.transaction() as session:
            record = records.create_record(
                session, vault.keys, caller, subject_id=resident.id, category="health.labs", content=CONTENT, now=now
            )
            consent.create_grant(
                session,
                caller,
                grantee_id=clinic.id,
                categories=["health.*"],
                purpose="treatment",
                actions=["read"],
                expires_at=now + timedelta(days=30),
                limits=vault.limits,
                now=now,
            )
    finally:
        vault.close()
    return {
        "subject_id": resident.id,
        "token": resident_token,
        "clinic_token": clinic_token,
        "record_id": record.id,
    }


def requests_for(vault_ids: dict, plain_ids: dict, operation: str) -> tuple[load.Request, load.Request]:
    """The same operation for each side: the vault's under a clinic's grant (read) or the resident's (create)."""
    if operation == "read":
        return (
            load.Request(
                "GET",
                f"/api/v1/records/{vault_ids['record_id']}?purpose=treatment",
                {"Authorization": f"Bearer {vault_ids['clinic_token']}"},
            ),
            load.Request(
                "GET",
                f"/api/v1/records/{plain_ids['record_id']}?purpose=treatment",
                {"Authorization": f"Bearer {plain_ids['token']}"},
            ),
        )
    body = load.json_body({"category": "health.labs", "title": "HbA1c", "content": CONTENT})
    return (
        load.Request(
            "POST",
            f"/api/v1/subjects/{vault_ids['subject_id']}/records",
            {"Authorization": f"Bearer {vault_ids['token']}"},
            body,
        ),
        load.Request(
            "POST",
            f"/api/v1/subjects/{plain_ids['subject_id']}/records",
            {"Authorization": f"Bearer {plain_ids['token']}"},
            body,
        ),
    )


@contextlib.contextmanager
def databases(backend: str, workdir: Path, postgres_url: str | None):
    """Two fresh databases of one kind (vault's, baseline's): SQLite files, or throwaway PostgreSQL schemas."""
    if backend == "sqlite":
        yield f"sqlite:///{workdir / 'vault.db'}", f"sqlite:///{workdir / 'plain.db'}"
        return
    import psycopg

    admin_url = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    schemas = [f"cv_bench_{name}_{secrets.token_hex(4)}" for name in ("vault", "plain")]
    with psycopg.connect(admin_url, autocommit=True) as connection:
        for schema in schemas:
            connection.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in postgres_url else "?"
    try:
        yield tuple(f"{postgres_url}{separator}options=-csearch_path%3D{schema}" for schema in schemas)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            for schema in schemas:
                connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# --- The run -------------------------------------------------------------------


def run_group(shapes: list, *, options, postgres_url: str | None, log) -> list:
    """The shapes of one backend and worker count, against one pair of servers."""
    backend, workers = shapes[0].backend, shapes[0].workers
    rows = []
    with tempfile.TemporaryDirectory(prefix="cv-bench-http-") as tmp:
        workdir = Path(tmp)
        with databases(backend, workdir, postgres_url) as (vault_url, plain_url):
            master_key = base64.b64encode(os.urandom(32)).decode()
            vault_ids = prepare_vault(workdir / "home", vault_url, master_key)
            plain_ids = plaintext_app.prepare(plain_url, content=CONTENT)
            env = {
                **os.environ,
                "CIVICVAULT_HOME": str(workdir / "home"),
                "CIVICVAULT_DATABASE_URL": vault_url,
                "CIVICVAULT_MASTER_KEY": master_key,
            }
            vault_port, plain_port = free_port(), free_port()
            serve = ["--host", "127.0.0.1", "--workers", str(workers), "--threads", str(options.threads)]
            vault_cmd = [sys.executable, "-m", "vault.cli", "serve", "--port", str(vault_port), *serve]
            plain_cmd = [sys.executable, "-m", "bench.plaintext_app", "--database-url", plain_url]
            plain_cmd += ["--port", str(plain_port), *serve]
            with (
                running(vault_cmd, env=env, port=vault_port, log=workdir / "vault.log") as vault_proc,
                running(plain_cmd, env=env, port=plain_port, log=workdir / "plain.log") as plain_proc,
            ):
                for shape in shapes:
                    clients = options.clients or shape.clients
                    vault_request, plain_request = requests_for(vault_ids, plain_ids, shape.operation)
                    row = Row(shape, clients, [], [])
                    for round_no in range(1, options.rounds + 1):
                        for side, port, proc, request, results in (
                            ("vault", vault_port, vault_proc, vault_request, row.vault),
                            ("plaintext", plain_port, plain_proc, plain_request, row.plain),
                        ):
                            result = load.run(
                                port,
                                request,
                                clients=clients,
                                duration=options.duration,
                                warmup=options.warmup,
                                server_pid=proc.pid,
                            )
                            results.append(result)
                            errors = f", errors {result.errors} {result.statuses}" if result.errors else ""
                            cpu = result.cpu_ms_per_request
                            log(
                                f"  {shape.name} round {round_no} {side}: {result.rps:,.0f} rps, "
                                f"p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms"
                                + ("" if cpu is None else f", server CPU {cpu:.2f} ms/request")
                                + errors
                            )
                    rows.append(row)
    return rows


def table(rows: list) -> str:
    lines = [
        "| shape | vault rps | vault p99 ms | plaintext rps | plaintext p99 ms | ratio "
        "| server CPU ms/request (vault / plaintext) | errors (vault / plaintext) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row.shape.label(row.clients)} | {Row.median(row.vault, 'rps'):,.0f} "
            f"| {Row.median(row.vault, 'p99_ms'):,.1f} | {Row.median(row.plain, 'rps'):,.0f} "
            f"| {Row.median(row.plain, 'p99_ms'):,.1f} | {row.ratio:.2f}x "
            f"| {_cpu(row.vault)} / {_cpu(row.plain)} "
            f"| {row.errors(row.vault)} / {row.errors(row.plain)} |"
        )
    return "\n".join(lines)


def _cpu(results: list) -> str:
    """The median CPU ms per request of the server's own processes (not the database server's), or "-"."""
    values = [r.cpu_ms_per_request for r in results if r.cpu_ms_per_request is not None]
    return f"{statistics.median(values):.2f}" if values else "-"


def machine() -> str:
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    system = f"{platform.system()} {platform.release()}"
    return f"{model}, {os.cpu_count()} CPUs, {system}, Python {platform.python_version()}"


def write_docs(text: str, path: Path = DOCS) -> None:
    """Replace what lies between the section's markers (the section and markers are appended if missing)."""
    doc = path.read_text()
    block = f"{START_MARK}\n{text}\n{END_MARK}"
    if START_MARK in doc and END_MARK in doc:
        head, rest = doc.split(START_MARK, 1)
        doc = head + block + rest.split(END_MARK, 1)[1]
    else:
        doc = doc.rstrip("\n") + f"\n\n{SECTION}\n\n{block}\n"
    path.write_text(doc)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.http", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=DURATION, help="measured seconds per round and side")
    parser.add_argument("--warmup", type=float, default=WARMUP, help="unmeasured seconds before each round")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="alternated rounds per shape")
    parser.add_argument("--shapes", default=",".join(SHAPES), help=f"comma-separated, of {', '.join(SHAPES)}")
    parser.add_argument("--clients", type=int, default=None, help="clients for every shape (default: the shape's)")
    parser.add_argument("--threads", type=int, default=THREADS, help="threads per gunicorn worker, both servers")
    postgres_default = next((os.environ[k] for k in POSTGRES_ENV if os.environ.get(k)), None)
    parser.add_argument("--postgres-url", default=postgres_default, help=f"default: {' or '.join(POSTGRES_ENV)}")
    parser.add_argument("--no-docs", action="store_true", help="print the table only; leave docs/performance.md")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.shapes.split(",") if name.strip()]
    unknown = [name for name in names if name not in SHAPES]
    if unknown or not names or args.rounds < 1 or args.duration <= 0 or args.warmup < 0:
        parser.error(f"unknown shapes {unknown}" if unknown else "give shapes, rounds >= 1, duration > 0, warmup >= 0")
    shapes = [SHAPES[name] for name in names]
    skipped = []
    if not args.postgres_url:
        skipped = [s.name for s in shapes if s.backend == "postgres"]
        shapes = [s for s in shapes if s.backend != "postgres"]

    def log(line: str) -> None:
        print(line, flush=True)

    started = datetime.now(UTC)
    load_before = os.getloadavg()[0]
    log(
        f"CivicVault HTTP benchmark: vault against a plaintext API ({machine()}); "
        f"{args.rounds} round(s) of {args.duration:g} s after {args.warmup:g} s warm-up"
    )
    if skipped:
        log(f"  skipped (no --postgres-url or {POSTGRES_ENV[0]}): {', '.join(skipped)}")
    rows = []
    groups: dict = {}
    for shape in shapes:
        groups.setdefault((shape.backend, shape.workers), []).append(shape)
    for group in groups.values():
        rows += run_group(group, options=args, postgres_url=args.postgres_url, log=log)
    result = table(rows)
    print(result, flush=True)
    if not args.no_docs:
        note = (
            f"Measured {started:%Y-%m-%d %H:%M} UTC on {machine()}; load average {load_before:.2f} before the run, "
            f"{os.getloadavg()[0]:.2f} after (a shared machine: the generator and both servers share its CPUs). "
            f"{args.rounds} alternated round(s) per shape of {args.duration:g} s after {args.warmup:g} s warm-up, "
            f"{args.threads} threads per worker on both sides; rps and p99 are medians over rounds, the ratio is "
            "the median of the per-round ratios vault/plaintext."
            + (f" Not measured: {', '.join(skipped)} (no PostgreSQL URL given)." if skipped else "")
        )
        write_docs(f"{note}\n\n{result}")
        log(f"written to {DOCS.relative_to(DOCS.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
