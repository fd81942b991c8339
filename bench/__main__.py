"""Side-by-side benchmarks, each reported as a ratio against its baseline in the same run.

1. Envelope sealing: ``crypto.seal``/``unseal`` against raw AES-256-GCM from
   PyCryptodome with the same key and sizes (the cost of our framing and AAD).
2. Records: create and read through the services on SQLite against the bare
   SQL insert/select of the same bytes (the cost of sealing, validation,
   events and the ORM); a clinic's read under a grant against the resident's
   own read (the cost of the consent decision and the use count); a
   landlord's attestation about an income record against its read of the
   same record under the same grant (the predicate, the sealed credential
   and the Ed25519 signature); and the Flask API against the services (the
   HTTP shell).
3. The ledger against pymerkle's SQLite tree (bench/ledger.py): appends/s,
   inclusion proofs/s and full verification against the hashlib limit, at
   10^4, 10^5 and 10^6 entries; full verification also against its read
   floor (reading the rows it reads, plus the hashlib limit). Then 16
   concurrent appenders (bench/ledger_concurrency.py): on SQLite against
   pymerkle's SqliteTree, on PostgreSQL against plain single-row inserts. It
   writes its targets' table into docs/performance.md.

4. Over HTTP: the vault served by ``civicvault serve`` against a plaintext
   records API on the same database and gunicorn workers, driven by a
   closed-loop load generator (bench/http.py); it writes its table into
   docs/performance.md.

Figures go in docs/performance.md (``--no-docs`` leaves it alone). Options:
``--quick`` for a smoke run (small sizes, the concurrent appenders on SQLite
only and for a fraction of a second, docs left alone; the HTTP run is left
out, tests/test_bench_smoke.py runs it apart),
``--ledger`` for the ledger benchmark only, ``--sizes 10000,100000`` for other
ledger sizes, ``--http`` for the HTTP benchmark only (any further options go to
it: ``python -m bench --http --rounds 1 --shapes sqlite-read``; ``python -m
bench.http --help`` lists them).
"""

import argparse
import base64
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from Cryptodome.Cipher import AES

import crypto
from bench import http as http_bench
from bench import ledger as ledger_bench
from vault.consent import consent
from vault.core.caller import Caller
from vault.core.clock import utcnow
from vault.core.config import Settings
from vault.identity import principals
from vault.records import records
from vault.runtime import Vault, init_home


def rate(fn, *, seconds: float, repeats: int = 3) -> float:
    """Best-of-``repeats`` operations per second."""
    results = []
    for _ in range(repeats):
        n, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            for _ in range(50):
                fn()
            n += 50
        results.append(n / elapsed)
    return max(results)


def bench_envelopes(seconds: float) -> list[tuple]:
    key, aad = (
        os.urandom(32),
        crypto.record_aad(record_id="r_x", subject_id="p_x", version=1, category="health.labs", part="content"),
    )
    rows = []
    for size in (256, 4096, 65536):
        data = os.urandom(size)
        sealed = crypto.seal(key, data, key_id=1, aad=aad)
        nonce = os.urandom(12)

        def raw_seal():
            c = AES.new(key, AES.MODE_GCM, nonce=nonce)
            c.update(aad)
            c.encrypt_and_digest(data)

        ct, tag = sealed[17:-16], sealed[-16:]

        def raw_open():
            c = AES.new(key, AES.MODE_GCM, nonce=sealed[5:17])
            c.update(sealed[:5] + aad)
            c.decrypt_and_verify(ct, tag)

        ours_seal = rate(lambda: crypto.seal(key, data, key_id=1, aad=aad), seconds=seconds)
        ours_open = rate(lambda: crypto.unseal(key, sealed, aad=aad), seconds=seconds)
        base_seal, base_open = rate(raw_seal, seconds=seconds), rate(raw_open, seconds=seconds)
        rows.append((f"seal {size} B", ours_seal, "raw AES-GCM", base_seal))
        rows.append((f"unseal {size} B", ours_open, "raw AES-GCM", base_open))
    return rows


def bench_records(seconds: float, workdir: Path) -> list[tuple]:
    from sqlalchemy import text

    settings = Settings(
        home=workdir,
        database_url=f"sqlite:///{workdir / 'vault.db'}",
        master_key=base64.b64encode(os.urandom(32)).decode(),
    )
    init_home(settings)
    vault = Vault.open(settings)
    with vault.transaction() as session:
        info, token = principals.create_principal(session, vault.keys, role="resident", name="Bench", now=utcnow())
    caller = Caller(id=info.id, role="resident")
    content = {
        "resourceType": "Observation",
        "code": {"text": "HbA1c"},
        "valueQuantity": {"value": 6.1, "unit": "%"},
        "note": "x" * 400,
    }
    with vault.engine.begin() as connection:
        connection.execute(text("CREATE TABLE bench_raw (id INTEGER PRIMARY KEY, data BLOB)"))
    blob = os.urandom(len(str(content)) + 33)

    def raw_insert():
        with vault.engine.begin() as connection:
            connection.execute(text("INSERT INTO bench_raw (data) VALUES (:d)"), {"d": blob})

    def create():
        with vault.transaction() as session:
            return records.create_record(
                session, vault.keys, caller, subject_id=info.id, category="health.labs", content=content, now=utcnow()
            )

    record_id = create().id

    def raw_select():
        with vault.engine.begin() as connection:
            connection.execute(text("SELECT data FROM bench_raw WHERE id = 1")).scalar()

    def read():
        with vault.transaction() as session:
            records.read_record(session, vault.keys, caller, record_id, now=utcnow())

    with vault.transaction() as session:
        clinic, _ = principals.create_principal(session, vault.keys, role="clinic", name="Bench Clinic", now=utcnow())
        consent.create_grant(
            session,
            caller,
            grantee_id=clinic.id,
            categories=["health.*"],
            purpose="treatment",
            actions=["read"],
            expires_at=utcnow() + timedelta(days=30),
            limits=vault.limits,
            now=utcnow(),
        )
    clinic_caller = Caller(id=clinic.id, role="clinic")

    def grantee_read():
        with vault.transaction() as session:
            records.read_record(session, vault.keys, clinic_caller, record_id, purpose="treatment", now=utcnow())

    # A landlord's signed answer about the income record against its plain read of the same record under the
    # same grant: the cost of the predicate, the sealed credential row and the Ed25519 signature.
    from vault.attestations import attest
    from vault.keys import attestation_key

    income = {"type": "income-statement", "tax_year": 2025, "gross_annual": {"amount": 41200, "currency": "EUR"}}
    with vault.transaction() as session:
        income_id = records.create_record(
            session, vault.keys, caller, subject_id=info.id, category="tenancy.income", content=income, now=utcnow()
        ).id
        landlord, _ = principals.create_principal(
            session, vault.keys, role="landlord", name="Bench Homes", now=utcnow()
        )
        consent.create_grant(
            session,
            caller,
            grantee_id=landlord.id,
            categories=["tenancy.income"],
            purpose="tenancy-screening",
            actions=["read", "attest"],
            expires_at=utcnow() + timedelta(days=30),
            limits=vault.limits,
            now=utcnow(),
        )
    landlord_caller = Caller(id=landlord.id, role="landlord")
    key_file = workdir / "attestation.key"
    attestation_key.create(key_file)
    signing_key = attestation_key.read(key_file)
    question = {"multiple": 3, "annual_rent": 12000, "currency": "EUR"}

    def landlord_read():
        with vault.transaction() as session:
            records.read_record(
                session, vault.keys, landlord_caller, income_id, purpose="tenancy-screening", now=utcnow()
            )

    def attestation():
        with vault.transaction() as session:
            attest.attest(
                session,
                vault.keys,
                landlord_caller,
                info.id,
                predicate_name="income_at_least",
                parameters=question,
                purpose="tenancy-screening",
                include_self_asserted=True,  # the bench's record is the resident's own
                now=utcnow(),
                valid_days=30,
                signing_key=signing_key,
            )

    from api import create_app

    client = create_app(vault=vault).test_client()
    headers = {"Authorization": f"Bearer {token}"}

    def api_read():
        response = client.get(f"/api/v1/records/{record_id}", headers=headers)
        assert response.status_code == 200

    def api_create():
        response = client.post(
            f"/api/v1/subjects/{info.id}/records", json={"category": "health.labs", "content": content}, headers=headers
        )
        assert response.status_code == 201

    rows = [
        ("record create (service)", rate(create, seconds=seconds), "raw SQL insert", rate(raw_insert, seconds=seconds)),
        ("record read (service)", rate(read, seconds=seconds), "raw SQL select", rate(raw_select, seconds=seconds)),
    ]
    rows.append(("read under a grant (service)", rate(grantee_read, seconds=seconds), "resident's own", rows[1][1]))
    rows.append(
        (
            "attestation (service)",
            rate(attestation, seconds=seconds),
            "landlord's read",
            rate(landlord_read, seconds=seconds),
        )
    )
    api_c, api_r = rate(api_create, seconds=seconds), rate(api_read, seconds=seconds)
    rows.append(("record create (API)", api_c, "service", rows[0][1]))
    rows.append(("record read (API)", api_r, "service", rows[1][1]))
    vault.close()
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="short runs, for a smoke test")
    parser.add_argument("--ledger", action="store_true", help="only the ledger against pymerkle")
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=None,
        help="ledger sizes, comma-separated (default 10000,100000,1000000; 500,1000 with --quick)",
    )
    parser.add_argument("--workdir", default=None, help="where the ledger benchmark's temporary databases go")
    parser.add_argument("--http", action="store_true", help="only the HTTP run (python -m bench.http --help)")
    parser.add_argument(
        "--no-docs", action="store_true", help="leave docs/performance.md alone (--quick never writes it)"
    )
    args, rest = parser.parse_known_args(argv)
    if args.http:
        quick = ["--duration", "1", "--warmup", "0.5", "--rounds", "1", "--shapes", "sqlite-read", "--no-docs"]
        return http_bench.main((quick if args.quick else []) + (["--no-docs"] if args.no_docs else []) + rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    seconds = 0.05 if args.quick else 0.5
    sizes = args.sizes or list(ledger_bench.QUICK_SIZES if args.quick else ledger_bench.DEFAULT_SIZES)
    if args.ledger:
        print(f"CivicVault ledger benchmark (Python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")
        ledger_bench.run(
            sizes,
            seconds=0.2 if args.quick else 1.0,
            workdir=args.workdir,
            durable=ledger_bench.QUICK_DURABLE if args.quick else ledger_bench.DURABLE,
            verify_runs=1 if args.quick else 3,
            quick=args.quick,
            docs=not (args.quick or args.no_docs),
        )
        return 0
    print(f"CivicVault benchmarks (Python {sys.version.split()[0]}, {os.cpu_count()} CPUs); ops/s, best of 3")
    rows = bench_envelopes(seconds)
    with tempfile.TemporaryDirectory() as workdir:
        rows += bench_records(seconds, Path(workdir))
    print(f"| {'operation':<28} | {'ops/s':>10} | {'baseline':<16} | {'ops/s':>10} | {'ratio':>6} |")
    print(f"|{'-' * 30}|{'-' * 12}|{'-' * 18}|{'-' * 12}|{'-' * 8}|")
    for name, ours, base_name, base in rows:
        print(f"| {name:<28} | {ours:>10,.0f} | {base_name:<16} | {base:>10,.0f} | {ours / base:>6.2f} |")
    sys.stdout.flush()
    ledger_bench.run(
        sizes,
        seconds=0.2 if args.quick else 1.0,
        workdir=args.workdir,
        durable=ledger_bench.QUICK_DURABLE if args.quick else ledger_bench.DURABLE,
        verify_runs=1 if args.quick else 3,
        quick=args.quick,
        docs=not (args.quick or args.no_docs),
    )
    if not args.quick:
        sys.stdout.flush()
        http_bench.main(["--no-docs"] if args.no_docs else [])
    return 0


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("sizes are whole numbers separated by commas") from None
    if not sizes or min(sizes) < 2:
        raise argparse.ArgumentTypeError("give at least one size, each at least 2")
    return sorted(set(sizes))


if __name__ == "__main__":
    sys.exit(main())
