"""The benchmark runs end to end (a smoke run; its figures are not asserted)."""

import subprocess
import sys


def test_bench_quick_runs_and_reports_every_row():
    result = subprocess.run([sys.executable, "-m", "bench", "--quick"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for row in ("seal 65536 B", "unseal 256 B", "record create (service)", "record read (API)"):
        assert row in result.stdout
