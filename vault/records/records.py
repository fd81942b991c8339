"""Records and their versions: create, list, read, add a version.

Contents and titles are sealed under the subject's key with associated data
binding them to (record id, subject, version, category, part), so an envelope
moved to another record, version or field does not open. Metadata in clear:
ids, subject, category, version numbers and timestamps.

A writer that issues documents (a clinic, landlord or agency) may sign what it
writes: the signature is checked (``vault.records.provenance``) once the write
is authorised, stored sealed with the version, and named in the write's event
by key id and digest; every record and version says whether it was issued or
is self-asserted (``Provenance``).

Who may do what is decided by ``vault.access`` (the resident, grantees,
delegates, break-glass); a caller with no consent covering a record gets the
same ``NotFound`` as for an id that does not exist. Every access and every
write emits its domain event, and so does every refusal, of a foreign id and
of an unknown one alike (``vault.consent.access.unknown_target``), so that the
ledger's size tells nobody which ids exist. A listing of titles is recorded
with what it disclosed (``vault.consent.access.record_listing``).
"""

import hashlib
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

import crypto
from vault.consent.access import (
    authorize,
    check_stated_purpose,
    load_facts,
    record_listing,
    refusal,
    unknown_target,
    visible_categories,
)
from vault.consent.authz import require_resident
from vault.consent.policy import NOT_FOUND, AccessQuery, denied
from vault.core.caller import Caller
from vault.core.content import check_title, decode_content, encode_content
from vault.core.errors import Conflict, InvalidInput, NotFound
from vault.core.ids import is_well_formed_id, new_id
from vault.core.vocabulary import check_category
from vault.keys.keys import KeyStore
from vault.ledger.events import DomainEvent, emit
from vault.ledger.ledger import Receipt
from vault.records.provenance import (
    SELF,
    IssuerSignature,
    Provenance,
    Provenances,
    Verified,
    check_signature_form,
    verify_signature,
)
from vault.storage.models import Record, RecordVersion

KEEP = object()  # add_version(title=KEEP): carry the previous version's title over


@dataclass(frozen=True)
class RecordMeta:
    id: str
    subject_id: str
    category: str
    version: int
    title: str | None
    created_at: datetime
    updated_at: datetime
    provenance: Provenance  # of this version: issued (and by whom) or self-asserted


@dataclass(frozen=True)
class RecordContent(RecordMeta):
    content: dict
    receipt: Receipt  # the ledger entry of this read


@dataclass(frozen=True)
class _RecordRow:
    """A record's columns, as the read path loads them (one Core statement, no ORM instance)."""

    id: str
    subject_id: str
    category: str
    current_version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class _VersionRow:
    version: int
    content_sealed: bytes
    title_sealed: bytes | None
    created_at: datetime
    issuer_key_id: str | None
    issued_at: datetime | None
    signature_sealed: bytes | None


_RECORDS, _VERSIONS = cast(Table, Record.__table__), cast(Table, RecordVersion.__table__)
_records, _versions = _RECORDS.c, _VERSIONS.c
# The read path's two lookups as Core statements built once: the ORM's identity map,
# instance state and per-statement compilation cost more here than the lookups.
_RECORD_ROW = select(
    _records.id,
    _records.subject_id,
    _records.category,
    _records.current_version,
    _records.created_at,
    _records.updated_at,
).where(_records.id == bindparam("record_id"))
_VERSION_ROW = select(
    _versions.version,
    _versions.content_sealed,
    _versions.title_sealed,
    _versions.created_at,
    _versions.issuer_key_id,
    _versions.issued_at,
    _versions.signature_sealed,
).where(_versions.record_id == bindparam("record_id"), _versions.version == bindparam("version"))


def _aad(record: Record | _RecordRow, version: int, part: str) -> bytes:
    return crypto.record_aad(
        record_id=record.id, subject_id=record.subject_id, version=version, category=record.category, part=part
    )


def _seal_version(
    session: Session,
    keys: KeyStore,
    record: Record,
    *,
    version: int,
    body: bytes,
    title: str | None,
    signed: Verified | None,
    caller: Caller,
    now: datetime,
) -> RecordVersion:
    parts = [(body, _aad(record, version, "content"))]
    if title is not None:
        parts.append((title.encode("utf-8"), _aad(record, version, "title")))
    if signed is not None:
        parts.append((signed.value, _aad(record, version, "signature")))
    sealed = iter(keys.seal_many_for_subject(session, record.subject_id, parts))  # one use count for all
    return RecordVersion(
        record_id=record.id,
        version=version,
        content_sealed=next(sealed),
        title_sealed=next(sealed) if title is not None else None,
        created_by=caller.id,
        created_at=now,
        issuer_key_id=None if signed is None else signed.key_id,
        issued_at=None if signed is None else signed.issued_at,
        signature_sealed=None if signed is None else next(sealed),
    )


def _open_title(
    session: Session, keys: KeyStore, record: Record | _RecordRow, row: RecordVersion | _VersionRow
) -> str | None:
    if row.title_sealed is None:
        return None
    return keys.open_for_subject(
        session, record.subject_id, row.title_sealed, aad=_aad(record, row.version, "title")
    ).decode("utf-8")


def _meta(record: Record | _RecordRow, title: str | None, provenance: Provenance) -> RecordMeta:
    return RecordMeta(
        id=record.id,
        subject_id=record.subject_id,
        category=record.category,
        version=record.current_version,
        title=title,
        created_at=record.created_at,
        updated_at=record.updated_at,
        provenance=provenance,
    )


def create_record(
    session: Session,
    keys: KeyStore,
    caller: Caller,
    *,
    subject_id: str,
    category: str,
    content: Any,
    title: str | None = None,
    purpose: str | None = None,
    signature: IssuerSignature | None = None,
    now: datetime,
) -> RecordMeta:
    """Seal a new record; with ``signature``, an issuer's signed record (verified before anything is stored)."""
    # Every check of the input comes before any lookup, so that its answer
    # cannot differ between a foreign and an unknown subject.
    check_stated_purpose(caller, purpose)
    category = check_category(category)
    body = encode_content(content)
    title = check_title(title)
    check_signature_form(caller, signature, now=now)
    _require_subject(session, caller, subject_id, action="write", purpose=purpose, category=category, now=now)
    record_id = new_id("r")
    permit = authorize(
        session,
        caller,
        subject_id=subject_id,
        category=category,
        purpose=purpose,
        action="write",
        now=now,
        record_id=record_id,
    ).permit
    signed = None
    if signature is not None:
        signed = verify_signature(session, caller, signature, subject_id=subject_id, category=category, body=body)
    record = Record(
        id=record_id,
        subject_id=subject_id,
        category=category,
        current_version=1,
        created_by=caller.id,
        created_at=now,
        updated_at=now,
    )
    first = _seal_version(
        session, keys, record, version=1, body=body, title=title, signed=signed, caller=caller, now=now
    )
    # Two Core inserts: the rows are not needed as ORM instances in this transaction, and the unit of work
    # cost more than the statements.
    connection = session.connection()
    connection.execute(insert(_RECORDS), {col.key: getattr(record, col.key) for col in _RECORDS.c})
    connection.execute(insert(_VERSIONS), {col.key: getattr(first, col.key) for col in _VERSIONS.c})
    emit(session, _written("record.created", caller, record, 1, permit, purpose, signed, now))
    return _meta(record, title, _provenance_of(session, keys, signed))


def _provenance_of(session: Session, keys: KeyStore, signed: Verified | None) -> Provenance:
    if signed is None:
        return SELF
    return Provenances(session, keys).of(issuer_key_id=signed.key_id, issued_at=signed.issued_at)


def _written(
    kind: str,
    caller: Caller,
    record: Record,
    version: int,
    permit,
    purpose: str | None,
    signed: Verified | None,
    now: datetime,
) -> DomainEvent:
    data = {
        "record_id": record.id,
        "category": record.category,
        "version": version,
        "purpose": purpose,
        "basis": permit.basis,
        "grant_id": permit.grant_id,
    }
    if signed is not None:
        # The key and a digest of the signature: which statement was stored, never what it says
        # (docs/ledger-format.md; a digest of the signature confirms no guess at the content).
        data["issuer_key_id"] = signed.key_id
        data["signature_sha256"] = hashlib.sha256(signed.value).hexdigest()
    return DomainEvent(kind=kind, occurred_at=now, actor_id=caller.id, subject_id=record.subject_id, data=data)


def list_records(
    session: Session,
    keys: KeyStore,
    caller: Caller,
    *,
    subject_id: str,
    category: str | None = None,
    purpose: str | None = None,
    now: datetime,
) -> list[RecordMeta]:
    """Metadata of the records ``caller`` may read, optionally of one category."""
    check_stated_purpose(caller, purpose)
    if category is not None:
        check_category(category)
    _require_subject(session, caller, subject_id, action="list", purpose=purpose, category=None, now=now)
    visible = visible_categories(session, caller, subject_id=subject_id, purpose=purpose, now=now)
    wanted = [c for c in visible.categories if category is None or c == category]
    query = (
        select(Record, RecordVersion)
        .join(RecordVersion, (RecordVersion.record_id == Record.id) & (RecordVersion.version == Record.current_version))
        .where(Record.subject_id == subject_id, Record.category.in_(wanted))
        .order_by(Record.created_at.desc(), Record.id)
    )
    rows = session.execute(query).all() if wanted else []
    # Titles are facts about the resident: the listing is a disclosure, recorded with what it listed.
    record_listing(session, caller, visible, listed=Counter(record.category for record, _ in rows), now=now)
    provenances = Provenances(session, keys)
    return [
        _meta(
            record,
            _open_title(session, keys, record, row),
            provenances.of(issuer_key_id=row.issuer_key_id, issued_at=row.issued_at),
        )
        for record, row in rows
    ]


def _require_subject(
    session: Session,
    caller: Caller,
    subject_id: str,
    *,
    action: str,
    purpose: str | None,
    category: str | None,
    now: datetime,
) -> None:
    """The resident, or the ``NotFound`` (and refusal event) of an unknown id (``unknown_target``)."""
    try:
        require_resident(session, subject_id)
    except NotFound:
        _as_costly_as_a_foreign_id(session, caller, subject_id)
        raise unknown_target(caller, action=action, purpose=purpose, category=category, now=now) from None


def _as_costly_as_a_foreign_id(session: Session, caller: Caller, some_id: str) -> None:
    """The lookups a refused foreign id costs (its consent facts, none here), so that the time an
    unknown id takes tells no more than its answer (docs/consent.md, "Refusals of unknown ids")."""
    shaped = some_id if is_well_formed_id(some_id) else "x-not-an-id"  # never a NUL or such into a query
    load_facts(session, subject_id=shaped, actor_id=caller.id, actor_role=caller.role)


def _load(
    session: Session, caller: Caller, record_id: str, *, action: str, purpose: str | None, now: datetime
) -> Record:
    record = session.get(Record, record_id) if is_well_formed_id(record_id) else None
    if record is None:
        _as_costly_as_a_foreign_id(session, caller, record_id)
        raise unknown_target(caller, action=action, purpose=purpose, now=now)
    return record


def read_record(
    session: Session,
    keys: KeyStore,
    caller: Caller,
    record_id: str,
    *,
    purpose: str | None = None,
    version: int | None = None,
    now: datetime,
) -> RecordContent:
    """The record's content at ``version`` (default: the current one)."""
    check_stated_purpose(caller, purpose)
    found = (
        session.connection().execute(_RECORD_ROW, {"record_id": record_id}).first()
        if is_well_formed_id(record_id)
        else None
    )
    if found is None:
        _as_costly_as_a_foreign_id(session, caller, record_id)
        raise unknown_target(caller, action="read", purpose=purpose, now=now)
    record = _RecordRow(**found._mapping)
    wanted = record.current_version if version is None else version
    receipt = authorize(
        session,
        caller,
        subject_id=record.subject_id,
        category=record.category,
        purpose=purpose,
        action="read",
        now=now,
        record_id=record.id,
        version=wanted,
    ).receipt
    stored = session.connection().execute(_VERSION_ROW, {"record_id": record.id, "version": wanted}).first()
    row = None if stored is None else _VersionRow(**stored._mapping)
    if row is None:
        # The permit's event rolls back with this error; the refusal leaves its own, as every refusal does.
        query = AccessQuery(
            subject_id=record.subject_id,
            actor_id=caller.id,
            actor_role=caller.role,
            category=record.category,
            purpose=purpose,
            action="read",
        )
        raise refusal(caller, query, denied(NOT_FOUND), now, record_id=record.id, version=wanted)
    plain = keys.open_for_subject(session, record.subject_id, row.content_sealed, aad=_aad(record, wanted, "content"))
    signature = None
    if row.signature_sealed is not None:
        signature = keys.open_for_subject(
            session, record.subject_id, row.signature_sealed, aad=_aad(record, wanted, "signature")
        )
    provenance = Provenances(session, keys).of(
        issuer_key_id=row.issuer_key_id, issued_at=row.issued_at, signature=signature
    )
    meta = _meta(record, _open_title(session, keys, record, row), provenance)
    # updated_at is when this version was written, which for an older version
    # is earlier than the record's last update.
    return RecordContent(
        **{**meta.__dict__, "version": wanted, "updated_at": row.created_at},
        content=decode_content(plain),
        receipt=receipt,
    )


def add_version(
    session: Session,
    keys: KeyStore,
    caller: Caller,
    record_id: str,
    *,
    content: Any,
    title: Any = KEEP,
    expected_version: int | None = None,
    purpose: str | None = None,
    signature: IssuerSignature | None = None,
    now: datetime,
) -> RecordMeta:
    """Seal a new version; earlier versions stay.

    ``title=KEEP`` (the default) carries the previous title over; ``None`` or
    an empty string removes it. ``signature``: the issuer's, over this
    version's content (checked once the write is authorised, so that how it
    is judged tells nothing about a record the caller may not write).
    """
    check_stated_purpose(caller, purpose)  # input checks first, as in create_record
    check_signature_form(caller, signature, now=now)
    body = encode_content(content)
    keep_title = title is KEEP
    title = None if keep_title else check_title(title)
    if expected_version is not None and expected_version < 1:
        raise InvalidInput("expected_version starts at 1.")
    record = _load(session, caller, record_id, action="write", purpose=purpose, now=now)
    permit = authorize(
        session,
        caller,
        subject_id=record.subject_id,
        category=record.category,
        purpose=purpose,
        action="write",
        now=now,
        record_id=record.id,
    ).permit
    signed = None
    if signature is not None:
        signed = verify_signature(
            session, caller, signature, subject_id=record.subject_id, category=record.category, body=body
        )
    # Bump the version atomically in the database, so two concurrent writers
    # can never both take the same number (the row lock serialises them).
    bump = (
        update(Record).where(Record.id == record.id).values(current_version=Record.current_version + 1, updated_at=now)
    )
    if expected_version is not None:
        bump = bump.where(Record.current_version == expected_version)
    new_version = session.execute(bump.returning(Record.current_version)).scalar()
    if new_version is None:
        raise Conflict("The record has changed since the version you expected; read it again and retry.")
    session.refresh(record)
    if keep_title:
        previous = session.get_one(RecordVersion, (record.id, new_version - 1))
        title = _open_title(session, keys, record, previous)
    session.add(
        _seal_version(
            session, keys, record, version=new_version, body=body, title=title, signed=signed, caller=caller, now=now
        )
    )
    emit(session, _written("record.version-added", caller, record, new_version, permit, purpose, signed, now))
    session.flush()
    return _meta(record, title, _provenance_of(session, keys, signed))


@dataclass(frozen=True)
class VersionContent:
    version: int
    title: str | None
    content: Any
    created_at: datetime
    created_by: str
    provenance: Provenance  # with the signature, for an issued version


@dataclass(frozen=True)
class RecordHistory:
    id: str
    subject_id: str
    category: str
    current_version: int
    created_at: datetime
    updated_at: datetime
    versions: list[VersionContent]


def history(session: Session, keys: KeyStore, subject_id: str) -> list[RecordHistory]:
    """Every record of ``subject_id`` with every version opened, oldest first: for the resident's own export only.

    The caller must have established that the resident is asking; this reads
    no consent and writes no event of its own (the export does).
    """
    rows = session.execute(
        select(Record, RecordVersion)
        .join(RecordVersion, RecordVersion.record_id == Record.id)
        .where(Record.subject_id == subject_id)
        .order_by(Record.created_at, Record.id, RecordVersion.version)
    ).all()
    result: dict[str, RecordHistory] = {}
    provenances = Provenances(session, keys)
    for record, row in rows:
        entry = result.get(record.id)
        if entry is None:
            entry = result[record.id] = RecordHistory(
                id=record.id,
                subject_id=record.subject_id,
                category=record.category,
                current_version=record.current_version,
                created_at=record.created_at,
                updated_at=record.updated_at,
                versions=[],
            )
        plain = keys.open_for_subject(session, subject_id, row.content_sealed, aad=_aad(record, row.version, "content"))
        signature = None
        if row.signature_sealed is not None:
            signature = keys.open_for_subject(
                session, subject_id, row.signature_sealed, aad=_aad(record, row.version, "signature")
            )
        entry.versions.append(
            VersionContent(
                version=row.version,
                title=_open_title(session, keys, record, row),
                content=decode_content(plain),
                created_at=row.created_at,
                created_by=row.created_by,
                provenance=provenances.of(
                    issuer_key_id=row.issuer_key_id, issued_at=row.issued_at, signature=signature
                ),
            )
        )
    return list(result.values())
