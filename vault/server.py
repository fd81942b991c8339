"""Run the API under gunicorn, the app built in each worker after the fork.

The app is named by string (``api:create_app()``), as gunicorn's own command
line would, so the vault package keeps no import of the Flask shell. Settings
reach the workers through the environment they inherit.
"""

import os

from gunicorn.app.base import BaseApplication
from gunicorn.util import import_app

from vault.config import Settings

APP = "api:create_app()"


class _Server(BaseApplication):
    def __init__(self, options: dict) -> None:
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self):
        return import_app(APP)


def run(settings: Settings, *, host: str, port: int, workers: int) -> None:
    os.environ["CIVICVAULT_HOME"] = str(settings.home)
    os.environ["CIVICVAULT_DATABASE_URL"] = settings.database_url
    _Server(
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "preload_app": False,  # one engine per worker, never shared across fork
            "accesslog": "-",
            # Method, path and status only: query strings may carry ids.
            "access_log_format": '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms',
            "timeout": 60,
            "control_socket_disable": True,  # no files outside the data home
        }
    ).run()
