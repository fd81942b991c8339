"""The documents an attestation is answered from: a resident's current record versions, with their provenance.

``documents_for`` opens the current version of each of the resident's
records in the predicate's categories, with the records' own associated data
(crypto.record_aad) and the key store, as the read path does, but without a
read event: the attestation leaves its own (``attestation.issued``), and no
content leaves the vault.

Provenance (who issued a record, and whether its signature verifies now)
comes from one place, ``_provenances``: the records context's
``issued_versions``, which opens each issued version's sealed signature and
checks it again against the issuer's key (docs/attestations.md, "Issuer
signatures"). A self-asserted version, or one whose stored signature no
longer verifies, is ``issuer_id=None`` / ``verified=False``: only an
attestation that asks for self-asserted records too counts it.
"""

from collections.abc import Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

import crypto
from vault.attestations.predicates import Document
from vault.core.content import decode_content
from vault.keys.keys import KeyStore
from vault.records.provenance import issued_versions
from vault.storage.models import Record, RecordVersion


def _provenances(
    session: Session, keys: KeyStore, subject_id: str, categories: Iterable[str]
) -> Mapping[tuple[str, int], tuple[str | None, bool]]:
    """(record id, version) -> (issuer principal id, signature verified) of the current versions in ``categories``."""
    found: dict[tuple[str, int], tuple[str | None, bool]] = {}
    for category in categories:
        for origin in issued_versions(session, keys, subject_id=subject_id, category=category, current_only=True):
            issued = origin.kind == "issued" and origin.verified
            found[(origin.record_id, origin.version)] = (origin.issuer_id if issued else None, issued)
    return found


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
    provenances = _provenances(session, keys, subject_id, wanted)
    documents = []
    for record, row in rows:
        aad = crypto.record_aad(
            record_id=record.id, subject_id=subject_id, version=row.version, category=record.category, part="content"
        )
        content = decode_content(keys.open_for_subject(session, subject_id, row.content_sealed, aad=aad))
        issuer_id, verified = provenances[(record.id, row.version)]
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
