"""The documents an attestation is answered from: a resident's current record versions, with their provenance.

``documents_for`` opens the current version of each of the resident's
records in the predicate's categories, with the records' own associated data
(crypto.record_aad) and the key store, as the read path does, but without a
read event: the attestation leaves its own (``attestation.issued``), and no
content leaves the vault.

Provenance (who issued a record, and whether the vault verified its
signature) comes from one place, ``_provenance``. Until the vault keeps
issuer signatures with record versions, every record is self-asserted
(``issuer_id=None``, ``verified=False``), so only an attestation that asks
for self-asserted records too can count it.
"""

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

import crypto
from vault.attestations.predicates import Document
from vault.core.content import decode_content
from vault.keys.keys import KeyStore
from vault.storage.models import Record, RecordVersion


def _provenance(session: Session, record: Record, version: int) -> tuple[str | None, bool]:
    """(issuer principal id, signature verified) of one record version.

    The single place to replace with the records' issuer provenance
    (docs/attestations.md, "Issuer signatures"): until then, self-asserted.
    """
    return None, False


def documents_for(session: Session, keys: KeyStore, subject_id: str, categories: Iterable[str]) -> list[Document]:
    """The current version of each of ``subject_id``'s records in ``categories``, opened, oldest record first."""
    wanted = sorted(set(categories))
    rows = session.execute(
        select(Record, RecordVersion)
        .join(
            RecordVersion,
            (RecordVersion.record_id == Record.id) & (RecordVersion.version == Record.current_version),
        )
        .where(Record.subject_id == subject_id, Record.category.in_(wanted))
        .order_by(Record.created_at, Record.id)
    ).all()
    documents = []
    for record, row in rows:
        aad = crypto.record_aad(
            record_id=record.id, subject_id=subject_id, version=row.version, category=record.category, part="content"
        )
        content = decode_content(keys.open_for_subject(session, subject_id, row.content_sealed, aad=aad))
        issuer_id, verified = _provenance(session, record, row.version)
        documents.append(
            Document(
                record_id=record.id,
                version=row.version,
                category=record.category,
                content=content if isinstance(content, dict) else {},
                issuer_id=issuer_id,
                verified=verified,
            )
        )
    return documents
