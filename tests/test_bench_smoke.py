"""The benchmark runs end to end (a smoke run; its figures are not asserted)."""

import subprocess
import sys


def test_bench_quick_runs_and_reports_every_row():
    result = subprocess.run([sys.executable, "-m", "bench", "--quick"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for row in (
        "seal 65536 B",
        "unseal 256 B",
        "record create (service)",
        "attestation (service)",
        "record read (API)",
    ):
        assert row in result.stdout


def test_bench_http_tiny_round_has_numbers_and_no_errors():
    """One 1-second round on SQLite with 2 clients: the vault and the plaintext baseline both answer."""
    result = subprocess.run(
        [sys.executable, "-m", "bench.http", "--duration", "1", "--warmup", "0.3", "--rounds", "1"]
        + ["--shapes", "sqlite-read,sqlite-create", "--clients", "2", "--no-docs"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| SQLite")]
    assert len(rows) == 2, result.stdout
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        vault_rps, plain_rps = float(cells[1].replace(",", "")), float(cells[3].replace(",", ""))
        assert vault_rps > 0 and plain_rps > 0, row
        assert cells[5].endswith("x") and float(cells[5][:-1]) > 0, row
        vault_cpu, plain_cpu = (float(v) for v in cells[6].split(" / "))  # server CPU ms per request
        assert vault_cpu > 0 and plain_cpu > 0, row
        assert cells[7] == "0 / 0", row


def test_profile_read_counts_one_main_transaction_per_granted_read():
    """``python -m bench.profile_read``: the statement table, the rates and both profiles; one main transaction."""
    result = subprocess.run(
        [sys.executable, "-m", "bench.profile_read", "--reads", "5", "--repeats", "1", "--top", "3", "--statements"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    main = next(line for line in out.splitlines() if line.startswith("| main |"))
    assert [cell.strip() for cell in main.strip("|").split("|")][2] == "1", main
    assert "[main] SELECT api_tokens." in out and "reads/s" in out and "CPU ms per read" in out
    assert "by cumulative time" in out and "by own time" in out and "consent facts" in out
