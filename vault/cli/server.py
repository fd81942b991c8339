"""Run the API under gunicorn, the app built in each worker after the fork.

The app is named by string (``api:create_app()``), as gunicorn's own command
line would, so the vault package keeps no import of the Flask shell. Settings
reach the workers through the environment they inherit. Only ``civicvault
serve`` imports this module (gunicorn, and Flask in the workers).

Serving model: gunicorn's threaded workers (gthread), each a pool of threads
behind one event loop. A sync worker reads a request with the whole process,
so two clients that trickle header lines stall two sync workers and with them
the API. Here a slow client holds one thread at most, and only for a bounded
time: ``_BoundedThreadWorker`` gives every request a deadline for its request
line and headers and another for its body, and closes the connection of a
client that misses one. Idle connections never hold a thread beyond
gunicorn's own wait for the first byte. A reverse proxy that buffers whole
requests in front of the vault (docs/operations.md, "Serving and
durability") removes slow clients from the picture altogether.
"""

import os
import socket
import time
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.util import import_app
from gunicorn.workers.gthread import ThreadWorker

from vault.core.config import Settings
from vault.core.errors import ConfigError

APP = "api:create_app()"

# Threads per worker: each slow client holds one for at most HEADER_SECONDS (or BODY_SECONDS).
DEFAULT_THREADS = 32
# The request line and headers must arrive within this many seconds of a thread taking the request up.
DEFAULT_HEADER_SECONDS = 10.0
# The body must arrive within this many seconds of the headers (1 MiB at 35 KB/s).
DEFAULT_BODY_SECONDS = 30.0
# Each write of an answer (Python's sendall: the whole call) must finish within this long, so a client that
# does not read cannot keep a thread; as long as the 60-second limit per request that sync workers had.
SEND_SECONDS = 60.0


def _seconds(name: str, default: float) -> float:
    """A timeout from the environment (``civicvault serve`` passes it to the workers this way)."""
    value = os.environ.get(name) or None
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0 < number <= 3600:  # also refuses nan and inf
        raise ConfigError(f"{name} must be a number of seconds greater than 0 and at most 3600.")
    return number


def request_timeouts() -> tuple[float, float]:
    """Seconds for a request's line and headers, and for its body; ``ConfigError`` for a bad setting."""
    return (
        _seconds("CIVICVAULT_SERVE_HEADER_TIMEOUT", DEFAULT_HEADER_SECONDS),
        _seconds("CIVICVAULT_SERVE_BODY_TIMEOUT", DEFAULT_BODY_SECONDS),
    )


class _DeadlineSocket:
    """A client socket whose reads end at a deadline, as if the client had closed.

    gunicorn reads requests from a blocking socket with no timeout, so a client
    that sends one byte a second keeps a thread for ever. Every ``recv`` here
    waits at most until the current deadline; past it the connection counts as
    expired: reads answer end-of-file at once (gunicorn then drops the
    connection without lingering, and a body cut short is a 400 for the
    application), and a warning names the phase that was too slow. Everything
    else is the real socket's.
    """

    def __init__(self, sock: socket.socket, log: Any) -> None:
        self._sock = sock
        self._log = log
        self._deadline: float | None = None
        self._phase = ""
        self._seconds = 0.0
        self.expired = False

    def arm(self, seconds: float, phase: str) -> None:
        self._deadline = time.monotonic() + seconds
        self._seconds = seconds
        self._phase = phase

    def disarm(self) -> None:
        self._deadline = None

    def _expire(self) -> bytes:
        if not self.expired:
            self.expired = True
            self._log.warning(
                "closed a slow client's connection: its request %s did not arrive within %g s",
                self._phase,
                self._seconds,
            )
        return b""

    def recv(self, size: int, *flags: int) -> bytes:
        if self.expired:
            return b""
        if self._deadline is None:
            return self._sock.recv(size, *flags)
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            return self._expire()
        prior = self._sock.gettimeout()
        self._sock.settimeout(remaining if prior is None else min(prior, remaining))
        try:
            return self._sock.recv(size, *flags)
        except TimeoutError:
            if time.monotonic() >= self._deadline:
                return self._expire()
            raise
        finally:
            self._sock.settimeout(prior)

    def sendall(self, data: bytes, *flags: int) -> None:
        prior = self._sock.gettimeout()
        self._sock.settimeout(SEND_SECONDS)
        try:
            self._sock.sendall(data, *flags)
        finally:
            self._sock.settimeout(prior)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _BoundedThreadWorker(ThreadWorker):
    """gunicorn's gthread worker, with a deadline on reading each request (``_DeadlineSocket``)."""

    header_seconds = DEFAULT_HEADER_SECONDS
    body_seconds = DEFAULT_BODY_SECONDS

    def init_process(self) -> None:
        self.header_seconds, self.body_seconds = request_timeouts()
        self._in_pool = 0  # connections handed to the thread pool and not yet back (main thread only)
        super().init_process()

    # Accept only while a thread is free. gunicorn's workers share the listening socket and the kernel
    # does not spread connections evenly: left alone, one worker took 44 of 60 slow clients and queued
    # healthy requests behind them while the other had threads to spare. A full worker stops accepting,
    # so a new connection waits in the listen backlog for whichever worker frees a thread first.
    # (gunicorn 27's gthread loop has set_accept_enabled; with an older gthread the deadlines still hold,
    # without this balance.)
    _can_gate = hasattr(ThreadWorker, "set_accept_enabled")

    def enqueue_req(self, conn: Any) -> None:
        self._in_pool += 1
        super().enqueue_req(conn)
        if self._can_gate and self._in_pool >= self.cfg.threads:
            self.set_accept_enabled(False)

    def finish_request(self, *args: Any) -> None:
        # One call per connection handed to the pool: (conn, future), or (future) in older gunicorns.
        self._in_pool -= 1
        super().finish_request(*args)

    def set_accept_enabled(self, enabled: bool) -> None:
        # Once accepting is off, the main loop calls this again on every round (at least once a second, and
        # whenever a thread finishes), so accepting resumes as soon as a thread is free.
        super().set_accept_enabled(enabled and self._in_pool < self.cfg.threads)

    def handle(self, conn: Any) -> Any:
        # In the pool thread, before gunicorn builds the parser on the socket: the parser then reads through
        # the deadline. The main loop holds no reference to the socket while a thread has the connection.
        if not isinstance(conn.sock, _DeadlineSocket):
            conn.sock = _DeadlineSocket(conn.sock, self.log)
        conn.sock.arm(self.header_seconds, "line and headers")
        return super().handle(conn)

    def handle_request(self, req: Any, conn: Any) -> Any:
        conn.sock.arm(self.body_seconds, "body")
        try:
            return super().handle_request(req, conn)
        finally:
            conn.sock.disarm()  # the answer is sent; gunicorn bounds what follows (draining, closing) itself


class _Server(BaseApplication):
    def __init__(self, options: dict[str, Any]) -> None:
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        app = import_app(APP)
        _start_sequencer(app)
        _start_checkpointer()
        _start_anchorer()
        return app


# A server's background sequencer (Sequencer.run). Requests that wait for their index sequence their own;
# this takes the events of requests that do not wait (CIVICVAULT_LEDGER_RECEIPT_WAIT_MS=0, or past their
# wait), which wake it at once, and, looking every SEQUENCER_IDLE_SECONDS, those nobody in this process
# knows of (of a process that died between its commit and its batch, or of a command run beside the
# server). After finding work it looks again after SEQUENCER_POLL_SECONDS (it drains without pause while
# there is some). On SQLite the writers' shared transaction sequences, so it only ever finds events
# queued in external mode. (It looked every 10 ms before: an idle server with 4 workers spent a third of
# a CPU on it.)
SEQUENCER_POLL_SECONDS = 0.01
SEQUENCER_POLL_SECONDS_SQLITE = 1.0
SEQUENCER_IDLE_SECONDS = 1.0


def _start_sequencer(app: Any) -> None:
    """In each worker (CIVICVAULT_SEQUENCER=server): sequence what is pending in the background."""
    import threading

    from vault.runtime import Vault

    vault = next(v for v in app.extensions.values() if isinstance(v, Vault))  # the app's own: one step lock
    if not vault.sequencer.sequences:
        return
    threading.Thread(
        target=vault.sequencer.run,
        args=(threading.Event(),),
        kwargs={
            "interval": SEQUENCER_POLL_SECONDS_SQLITE if vault.ledger_state.inline else SEQUENCER_POLL_SECONDS,
            "idle": SEQUENCER_IDLE_SECONDS,
        },
        name="civicvault-sequencer",
        daemon=True,
    ).start()


def _start_checkpointer() -> None:
    """In each worker: sign periodic checkpoints in the background (one signer at a time)."""
    import logging
    import socket
    import threading
    import time

    from vault.keys import ledger_key
    from vault.ledger import checkpoints
    from vault.runtime import Vault

    settings = Settings.from_env()
    if settings.checkpoint_seconds == 0 or not settings.ledger_key_file.exists():
        return
    log = logging.getLogger("civicvault.checkpoints")
    holder = f"{socket.gethostname()}:{os.getpid()}"

    def loop() -> None:
        vault = Vault.open(settings)
        key = ledger_key.read(settings.ledger_key_file)
        pause = min(5.0, float(settings.checkpoint_seconds))
        while True:
            try:
                signed = checkpoints.sign_if_due(
                    vault,
                    key=key,
                    origin=settings.ledger_origin,
                    every=settings.checkpoint_every,
                    seconds=settings.checkpoint_seconds,
                    holder=holder,
                    now=vault.now(),
                )
                if signed is not None:
                    log.info("signed checkpoint at size %d", signed.tree_size)
            except Exception:  # keep the worker serving; the next round retries
                log.exception("periodic checkpoint failed")
            time.sleep(pause)

    threading.Thread(target=loop, name="civicvault-checkpointer", daemon=True).start()


def _start_anchorer() -> None:
    """In each worker: anchor checkpoints on an EVM chain in the background, when configured (docs/anchoring.md)."""
    import logging
    import socket

    from vault.anchoring.settings import AnchorSettings
    from vault.runtime import Vault

    settings = Settings.from_env()
    anchor_settings = AnchorSettings.from_env(settings.home)
    if not anchor_settings.background:
        return
    from vault.anchoring.background import start_in_worker

    try:
        start_in_worker(Vault.open(settings), anchor_settings, holder=f"{socket.gethostname()}:{os.getpid()}")
    except Exception as exc:  # serve without anchoring rather than not at all; say why (never the key)
        detail = getattr(exc, "detail", type(exc).__name__)
        logging.getLogger("civicvault.anchoring").error("periodic anchoring is off: %s", detail)


def run(settings: Settings, *, listener: socket.socket, workers: int, threads: int = DEFAULT_THREADS) -> None:
    """Serve on ``listener`` (bound and listening, see ``vault.cli.listen``), which gunicorn takes over."""
    request_timeouts()  # a bad setting is one sentence here, not a worker that fails to boot
    os.environ["CIVICVAULT_HOME"] = str(settings.home)
    os.environ["CIVICVAULT_DATABASE_URL"] = settings.database_url
    _Server(
        {
            # gunicorn adopts the socket and closes our descriptor: detach so that we never close it twice.
            "bind": f"fd://{listener.detach()}",
            "workers": workers,
            "worker_class": _BoundedThreadWorker,
            "threads": threads,
            "preload_app": False,  # one engine per worker, never shared across fork
            "accesslog": "-",
            # Method, path and status only: query strings may carry ids.
            "access_log_format": '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms',
            # A worker whose event loop is silent this long is killed and replaced (its threads with it).
            "timeout": 60,
            # On a restart or stop, requests in progress get this long to finish.
            "graceful_timeout": 30,
            # An idle kept-alive connection (or one that never sent a byte) is closed after this long.
            "keepalive": 5,
            # Request line, header count and header size (gunicorn answers 400 beyond them): a bearer token,
            # a session cookie and a proxy's forwarding headers fit with room to spare.
            "limit_request_line": 4094,
            "limit_request_fields": 64,
            "limit_request_field_size": 8190,
            "control_socket_disable": True,  # no files outside the data home
        }
    ).run()
