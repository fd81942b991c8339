"""The node's BLS signing key for checkpoints, kept in the data home.

File ``ledger.key`` (mode 0600), JSON::

    {"format": "civicvault-ledger-key/1", "seed": "<base64 of 32 bytes>"}

The key is derived from the seed (BLS KeyGen). ``civicvault init`` creates it
and never overwrites it.
"""

import base64
import binascii
import json
import os
from pathlib import Path

from crypto.bls import SigningKey
from vault.core.errors import ConfigError

FORMAT = "civicvault-ledger-key/1"


def create(path: Path) -> bool:
    """Create the key file if missing; True when created."""
    if path.exists():
        read(path)
        return False
    payload = json.dumps({"format": FORMAT, "seed": base64.b64encode(os.urandom(32)).decode("ascii")}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    return True


def read(path: Path) -> SigningKey:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise ValueError
        seed = base64.b64decode(data["seed"], validate=True)
        if len(seed) != 32:
            raise ValueError
    except FileNotFoundError:
        raise ConfigError(f"No ledger signing key at {path}: run 'civicvault init'.") from None
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        raise ConfigError(f"The ledger key file {path} is not a CivicVault ledger key.") from None
    return SigningKey(seed)
