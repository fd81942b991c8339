"""Docs that run: the ``sh`` examples of README.md and docs/ pass against a live server.

Each page marked ``<!-- examples: run -->`` gets a fresh home (``civicvault init``
and ``civicvault demo``; the pair is run once per session and copied, which is
the same home and saves a few seconds a page) and its own ``civicvault serve
--workers 1`` on a free port. Its ``sh`` blocks then run in order in one ``bash
-euo pipefail`` (tests/docs/examples.py) in a scratch directory that holds the
home as ``civicvault-data``, with ``CIVICVAULT_HOME`` and ``BASE`` pointing at
the home and the server, and ``civicvault`` on the ``PATH``. The examples read
``BASE`` as ``${BASE:-http://127.0.0.1:8080}``, so they work unchanged against
``make serve``. SQLite only: the operations page backs up and restores SQLite files.
"""

import contextlib
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.docs.examples import MARKER, NORUN, RUN, fenced_blocks, is_executable, run_page, runnable_blocks

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
EXECUTABLE = [page for page in PAGES if is_executable(page.read_text(encoding="utf-8"))]
BIN = Path(sys.executable).parent  # the virtualenv's bin: civicvault, python3
PAGE_TIMEOUT = 120  # seconds for one page's examples; they take a few
CLI = [sys.executable, "-m", "vault.cli"]
# Commands that start a server (or the whole suite) of their own: never in a block that runs.
STARTS_A_SERVER = re.compile(r"^\s*(make (serve|test)\b|(\S*/)?civicvault (--home \S+ )?serve\b)")


def _name(page: Path) -> str:
    return str(page.relative_to(ROOT))


def _clean_environment() -> dict[str, str]:
    """The caller's environment without any CIVICVAULT_ setting (a test database URL, a master key)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICVAULT_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/healthz")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory) -> Path:
    """``civicvault init`` and ``civicvault demo`` once: the home every page starts from, copied."""
    for tool in ("bash", "curl", "jq"):
        if shutil.which(tool) is None:
            pytest.skip(f"the examples need {tool}, which is not installed")
    home = tmp_path_factory.mktemp("docs-template") / "civicvault-data"
    env = {**_clean_environment(), "CIVICVAULT_HOME": str(home)}
    subprocess.run([*CLI, "init"], env=env, check=True, capture_output=True)
    demo = subprocess.run([*CLI, "demo"], env=env, check=True, capture_output=True, text=True)
    assert "Demo data loaded" in demo.stdout, demo.stdout
    return home


@pytest.fixture
def live_server(tmp_path, demo_home):
    """A copy of the demo home in ``tmp_path/civicvault-data`` served on a free port: (env, work dir, log)."""
    home = tmp_path / "civicvault-data"
    shutil.copytree(demo_home, home)
    port = _free_port()
    env = {**_clean_environment(), "CIVICVAULT_HOME": str(home), "BASE": f"http://127.0.0.1:{port}"}
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while not _healthy(port):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail("civicvault serve did not start:\n" + log.read_text(errors="replace")[-3000:])
            time.sleep(0.1)
        yield env, tmp_path, log
    finally:
        _stop(server)


def _stop(server: subprocess.Popen) -> None:
    """Stop gunicorn and its workers (its own process group), then reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait()


@pytest.mark.parametrize("doc", EXECUTABLE, ids=_name)
def test_the_examples_of_the_page_run(doc: Path, live_server) -> None:
    env, work, log = live_server
    blocks = runnable_blocks(doc.read_text(encoding="utf-8"))
    assert blocks, f"{_name(doc)} is marked {MARKER} but holds no ```{RUN} block"
    result = run_page(doc, env=env, cwd=work, timeout=PAGE_TIMEOUT)
    if not result.ok:
        server_log = log.read_text(errors="replace").strip().splitlines()[-15:]
        pytest.fail(f"{result.failure()}\n--- the server's log (last lines):\n" + "\n".join(server_log), pytrace=False)


def test_the_pages_that_run_include_the_readme_and_the_api_reference() -> None:
    # Without this, losing the marker would turn the test above into no test at all.
    assert {"README.md", "docs/api.md"} <= {_name(page) for page in EXECUTABLE}


@pytest.mark.parametrize("doc", PAGES, ids=_name)
def test_every_shell_block_says_whether_it_runs(doc: Path) -> None:
    """``sh`` runs and ``sh-norun`` does not: no shell block under another name, no ``sh`` block that never runs."""
    text = doc.read_text(encoding="utf-8")
    for block in fenced_blocks(text):
        assert block.info not in ("bash", "shell", "zsh"), (
            f"{_name(doc)}:{block.line}: shell examples are ```{RUN} (run) or ```{NORUN} (shown only)"
        )
        if block.info == RUN:
            assert is_executable(text), (
                f"{_name(doc)}:{block.line}: a ```{RUN} block runs; mark the page {MARKER} or use ```{NORUN}"
            )
            starts = [line for line in block.text.splitlines() if STARTS_A_SERVER.match(line)]
            assert not starts, f"{_name(doc)}:{block.line}: {starts[0].strip()!r} starts a server: use ```{NORUN}"


# --- the harness itself ---------------------------------------------------------------------------------

BROKEN_PAGE = f"""# A page with a broken example

{MARKER}

```{RUN}
GREETING=hello
echo "$GREETING" > first.txt
```

```{NORUN}
exit 3   # shown, never run
```

```json
{{"not": "run either"}}
```

- In a list:

  ```{RUN}
  echo "block two sees $GREETING"
  echo "to stderr" >&2
  ls no-such-file
  echo "never printed"
  ```

```{RUN}
touch third.txt
```
"""


def test_a_broken_example_fails_and_names_its_block_and_command(tmp_path: Path) -> None:
    page = tmp_path / "broken.md"
    page.write_text(BROKEN_PAGE, encoding="utf-8")
    assert [b.info for b in fenced_blocks(BROKEN_PAGE)] == [RUN, NORUN, "json", RUN, RUN]
    assert len(runnable_blocks(BROKEN_PAGE)) == 3

    result = run_page(page, env=_clean_environment(), cwd=tmp_path, timeout=30)

    assert not result.ok
    message = result.failure()
    assert message is not None
    failing_line = BROKEN_PAGE.splitlines().index("  ls no-such-file") + 1
    assert f"broken.md, block 2 of 3 (```{RUN} at line {failing_line - 3})" in message, message
    assert f"exit status 2 at broken.md:{failing_line}: ls no-such-file" in message, message
    assert f">{failing_line:5} | ls no-such-file" in message  # the block, its failing line marked
    assert "block two sees hello" in message  # its stdout, with the variable block 1 set
    assert "to stderr" in message and "no-such-file" in message  # its stderr
    assert "never printed" not in result.stdout
    assert (tmp_path / "first.txt").read_text() == "hello\n"  # block 1 ran
    assert not (tmp_path / "third.txt").exists()  # nothing after the failure ran


def test_a_hanging_example_is_stopped_at_the_time_limit(tmp_path: Path) -> None:
    page = tmp_path / "hangs.md"
    page.write_text(f"{MARKER}\n\n```{RUN}\necho started\nsleep 60\n```\n", encoding="utf-8")
    started = time.monotonic()
    result = run_page(page, env=_clean_environment(), cwd=tmp_path, timeout=1)
    assert time.monotonic() - started < 15
    assert result.returncode is None
    message = result.failure()
    assert message is not None and "block 1 of 1" in message and "time limit" in message, message


def test_a_page_without_the_marker_runs_nothing() -> None:
    assert runnable_blocks(BROKEN_PAGE.replace(MARKER, "")) == []
    assert not is_executable(f"Write `{MARKER}` near the top of a page.")  # quoted, not a marker
