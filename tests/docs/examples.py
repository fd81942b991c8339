"""Find the shell examples of a Markdown page and run them, in order, in one bash.

The convention (docs/README.md, "Examples that run"):

* a page whose examples run holds the line ``<!-- examples: run -->`` on its own;
* on such a page every fenced block whose info string is exactly ``sh`` runs, in
  page order, in one ``bash -euo pipefail`` for the whole page, so a block may
  use the variables an earlier block set;
* any other info string (``sh-norun``, ``text``, ``console``, ``nginx``, ``json``,
  ...) is shown, never run: commands that start a server themselves
  (``make serve``, ``make test``), need a chain or another machine, or hold
  placeholders are ``sh-norun``.

A failure names the page, the block and the line of the command that failed,
and shows that block with what it printed on stdout and stderr.
"""

import os
import re
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

MARKER = "<!-- examples: run -->"
RUN = "sh"
NORUN = "sh-norun"

_OPEN = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_TAG = "[docs-example]"
_FAILED = re.compile(re.escape(_TAG) + r" failed block=(\d+) line=(\d+) status=(\d+) command=(.*)")


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it opens (1-based line of the fence), its info string and text."""

    line: int
    info: str
    text: str

    @property
    def first_line(self) -> int:
        """The page line of the block's first line of code."""
        return self.line + 1


def fenced_blocks(markdown: str) -> list[Block]:
    """Every fenced code block of a CommonMark page, in order (indented ones in lists included)."""
    blocks: list[Block] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        opened = _OPEN.match(lines[i])
        if not opened or (opened["fence"][0] == "`" and "`" in opened["info"]):
            i += 1
            continue
        indent, fence = len(opened["indent"]), opened["fence"]
        closing = re.compile(rf"^\s*{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not closing.match(lines[j]):
            line = lines[j]
            strip = len(line) - len(line.lstrip(" "))
            body.append(line[min(indent, strip) :])
            j += 1
        blocks.append(Block(line=i + 1, info=opened["info"].strip(), text="\n".join(body)))
        i = j + 1
    return blocks


def is_executable(markdown: str) -> bool:
    """True for a page marked with ``<!-- examples: run -->`` on a line of its own."""
    return any(line.strip() == MARKER for line in markdown.splitlines())


def runnable_blocks(markdown: str) -> list[Block]:
    """The blocks that run: the ``sh`` blocks of a page marked executable, none otherwise."""
    if not is_executable(markdown):
        return []
    return [block for block in fenced_blocks(markdown) if block.info == RUN]


@dataclass(frozen=True)
class PageRun:
    page: Path
    blocks: list[Block]
    returncode: int | None  # None: stopped at the time limit
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def failure(self) -> str | None:
        """What a reader needs to fix the page: block, command, its stdout and stderr; None if all ran."""
        if self.ok:
            return None
        failed = _FAILED.search(self.stderr)
        failing_line: int | None = None
        block: Block | None
        if failed:
            number, line, status, command = int(failed[1]), int(failed[2]), failed[3], failed[4]
            block = self.blocks[number - 1]
            failing_line = block.first_line + line - 1
            what = f"exit status {status} at {self.page.name}:{failing_line}: {command.strip()}"
        else:
            number = self._last_started()
            block = self.blocks[number - 1] if number else None
            if self.returncode is None:
                what = "stopped at the time limit (it hung)"
            else:
                what = f"bash ended with status {self.returncode}"
        if block is None:
            return f"{self.page.name}: {what} before any block started.\n{self.stderr[-3000:]}"
        heading = f"{self.page.name}, block {number} of {len(self.blocks)} (```{block.info} at line {block.line})"
        return "\n".join(
            [
                f"{heading}: {what}",
                "--- the block:",
                _numbered(block, mark=failing_line),
                "--- its stdout:",
                _tail(_section(self.stdout, number)),
                "--- its stderr:",
                _tail(_section(self.stderr, number)),
            ]
        )

    def _last_started(self) -> int:
        started = re.findall(re.escape(_TAG) + r" block (\d+)", self.stderr)
        return int(started[-1]) if started else 0


def _numbered(block: Block, *, mark: int | None = None) -> str:
    """The block with its page line numbers, the failing line marked with ``>``."""
    lines = []
    for k, text in enumerate(block.text.splitlines()):
        number = block.first_line + k
        lines.append(f"{'>' if number == mark else ' '}{number:5} | {text}")
    return "\n".join(lines)


def _section(output: str, number: int) -> str:
    """What one block printed: the text between its start marker and the next."""
    start = output.rfind(f"{_TAG} block {number}\n")
    if start < 0:
        return output
    text = output[start:].split("\n", 1)[1] if "\n" in output[start:] else ""
    end = text.find(f"{_TAG} block {number + 1}\n")
    text = text if end < 0 else text[:end]
    return "\n".join(line for line in text.splitlines() if not line.startswith(f"{_TAG} failed"))


def _tail(text: str, limit: int = 4000) -> str:
    text = text.strip("\n")
    if not text:
        return "(nothing)"
    return text if len(text) <= limit else "...\n" + text[-limit:]


def script_for(blocks: list[Block]) -> str:
    """One bash script: each block in turn, with markers that say which block printed what and which failed."""
    parts = [
        "set -euo pipefail",
        # Runs when a command fails under set -e: name the block and the line in it, counted from 1.
        f'trap \'DOCS_STATUS=$?; printf "\\n{_TAG} failed block=%s line=%s status=%s command=%s\\n" '
        '"$DOCS_BLOCK" "$((LINENO - DOCS_BLOCK_START))" "$DOCS_STATUS" "$BASH_COMMAND" >&2\' ERR',
    ]
    for number, block in enumerate(blocks, start=1):
        parts.append(f"DOCS_BLOCK={number}; printf '{_TAG} block {number}\\n'; printf '{_TAG} block {number}\\n' >&2")
        # LINENO of the line after this one, minus one: the block's lines count from 1.
        parts.append("DOCS_BLOCK_START=$LINENO")
        parts.append(block.text)
    return "\n".join(parts) + "\n"


def run_page(page: Path, *, env: dict[str, str], cwd: Path, timeout: float) -> PageRun:
    """Run the page's runnable blocks in one ``bash -euo pipefail`` in ``cwd``, stopped after ``timeout`` s."""
    blocks = runnable_blocks(page.read_text(encoding="utf-8"))
    script = cwd / f".{page.stem}-examples.sh"
    script.write_text(script_for(blocks), encoding="utf-8")
    process = subprocess.Popen(
        ["bash", "-euo", "pipefail", str(script)],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: a time-out stops every command it started
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
        returncode: int | None = process.returncode
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        returncode = None
    return PageRun(page=page, blocks=blocks, returncode=returncode, stdout=stdout, stderr=stderr)
