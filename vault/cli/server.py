"""Run the API under gunicorn, the app built in each worker after the fork.

The app is named by string (``api:create_app()``), as gunicorn's own command
line would, so the vault package keeps no import of the Flask shell. Settings
reach the workers through the environment they inherit. Only ``civicvault
serve`` imports this module (gunicorn, and Flask in the workers).
"""

import os
import socket
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.util import import_app

from vault.core.config import Settings

APP = "api:create_app()"


class _Server(BaseApplication):
    def __init__(self, options: dict[str, Any]) -> None:
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        app = import_app(APP)
        _start_checkpointer()
        _start_anchorer()
        return app


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


def run(settings: Settings, *, listener: socket.socket, workers: int) -> None:
    """Serve on ``listener`` (bound and listening, see ``vault.cli.listen``), which gunicorn takes over."""
    os.environ["CIVICVAULT_HOME"] = str(settings.home)
    os.environ["CIVICVAULT_DATABASE_URL"] = settings.database_url
    _Server(
        {
            # gunicorn adopts the socket and closes our descriptor: detach so that we never close it twice.
            "bind": f"fd://{listener.detach()}",
            "workers": workers,
            "preload_app": False,  # one engine per worker, never shared across fork
            "accesslog": "-",
            # Method, path and status only: query strings may carry ids.
            "access_log_format": '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms',
            "timeout": 60,
            "control_socket_disable": True,  # no files outside the data home
        }
    ).run()
