"""``kill -9`` of a serving vault during concurrent writes loses no acknowledged record.

Each cycle starts ``civicvault serve --workers 2`` on a free 127.0.0.1 port,
runs writer threads that create records through the API and remember every
record the server acknowledged (201), and sends SIGKILL to the gunicorn
master and its workers (the whole process group) while writes are in
flight. After the last cycle every acknowledged record reads back with its
content, ``civicvault verify`` exits 0 and the ledger has no gap.
"""

import http.client
import json
import os
import random
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from tests.conftest import new_master_key
from tests.faults.server import Server, cli, request
from vault.storage.db import make_engine
from vault.storage.models import Event, LedgerHead, LedgerNode

pytestmark = pytest.mark.slow

WRITERS = 6
RESIDENTS = 2
CYCLES = {"sqlite": 4, "postgresql": 2}
ACKS_BEFORE_KILL = 25  # each cycle kills once at least this many writes were acknowledged (or after MAX_WRITE_SECONDS)
MAX_WRITE_SECONDS = 6.0


class Writers:
    """Threads that create records until stopped; ``acked`` holds (record id, subject, token, content)."""

    def __init__(self, port: int, residents: list[dict], cycle: int) -> None:
        self.port = port
        self.residents = residents
        self.cycle = cycle
        self.acked: list[tuple[str, str, dict]] = []
        self.failed = 0  # writes the kill cut off (connection reset, no answer)
        self.unexpected: list[int] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(WRITERS)]

    def _run(self, writer: int) -> None:
        resident = self.residents[writer % len(self.residents)]
        n = 0
        while not self.stop.is_set():
            content = {"cycle": self.cycle, "writer": writer, "n": n, "nonce": secrets.token_hex(8)}
            n += 1
            try:
                status, body = request(
                    self.port,
                    "POST",
                    f"/api/v1/subjects/{resident['id']}/records",
                    token=resident["token"],
                    body={"category": "health.notes", "content": content},
                    timeout=10,
                )
            except ConnectionRefusedError:
                time.sleep(0.01)  # the server is down: nothing was in flight
                continue
            except (OSError, http.client.HTTPException):  # killed mid-answer: not acknowledged
                with self.lock:
                    self.failed += 1
                continue
            with self.lock:
                if status == 201:
                    self.acked.append((json.loads(body)["id"], resident["token"], content))
                else:
                    self.failed += 1
                    if not self.stop.is_set() and status != 503:
                        self.unexpected.append(status)

    def __enter__(self) -> "Writers":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def count(self) -> int:
        with self.lock:
            return len(self.acked)


def ledger_gaps(database_url: str) -> dict:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return {
                "size": connection.scalar(select(LedgerHead.size)),
                "events": connection.scalar(select(func.count()).select_from(Event)),
                "max_index": connection.scalar(select(func.max(Event.ledger_index))),
                "leaves": connection.scalar(select(func.count()).select_from(LedgerNode).where(LedgerNode.level == 0)),
            }
    finally:
        engine.dispose()


def test_kill_9_during_concurrent_writes_loses_no_acknowledged_record(tmp_path, database_url):
    backend = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    env = {
        **os.environ,
        "CIVICVAULT_HOME": str(tmp_path / "home"),
        "CIVICVAULT_DATABASE_URL": database_url,
        "CIVICVAULT_MASTER_KEY": new_master_key(),
    }
    env.pop("CIVICVAULT_SECRETS_DATABASE_URL", None)
    log = tmp_path / "serve.log"
    cli(env, "init")
    residents = [
        json.loads(cli(env, "principal", "add", "--role", "resident", "--name", f"Resident {n}", "--json").stdout)
        for n in range(RESIDENTS)
    ]
    started = time.monotonic()
    acked: list[tuple[str, str, dict]] = []
    cut_off = 0
    for cycle in range(CYCLES[backend]):
        server = Server(env, log)
        try:
            with Writers(server.port, residents, cycle) as writers:
                deadline = time.monotonic() + MAX_WRITE_SECONDS
                while writers.count() < ACKS_BEFORE_KILL and time.monotonic() < deadline:
                    time.sleep(0.02)
                time.sleep(random.uniform(0, 0.2))  # somewhere mid-stream
                server.kill()
                writers.stop.set()
        finally:
            server.kill()
        assert writers.count() > 0, f"cycle {cycle}: no write was acknowledged before the kill"
        assert writers.unexpected == [], f"cycle {cycle}: unexpected answers {writers.unexpected}"
        acked += writers.acked
        cut_off += writers.failed

    # Restart once more: every acknowledged record is there, with its content.
    server = Server(env, log)
    try:

        def read_back(item: tuple[str, str, dict]) -> bool:
            record_id, token, content = item
            status, body = request(server.port, "GET", f"/api/v1/records/{record_id}", token=token, timeout=30)
            return status == 200 and json.loads(body)["content"] == content

        with ThreadPoolExecutor(max_workers=4) as pool:
            found = list(pool.map(read_back, acked))
    finally:
        server.stop()
    lost = [item[0] for item, ok in zip(acked, found, strict=True) if not ok]
    assert lost == [], f"{len(lost)} of {len(acked)} acknowledged records lost: {lost[:5]}"

    done = cli(env, "verify", "--workers", "1", timeout=300)
    assert "ledger intact" in done.stdout, done.stdout + done.stderr
    gaps = ledger_gaps(database_url)
    assert gaps["events"] == gaps["size"] == gaps["leaves"] == gaps["max_index"] + 1, gaps
    print(
        f"\n{backend}: {CYCLES[backend]} kill -9 cycles, {len(acked)} acknowledged writes, "
        f"{cut_off} cut off by the kill, lost {len(lost)}, ledger {gaps['size']} entries without a gap, "
        f"{time.monotonic() - started:.1f} s"
    )
