"""A closed-loop HTTP load generator for the HTTP benchmark (bench/http.py).

``clients`` clients, each on its own kept-alive ``http.client`` connection,
send the next request as soon as the previous one has been answered (closed
loop: the offered load is whatever the server sustains). The clients are
spread over up to ``MAX_PROCESSES`` processes (``python -m bench.load``, threads
within each), so the generator's own GIL does not cap the server. Each round runs ``warmup``
seconds unmeasured, then ``duration`` seconds measured; a request counts in
the window in which it completes. Any answer other than 2xx, and any
connection failure (after which the client reconnects), is an error and is
reported, never dropped.

Only stdlib is imported here, so the spawned processes start quickly.
"""

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass

MAX_PROCESSES = 4
TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Request:
    """What every client sends: one method, path, headers and body (JSON text or None)."""

    method: str
    path: str
    headers: dict
    body: str | None = None


@dataclass(frozen=True)
class Result:
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    statuses: dict
    server_cpu_s: float | None = None  # CPU the server's processes used in the measured window, if watched

    @property
    def cpu_ms_per_request(self) -> float | None:
        if self.server_cpu_s is None or not self.requests:
            return None
        return 1000 * self.server_cpu_s / self.requests

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def _client(port: int, request: Request, start: float, stop: float, out: list, errors: list, statuses: dict) -> None:
    body = request.body.encode() if request.body is not None else None
    headers = dict(request.headers)
    if body is not None:
        headers["Content-Type"] = "application/json"
    connection = None
    while (now := time.perf_counter()) < stop:
        if connection is None:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
        began = now
        try:
            connection.request(request.method, request.path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            status = response.status
            if response.will_close:
                connection.close()
                connection = None
        except (OSError, http.client.HTTPException):
            status = 0  # a connection failure: counted as an error, then a new connection
            if connection is not None:
                connection.close()
            connection = None
        ended = time.perf_counter()
        if start <= ended < stop:
            if 200 <= status < 300:
                out.append(ended - began)
            else:
                errors.append(status)
                statuses[status] = statuses.get(status, 0) + 1
    if connection is not None:
        connection.close()


def _process(port: int, request: Request, threads: int, start_at: float, warmup: float, duration: float) -> dict:
    """One generator process: ``threads`` clients; returns its latencies, error count and error statuses."""
    # perf_counter is not comparable across processes: convert the shared wall-clock start to it.
    offset = time.perf_counter() - time.time()
    start = start_at + offset + warmup
    stop = start + duration
    while time.perf_counter() < start_at + offset:
        time.sleep(0.005)
    latencies: list = []
    errors: list = []
    statuses: dict = {}
    workers = [
        threading.Thread(target=_client, args=(port, request, start, stop, latencies, errors, statuses))
        for _ in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return {"latencies": latencies, "errors": len(errors), "statuses": statuses}


def process_tree_cpu(pid: int) -> float:
    """CPU seconds (user and system) used so far by process ``pid`` and its children (a server's master and
    workers), from /proc; 0.0 where there is no /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    try:
        entries = os.listdir("/proc")
    except OSError:
        return 0.0
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        # after the command: state, ppid, ..., utime (14th field of the line) and stime (15th)
        if int(entry) == pid or int(fields[1]) == pid:
            total += int(fields[11]) + int(fields[12])
    return total / tick


class _CpuWindow(threading.Thread):
    """Reads a server's CPU time at the start and the end of the measured window."""

    def __init__(self, pid: int, start: float, stop: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.start_at, self.stop_at = pid, start, stop
        self.used: float | None = None

    def run(self) -> None:
        time.sleep(max(0.0, self.start_at - time.time()))
        before = process_tree_cpu(self.pid)
        time.sleep(max(0.0, self.stop_at - time.time()))
        self.used = process_tree_cpu(self.pid) - before


def run(
    port: int, request: Request, *, clients: int, duration: float, warmup: float, server_pid: int | None = None
) -> Result:
    """One measured round against ``127.0.0.1:port``; stops by itself after ``warmup + duration`` seconds.

    With ``server_pid``, the CPU time of that process and its children in
    the measured window is reported too (``Result.server_cpu_s``).
    """
    if clients < 1 or duration <= 0 or warmup < 0:
        raise ValueError("clients >= 1, duration > 0 and warmup >= 0")
    processes = min(clients, MAX_PROCESSES)
    split = [clients // processes + (1 if i < clients % processes else 0) for i in range(processes)]
    start_at = time.time() + 0.5 + 0.2 * processes  # time for the interpreters to start (stdlib only)
    spec = {"port": port, "request": asdict(request), "start_at": start_at, "warmup": warmup, "duration": duration}
    watch = None if server_pid is None else _CpuWindow(server_pid, start_at + warmup, start_at + warmup + duration)
    if watch is not None:
        watch.start()
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.load", json.dumps({**spec, "threads": threads})],
            stdout=subprocess.PIPE,
            text=True,
        )
        for threads in split
    ]
    outputs = []
    try:
        for child in children:
            out, _ = child.communicate(timeout=start_at - time.time() + warmup + duration + TIMEOUT_S + 10)
            if child.returncode != 0:
                raise RuntimeError(f"a load generator process failed ({child.returncode})")
            outputs.append(json.loads(out))
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    if watch is not None:
        watch.join(TIMEOUT_S)
    latencies = sorted(x for part in outputs for x in part["latencies"])
    statuses: dict = {}
    for part in outputs:
        for status, count in part["statuses"].items():
            statuses[int(status)] = statuses.get(int(status), 0) + count
    return Result(
        requests=len(latencies),
        errors=sum(part["errors"] for part in outputs),
        seconds=duration,
        p50_ms=_percentile(latencies, 0.50) * 1000,
        p99_ms=_percentile(latencies, 0.99) * 1000,
        statuses=statuses,
        server_cpu_s=None if watch is None else watch.used,
    )


def _percentile(ordered: list, q: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.5) - 1))]


def json_body(value) -> str:
    return json.dumps(value, separators=(",", ":"))


def _main() -> None:
    """A generator process: its spec as JSON in its one argument, its result as JSON on stdout."""
    spec = json.loads(sys.argv[1])
    result = _process(
        spec["port"], Request(**spec["request"]), spec["threads"], spec["start_at"], spec["warmup"], spec["duration"]
    )
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    _main()
