"""What the vault's keys look like now, for ``civicvault keys status`` and the admin's keys page.

Counts and versions only: which master key versions exist and what each
still protects, the subject keys and secrets, whether a rotation is
unfinished, and the id of the ledger's checkpoint signing key. Never a key,
a secret or anything they protect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from crypto import checkpoint as notes
from vault.core.errors import ConfigError
from vault.keys import ledger_key
from vault.keys.key_rotation import residents_without_secret, usage
from vault.storage.models import SubjectKey

if TYPE_CHECKING:
    from vault.runtime import Vault


@dataclass(frozen=True)
class VersionStatus:
    version: int
    in_keyring: bool
    subject_keys: int
    names: int
    sign_in_credentials: int


@dataclass(frozen=True)
class KeyStatus:
    source: str  # "key file" or "CIVICVAULT_MASTER_KEY"
    current_version: int
    versions: list[VersionStatus]
    unbound_subject_keys: int
    unbound_resident_names: int
    subject_key_versions: int
    subject_key_max_uses: int
    subject_key_most_uses: int
    subject_secrets: int
    residents_without_secret: list[str]
    rotation_pending: int  # items still sealed under an old version (or unbound): 0 when no rotation is unfinished
    ledger_key_id: str | None  # hex of the checkpoint signing key's id under the ledger's origin; None without one

    @property
    def rotation_state(self) -> str:
        if self.rotation_pending:
            return "unfinished"
        if any(v.version != self.current_version and v.in_keyring for v in self.versions):
            return "done, old versions not yet retired"
        return "current"

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "current_version": self.current_version,
            "versions": [vars(v) for v in self.versions],
            "unbound_subject_keys": self.unbound_subject_keys,
            "unbound_resident_names": self.unbound_resident_names,
            "subject_key_versions": self.subject_key_versions,
            "subject_key_max_uses": self.subject_key_max_uses,
            "subject_key_most_uses": self.subject_key_most_uses,
            "subject_secrets": self.subject_secrets,
            "residents_without_secret": self.residents_without_secret,
        }


def status(vault: Vault) -> KeyStatus:
    ring = vault.keys.keyring
    with vault.read_transaction() as session:
        used = usage(session)
        most_used = session.scalar(select(func.max(SubjectKey.uses))) or 0
        subject_versions = session.scalar(select(func.count()).select_from(SubjectKey)) or 0
    versions = sorted(set(ring.versions) | used.versions_in_use())
    try:
        public_key = ledger_key.read(vault.settings.ledger_key_file).public_key
        ledger_key_id: str | None = notes.key_id(vault.settings.ledger_origin, public_key).hex()
    except ConfigError:
        ledger_key_id = None
    return KeyStatus(
        source="key file" if vault.keys.from_key_file else "CIVICVAULT_MASTER_KEY",
        current_version=ring.current_version,
        versions=[
            VersionStatus(
                version=v,
                in_keyring=v in ring.versions,
                subject_keys=used.subject_keys.get(v, 0),
                names=used.names.get(v, 0),
                sign_in_credentials=used.credentials.get(v, 0),
            )
            for v in versions
        ],
        unbound_subject_keys=used.unbound_subject_keys,
        unbound_resident_names=used.unbound_resident_names,
        subject_key_versions=subject_versions,
        subject_key_max_uses=vault.keys.max_uses,
        subject_key_most_uses=most_used,
        subject_secrets=vault.keys.secrets.count(),
        residents_without_secret=residents_without_secret(vault),
        rotation_pending=used.pending(ring.current_version),
        ledger_key_id=ledger_key_id,
    )
