"""A signing key's seed in a file of the data home: created once, mode 0600, never overwritten.

The node's ledger key (``ledger_key``) and the vault's attestation key
(``attestation_key``) are each a 32-byte seed kept as JSON::

    {"format": "<the key's format name>", "seed": "<base64 of 32 bytes>"}

``create`` writes a new file with ``O_EXCL`` (two ``civicvault init`` at once
cannot both win) and fsyncs it; an existing file is read and checked, never
replaced, since a replaced key would orphan every signature made with it.
``read`` refuses a file of another format, a bad encoding or another size
with one ``ConfigError`` naming the file.
"""

import base64
import binascii
import json
import os
from pathlib import Path

from vault.core.errors import ConfigError

SEED_SIZE = 32


def create(path: Path, *, format: str, seed: bytes, what: str) -> bool:
    """Write ``seed`` to a new file at ``path``; False (and the file checked) when one exists."""
    if path.exists():
        read(path, format=format, what=what)
        return False
    payload = json.dumps({"format": format, "seed": base64.b64encode(seed).decode("ascii")}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    return True


def read(path: Path, *, format: str, what: str) -> bytes:
    """The seed in the file at ``path``; ``ConfigError`` when it is missing or not a ``format`` file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != format:
            raise ValueError
        seed = base64.b64decode(data["seed"], validate=True)
        if len(seed) != SEED_SIZE:
            raise ValueError
    except FileNotFoundError:
        raise ConfigError(f"No {what} at {path}: run 'civicvault init'.") from None
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        raise ConfigError(f"The {what} file {path} is not a CivicVault {what}.") from None
    return seed
