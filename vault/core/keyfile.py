"""The master keyring at rest: the key file in the data home, or the environment.

Key file (``master.key``, mode 0600), JSON::

    {"format": "civicvault-keyring/1",
     "keys": {"1": "<base64 of 32 bytes>", "2": "..."}}

``CIVICVAULT_MASTER_KEY`` overrides the file. It holds either one key as
base64 (taken as version 1) or a comma-separated list of ``VERSION:base64``
pairs, so that a rotated keyring can also be supplied from a secret store.
"""

import base64
import binascii
import json
import os
from pathlib import Path

from crypto import Keyring, KeyringError
from vault.core.errors import ConfigError

FORMAT = "civicvault-keyring/1"


def _decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{where} is not valid base64.") from None
    if len(key) != 32:
        raise ConfigError(f"{where} must decode to 32 bytes, not {len(key)}.")
    return key


def keyring_from_env(value: str) -> Keyring:
    value = value.strip()
    if not value:
        raise ConfigError("CIVICVAULT_MASTER_KEY is set but empty.")
    if ":" not in value:
        return Keyring({1: _decode_key(value, "CIVICVAULT_MASTER_KEY")})
    keys: dict[int, bytes] = {}
    for item in value.split(","):
        version, _, b64 = item.partition(":")
        if not version.strip().isdigit() or int(version) < 1:
            raise ConfigError("CIVICVAULT_MASTER_KEY entries must look like VERSION:base64.")
        if int(version) in keys:
            raise ConfigError(f"CIVICVAULT_MASTER_KEY names version {int(version)} twice.")
        keys[int(version)] = _decode_key(b64, f"CIVICVAULT_MASTER_KEY version {int(version)}")
    return Keyring(keys)


def read_keyring(path: Path) -> Keyring:
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"No master key at {path}: run 'civicvault init' or set CIVICVAULT_MASTER_KEY.") from None
    except OSError as exc:
        raise ConfigError(f"Cannot read the master key file {path}: {exc.strerror}.") from None
    try:
        data = json.loads(raw)
        if data.get("format") != FORMAT or not isinstance(data.get("keys"), dict):
            raise ValueError
        keys = {int(v): _decode_key(k, f"key version {v} in {path}") for v, k in data["keys"].items()}
        return Keyring(keys)
    except (ValueError, AttributeError, TypeError, KeyringError):
        raise ConfigError(f"The master key file {path} is not a CivicVault keyring.") from None


def write_keyring(path: Path, keyring: Keyring, *, replace: bool = False) -> None:
    """Write the keyring with mode 0600; refuse to overwrite unless ``replace``.

    A replacement is written to a temporary file and renamed over the old one,
    so a crash leaves either the old or the new keyring, never half of one.
    """
    data = {
        "format": FORMAT,
        "keys": {str(v): base64.b64encode(keyring.key(v)).decode("ascii") for v in keyring.versions},
    }
    payload = (json.dumps(data, indent=2) + "\n").encode("ascii")
    target = path.with_name(path.name + ".tmp") if replace else path
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    if replace and target.exists():
        target.unlink()
    try:
        fd = os.open(target, flags, 0o600)
    except FileExistsError:
        raise ConfigError(f"Refusing to overwrite the existing master key file {path}.") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    if replace:
        os.replace(target, path)
