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

import base64
import binascii
import json
import os
from dataclasses import dataclass
from pathlib import Path

from crypto import data_integrity
from vault.core.errors import ConfigError

FORMAT = "civicvault-attestation-key/1"


@dataclass(frozen=True)
class AttestationKey:
    seed: bytes

    @property
    def public_key(self) -> bytes:
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
    seed = data_integrity.new_seed()
    payload = json.dumps({"format": FORMAT, "seed": base64.b64encode(seed).decode("ascii")}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    return True


def read(path: Path) -> AttestationKey:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise ValueError
        seed = base64.b64decode(data["seed"], validate=True)
        if len(seed) != data_integrity.SEED_SIZE:
            raise ValueError
    except FileNotFoundError:
        raise ConfigError(f"No attestation key at {path}: run 'civicvault init'.") from None
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        raise ConfigError(f"The attestation key file {path} is not a CivicVault attestation key.") from None
    return AttestationKey(seed)
