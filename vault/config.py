"""Settings from the environment (``CIVICVAULT_*``) and the ``--home`` option.

Nothing is read at import time; ``Settings.from_env`` is called by the CLI and
by whoever builds the Flask app. A missing master key is an error at start-up,
never replaced by a default.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from crypto import Keyring
from vault.errors import ConfigError
from vault.keyfile import keyring_from_env, read_keyring

DEFAULT_HOME = "civicvault-data"
DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    master_key: str | None = None  # CIVICVAULT_MASTER_KEY, when set
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES

    @classmethod
    def from_env(cls, home: str | os.PathLike | None = None, environ: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        home_path = Path(home or env.get("CIVICVAULT_HOME") or DEFAULT_HOME).expanduser().absolute()
        url = env.get("CIVICVAULT_DATABASE_URL") or f"sqlite:///{home_path / 'vault.db'}"
        max_bytes = env.get("CIVICVAULT_MAX_REQUEST_BYTES") or None
        if max_bytes is not None:
            if not max_bytes.isdigit() or int(max_bytes) < 1024:
                raise ConfigError("CIVICVAULT_MAX_REQUEST_BYTES must be a whole number of bytes, at least 1024.")
        return cls(
            home=home_path,
            database_url=url,
            master_key=env.get("CIVICVAULT_MASTER_KEY") or None,
            max_request_bytes=int(max_bytes) if max_bytes else DEFAULT_MAX_REQUEST_BYTES,
        )

    @property
    def key_file(self) -> Path:
        return self.home / "master.key"

    def load_keyring(self) -> Keyring:
        """The master keyring, or ``ConfigError``: no key, no start."""
        if self.master_key is not None:
            return keyring_from_env(self.master_key)
        return read_keyring(self.key_file)
