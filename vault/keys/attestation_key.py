"""The vault's Ed25519 key for signing attestations, kept in the data home.

File ``attestation.key`` (mode 0600), JSON::

    {"format": "civicvault-attestation-key/1", "seed": "<base64 of 32 bytes>"}

The seed is the Ed25519 private key (RFC 8032). Its public key is published
as a ``did:key`` (``GET /api/v1/attestations/key``, ``civicvault attest key
--show``), and every attestation's proof names it (docs/attestations.md).
``civicvault init`` creates the file, also in a home that lacks it, and
never overwrites it: a replaced key would make every attestation issued so
far unverifiable against the published one.
"""

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from crypto import data_integrity
from vault.keys import seed_files

FORMAT = "civicvault-attestation-key/1"
WHAT = "attestation key"


@dataclass(frozen=True)
class AttestationKey:
    seed: bytes

    @cached_property
    def public_key(self) -> bytes:  # a scalar multiplication (about 1 ms): derived once per key
        return data_integrity.public_key(self.seed)

    @property
    def did(self) -> str:
        return data_integrity.did_key(self.public_key)

    @property
    def verification_method(self) -> str:
        return data_integrity.verification_method(self.public_key)

    @property
    def public_key_multibase(self) -> str:
        return data_integrity.multibase_key(self.public_key)

    def __repr__(self) -> str:  # never the seed in a log or traceback
        return f"AttestationKey({self.did})"


def create(path: Path) -> bool:
    """Create the key file if missing; True when created. An existing file is checked, never replaced."""
    if path.exists():
        read(path)
        return False
    return seed_files.create(path, format=FORMAT, seed=data_integrity.new_seed(), what=WHAT)


# The key last read from each path, with the file's identity (inode, size, mtime): a request that signs reads
# the file, but derives the public key only when the file is new to this process or has been replaced.
_READ: dict[Path, tuple[tuple[int, int, int], AttestationKey]] = {}


def read(path: Path) -> AttestationKey:
    try:
        found = path.stat()
    except OSError:
        found = None
    stamp = (found.st_ino, found.st_size, found.st_mtime_ns) if found is not None else None
    cached = _READ.get(path)
    if stamp is not None and cached is not None and cached[0] == stamp:
        return cached[1]
    key = AttestationKey(seed_files.read(path, format=FORMAT, what=WHAT))
    if stamp is not None:
        _READ[path] = (stamp, key)
    return key
