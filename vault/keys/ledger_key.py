"""The node's BLS signing key for checkpoints, kept in the data home.

File ``ledger.key`` (mode 0600), JSON::

    {"format": "civicvault-ledger-key/1", "seed": "<base64 of 32 bytes>"}

The key is derived from the seed (BLS KeyGen). ``civicvault init`` creates it
and never overwrites it.
"""

import os
from pathlib import Path

from crypto.bls import SigningKey
from vault.keys import seed_files

FORMAT = "civicvault-ledger-key/1"
WHAT = "ledger signing key"


def create(path: Path) -> bool:
    """Create the key file if missing; True when created."""
    if path.exists():
        read(path)
        return False
    return seed_files.create(path, format=FORMAT, seed=os.urandom(seed_files.SEED_SIZE), what=WHAT)


def read(path: Path) -> SigningKey:
    return SigningKey(seed_files.read(path, format=FORMAT, what=WHAT))
