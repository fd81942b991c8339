"""Where a record version comes from: issued by someone who signed it, or self-asserted.

A version written with an issuer's signature (docs/attestations.md, "Issuer
signatures") was verified before it was stored and carries the key that
signed it; every other version is *self-asserted*: the vault knows who wrote
it, and nobody vouched for its content. ``Provenance`` is what the API, the
export and the pages show; ``issued_versions`` is what a predicate over a
resident's records (an attestation) uses to count only what issuers signed.

``check_signature_form`` and ``verify_signature`` are the two halves of the
check the records service runs on a write: the form before any lookup, the
signature itself once the write is authorised (so that a caller with no
consent learns nothing about a record from how its signature was judged).
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

import crypto
from crypto import issuer
from crypto.errors import SignatureError
from vault.core.caller import Caller
from vault.core.errors import InvalidInput
from vault.core.ids import is_well_formed_id
from vault.core.vocabulary import ISSUER_ROLES, check_category
from vault.identity import issuer_keys
from vault.keys.keys import KeyStore
from vault.storage.models import Record, RecordVersion

ISSUED, SELF_ASSERTED = "issued", "self-asserted"
# How far ahead of the vault's clock an issuer's clock may be.
MAX_CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class Provenance:
    kind: str  # issued | self-asserted
    issuer_id: str | None = None
    issuer_name: str | None = None
    key_id: str | None = None
    issued_at: datetime | None = None
    key_revoked_at: datetime | None = None
    # The signature itself, on reads of a version's content only (so a reader can check it anywhere).
    signature: bytes | None = None

    @property
    def issued(self) -> bool:
        return self.kind == ISSUED


SELF = Provenance(kind=SELF_ASSERTED)


@dataclass(frozen=True)
class IssuerSignature:
    """A signature as a writer sends it: the key, the issuer's time, the 64 bytes."""

    key_id: str
    issued_at: str  # YYYY-MM-DDTHH:MM:SSZ, the exact text signed
    value: bytes


@dataclass(frozen=True)
class Verified:
    """A signature that verified, as the version row stores it."""

    key_id: str
    issued_at: datetime
    value: bytes


def check_signature_form(caller: Caller, signature: IssuerSignature | None, *, now: datetime) -> None:
    """What can be judged of a signature without any lookup: who signs, the key id's form, the time, the length."""
    if signature is None:
        return
    if caller.role not in ISSUER_ROLES:
        raise InvalidInput("Only clinics, landlords and agencies sign the records they write.")
    if not is_well_formed_id(signature.key_id):
        raise InvalidInput("signature.key_id is not a key id.")
    try:
        issued_at = issuer.parse_issued_at(signature.issued_at)
    except ValueError:
        raise InvalidInput("signature.issued_at must be a UTC time to the second: YYYY-MM-DDTHH:MM:SSZ.") from None
    if issued_at > now + MAX_CLOCK_SKEW:
        raise InvalidInput("signature.issued_at is in the future; check the signer's clock.")
    if len(signature.value) != issuer.SIGNATURE_SIZE:
        raise InvalidInput(f"signature.value must be {issuer.SIGNATURE_SIZE} bytes.")


def content_digest(body: bytes) -> str:
    """SHA-256 of a content's canonical bytes (vault.core.content.encode_content), lowercase hex."""
    return hashlib.sha256(body).hexdigest()


def statement(
    *, subject_id: str, category: str, body: bytes, issued_at: str, issuer_id: str, key_id: str
) -> issuer.SignedStatement:
    """The statement an issuer signs about this content (crypto.issuer.SignedStatement)."""
    return issuer.SignedStatement(
        subject_id=subject_id,
        category=category,
        content_sha256=content_digest(body),
        issued_at=issued_at,
        issuer_id=issuer_id,
        key_id=key_id,
    )


def verify_signature(
    session: Session,
    caller: Caller,
    signature: IssuerSignature,
    *,
    subject_id: str,
    category: str,
    body: bytes,
) -> Verified:
    """The signature verifies under a live key of ``caller`` over exactly this write; ``InvalidInput`` otherwise."""
    key = issuer_keys.signing_key(session, signature.key_id)
    if key is None:
        raise InvalidInput("signature.key_id names no issuer key.")
    if key.principal_id != caller.id:
        raise InvalidInput("signature.key_id is another principal's key: sign with one of your own.")
    if key.revoked_at is not None:
        raise InvalidInput("signature.key_id was revoked and signs nothing new: sign with a live key.")
    signed = statement(
        subject_id=subject_id,
        category=category,
        body=body,
        issued_at=signature.issued_at,
        issuer_id=caller.id,
        key_id=key.id,
    )
    try:
        issuer.verify_record_signature(key.public_key, signed, signature.value)
    except SignatureError:
        raise InvalidInput(
            "The signature does not verify: it must sign this subject, category, content, issued_at, issuer and key "
            "(docs/attestations.md, 'Issuer signatures')."
        ) from None
    return Verified(key_id=key.id, issued_at=issuer.parse_issued_at(signature.issued_at), value=signature.value)


class Provenances:
    """Provenance of versions, looking each key and issuer up once per call."""

    def __init__(self, session: Session, keys: KeyStore) -> None:
        self._session, self._keys = session, keys
        self._found: dict[str, tuple[issuer_keys.SigningKey, str]] = {}

    def of(
        self, *, issuer_key_id: str | None, issued_at: datetime | None, signature: bytes | None = None
    ) -> Provenance:
        if issuer_key_id is None:
            return SELF
        if issuer_key_id not in self._found:
            key = issuer_keys.signing_key(self._session, issuer_key_id)
            if key is None:  # the column's reference makes this impossible; never call it issued
                return SELF
            name = issuer_keys.holder_names(self._session, self._keys, {key.principal_id}).get(key.principal_id, "")
            self._found[issuer_key_id] = (key, name)
        key, name = self._found[issuer_key_id]
        return Provenance(
            kind=ISSUED,
            issuer_id=key.principal_id,
            issuer_name=name or None,
            key_id=key.id,
            issued_at=issued_at,
            key_revoked_at=key.revoked_at,
            signature=signature,
        )


@dataclass(frozen=True)
class VersionProvenance:
    """One version of a resident's record in a category, with where it comes from and whether that holds now."""

    record_id: str
    version: int
    current: bool  # the record's current version
    category: str
    created_at: datetime
    kind: str  # issued | self-asserted
    issuer_id: str | None
    key_id: str | None
    issued_at: datetime | None
    key_revoked_at: datetime | None
    # The stored signature, opened and checked again now over the stored content: True only for an issued
    # version whose signature still verifies under its key.
    verified: bool

    @property
    def revoked(self) -> bool:
        return self.key_revoked_at is not None


def issued_versions(
    session: Session, keys: KeyStore, *, subject_id: str, category: str, current_only: bool = False
) -> list[VersionProvenance]:
    """Every version of ``subject_id``'s records in ``category``, oldest first, with its provenance re-verified.

    For a predicate over a resident's records that must count only what an
    issuer signed ("issuer-verified only"): each issued version's sealed
    signature and content are opened and the signature checked again against
    the issuer's key, so a stored row that claims a signature it does not
    carry is ``verified=False`` (an envelope that does not open is an integrity
    failure, ``RecordUnreadable``, as on every read). This reads no consent and emits no event:
    the caller must have authorised the evaluation, in the same transaction.
    """
    category = check_category(category)
    query = (
        select(Record, RecordVersion)
        .join(RecordVersion, RecordVersion.record_id == Record.id)
        .where(Record.subject_id == subject_id, Record.category == category)
        .order_by(Record.created_at, Record.id, RecordVersion.version)
    )
    found: list[VersionProvenance] = []
    provenances = Provenances(session, keys)
    for record, row in session.execute(query).all():
        if current_only and row.version != record.current_version:
            continue
        origin = provenances.of(issuer_key_id=row.issuer_key_id, issued_at=row.issued_at)
        verified = origin.issued and _still_verifies(session, keys, record, row, origin)
        found.append(
            VersionProvenance(
                record_id=record.id,
                version=row.version,
                current=row.version == record.current_version,
                category=record.category,
                created_at=row.created_at,
                kind=origin.kind,
                issuer_id=origin.issuer_id,
                key_id=origin.key_id,
                issued_at=origin.issued_at,
                key_revoked_at=origin.key_revoked_at,
                verified=verified,
            )
        )
    return found


def _aad(record: Record, version: int, part: str) -> bytes:
    return crypto.record_aad(
        record_id=record.id, subject_id=record.subject_id, version=version, category=record.category, part=part
    )


def _still_verifies(session: Session, keys: KeyStore, record: Record, row: RecordVersion, origin: Provenance) -> bool:
    if row.signature_sealed is None or row.issued_at is None or origin.key_id is None or origin.issuer_id is None:
        return False
    key = issuer_keys.signing_key(session, origin.key_id)
    if key is None:
        return False
    try:
        signature = keys.open_for_subject(
            session, record.subject_id, row.signature_sealed, aad=_aad(record, row.version, "signature")
        )
        body = keys.open_for_subject(
            session, record.subject_id, row.content_sealed, aad=_aad(record, row.version, "content")
        )
        signed = statement(
            subject_id=record.subject_id,
            category=record.category,
            body=body,
            issued_at=issuer.format_issued_at(row.issued_at),
            issuer_id=origin.issuer_id,
            key_id=origin.key_id,
        )
        issuer.verify_record_signature(key.public_key, signed, signature)
    except SignatureError:
        return False
    return True
