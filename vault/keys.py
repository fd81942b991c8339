"""The key hierarchy at work: master keyring -> subject keys -> record envelopes.

Each resident gets a random subject key when the principal is created, stored
wrapped under the current master key. Records are sealed under the subject's
newest key; the envelope header names the subject key version, so older
versions stay readable after a rotation. Destroying a subject's keys
(crypto-shredding) makes every copy of their records unreadable.
"""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

import crypto
from vault.errors import RecordUnreadable
from vault.models import SubjectKey


class KeyStore:
    """Seals and opens data for the services; holds the master keyring."""

    def __init__(self, keyring: crypto.Keyring) -> None:
        self.keyring = keyring

    # Principal names are sealed under the master keyring directly.
    def seal_name(self, principal_id: str, name: str) -> bytes:
        return self.keyring.seal(name.encode("utf-8"), aad=crypto.principal_name_aad(principal_id=principal_id))

    def open_name(self, principal_id: str, sealed: bytes) -> str:
        try:
            plain = self.keyring.unseal(sealed, aad=crypto.principal_name_aad(principal_id=principal_id))
        except crypto.InvalidEnvelope:
            raise RecordUnreadable() from None
        return plain.decode("utf-8")

    def create_subject_key(self, session: Session, subject_id: str, *, now: datetime) -> None:
        version = 1 + (
            session.scalar(select(SubjectKey.version).where(SubjectKey.subject_id == subject_id).order_by(SubjectKey.version.desc()).limit(1))
            or 0
        )
        wrapped = crypto.wrap_key(self.keyring, crypto.new_key(), subject_id=subject_id, version=version)
        session.add(
            SubjectKey(
                subject_id=subject_id,
                version=version,
                wrapped=wrapped,
                master_key_version=self.keyring.current_version,
                created_at=now,
            )
        )

    def _unwrap(self, row: SubjectKey) -> bytes:
        try:
            return crypto.unwrap_key(self.keyring, row.wrapped, subject_id=row.subject_id, version=row.version)
        except crypto.InvalidEnvelope:
            raise RecordUnreadable() from None

    def seal_for_subject(self, session: Session, subject_id: str, plaintext: bytes, *, aad: bytes) -> bytes:
        row = session.scalars(
            select(SubjectKey).where(SubjectKey.subject_id == subject_id).order_by(SubjectKey.version.desc()).limit(1)
        ).first()
        if row is None:
            raise RecordUnreadable()  # a resident without a key: nothing can be sealed for them
        return crypto.seal(self._unwrap(row), plaintext, key_id=row.version, aad=aad)

    def open_for_subject(self, session: Session, subject_id: str, sealed: bytes, *, aad: bytes) -> bytes:
        try:
            version = crypto.envelope_key_id(sealed)
        except crypto.InvalidEnvelope:
            raise RecordUnreadable() from None
        # The header is not yet authenticated: a forged key id must not reach
        # the database as an out-of-range integer (PostgreSQL INTEGER is 31 bits).
        row = session.get(SubjectKey, (subject_id, version)) if 1 <= version < 2**31 else None
        if row is None:
            raise RecordUnreadable()
        try:
            return crypto.unseal(self._unwrap(row), sealed, aad=aad)
        except crypto.InvalidEnvelope:
            raise RecordUnreadable() from None


def seal_text(keys: KeyStore, session: Session, *, kind: str, object_id: str, subject_id: str, text: str) -> bytes:
    """Seal a free-text field under the subject's key."""
    aad = crypto.sealed_text_aad(kind=kind, object_id=object_id, subject_id=subject_id)
    return keys.seal_for_subject(session, subject_id, text.encode("utf-8"), aad=aad)


def open_text(keys: KeyStore, session: Session, *, kind: str, object_id: str, subject_id: str, sealed: bytes) -> str:
    aad = crypto.sealed_text_aad(kind=kind, object_id=object_id, subject_id=subject_id)
    return keys.open_for_subject(session, subject_id, sealed, aad=aad).decode("utf-8")
