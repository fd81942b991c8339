"""``civicvault sequencer``: status, drain once, and the loop stopped by a signal."""

import json
import os
import signal
import subprocess
import sys
import time

from tests.vault.cli.test_cli import run_process


def _env(home, **extra):
    return {"CIVICVAULT_HOME": str(home), **extra}


def _pending_events(home, count):
    """``count`` committed events that no sequencer took (as while ``civicvault sequencer`` is down)."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from datetime import UTC, datetime\n"
        "from vault.core.config import Settings\n"
        "from vault.ledger.events import DomainEvent, emit\n"
        "from vault.runtime import Vault\n"
        "vault = Vault.open(Settings.from_env(Path(sys.argv[1])))\n"
        "with vault.transaction() as session:\n"
        "    for n in range(int(sys.argv[2])):\n"
        "        emit(session, DomainEvent(kind='trail.searched', occurred_at=datetime.now(UTC), actor_id='p-x',"
        " subject_id=None, data={'n': n}))\n"
        "vault.close()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICVAULT_")}
    env.update(_env(home, CIVICVAULT_SEQUENCER="external", CIVICVAULT_LEDGER_RECEIPT_WAIT_MS="0"))
    subprocess.run([sys.executable, "-c", code, str(home), str(count)], check=True, env=env)


def test_status_once_and_the_loop(tmp_path):
    home = tmp_path / "home"
    assert run_process("init", env=_env(home)).returncode == 0
    _pending_events(home, 7)

    status = run_process("sequencer", "--status", "--json", env=_env(home))
    assert status.returncode == 0, status.stderr
    found = json.loads(status.stdout)
    assert found["pending"] == 7 and found["tree_size"] == 0 and found["oldest_pending_seconds"] >= 0

    once = run_process("sequencer", "--once", "--json", env=_env(home))
    assert once.returncode == 0, once.stderr
    assert json.loads(once.stdout) == {"sequenced": 7}
    after = json.loads(run_process("sequencer", "--status", "--json", env=_env(home)).stdout)
    assert (after["pending"], after["tree_size"]) == (0, 7)

    # The loop: started, it sequences what arrives, and SIGTERM stops it cleanly.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICVAULT_")}
    env.update(_env(home))
    loop = subprocess.Popen(
        [sys.executable, "-m", "vault.cli", "sequencer", "--interval-ms", "5"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _pending_events(home, 3)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            now = json.loads(run_process("sequencer", "--status", "--json", env=_env(home)).stdout)
            if now["tree_size"] == 10:
                break
            time.sleep(0.1)
        assert (now["tree_size"], now["pending"]) == (10, 0)
    finally:
        loop.send_signal(signal.SIGTERM)
        _, stderr = loop.communicate(timeout=20)
    assert loop.returncode == 0 and "Traceback" not in stderr
    verify = run_process("verify", env=_env(home))
    assert verify.returncode == 0, verify.stderr
    assert "ledger intact: 10 entries" in verify.stdout
