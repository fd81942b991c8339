"""Records and their versions: create, list, read, add a version.

Contents and titles are sealed under the subject's key with associated data
binding them to (record id, subject, version, category, part), so an envelope
moved to another record, version or field does not open. Metadata in clear:
ids, subject, category, version numbers and timestamps.

Who may do what is decided by ``_require_access``; until consent lands only
the resident themself reaches their records, and everyone else gets the same
``NotFound`` as for an id that does not exist.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

import crypto
from vault.content import check_title, decode_content, encode_content
from vault.errors import Conflict, InvalidInput, NotFound
from vault.ids import is_well_formed_id, new_id
from vault.keys import KeyStore
from vault.models import Principal, Record, RecordVersion
from vault.principals import Caller
from vault.vocabulary import check_category, check_purpose


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


@dataclass(frozen=True)
class RecordContent(RecordMeta):
    content: dict


def _require_access(session: Session, caller: Caller, subject_id: str) -> None:
    """Only the resident reaches their own records (consent extends this)."""
    if caller.role != "resident" or caller.id != subject_id or not is_well_formed_id(subject_id):
        raise NotFound()
    if session.get(Principal, subject_id) is None:
        raise NotFound()


def _aad(record: Record, version: int, part: str) -> bytes:
    return crypto.record_aad(
        record_id=record.id, subject_id=record.subject_id, version=version, category=record.category, part=part
    )


def _seal_version(
    session: Session, keys: KeyStore, record: Record, *, version: int, body: bytes, title: str | None, caller: Caller, now: datetime
) -> RecordVersion:
    return RecordVersion(
        record_id=record.id,
        version=version,
        content_sealed=keys.seal_for_subject(session, record.subject_id, body, aad=_aad(record, version, "content")),
        title_sealed=None
        if title is None
        else keys.seal_for_subject(session, record.subject_id, title.encode("utf-8"), aad=_aad(record, version, "title")),
        created_by=caller.id,
        created_at=now,
    )


def _open_title(session: Session, keys: KeyStore, record: Record, row: RecordVersion) -> str | None:
    if row.title_sealed is None:
        return None
    return keys.open_for_subject(session, record.subject_id, row.title_sealed, aad=_aad(record, row.version, "title")).decode("utf-8")


def _meta(record: Record, title: str | None) -> RecordMeta:
    return RecordMeta(
        id=record.id,
        subject_id=record.subject_id,
        category=record.category,
        version=record.current_version,
        title=title,
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


def create_record(
    session: Session, keys: KeyStore, caller: Caller, *, subject_id: str, category: str, content: Any, title: str | None = None, now: datetime
) -> RecordMeta:
    _require_access(session, caller, subject_id)
    category = check_category(category)
    body = encode_content(content)
    title = check_title(title)
    record = Record(
        id=new_id("r"), subject_id=subject_id, category=category, current_version=1, created_by=caller.id, created_at=now, updated_at=now
    )
    session.add(record)
    session.add(_seal_version(session, keys, record, version=1, body=body, title=title, caller=caller, now=now))
    session.flush()
    return _meta(record, title)


def list_records(session: Session, keys: KeyStore, caller: Caller, *, subject_id: str, category: str | None = None) -> list[RecordMeta]:
    _require_access(session, caller, subject_id)
    query = (
        select(Record, RecordVersion)
        .join(RecordVersion, (RecordVersion.record_id == Record.id) & (RecordVersion.version == Record.current_version))
        .where(Record.subject_id == subject_id)
        .order_by(Record.created_at.desc(), Record.id)
    )
    if category is not None:
        query = query.where(Record.category == check_category(category))
    return [_meta(record, _open_title(session, keys, record, row)) for record, row in session.execute(query)]


def _load(session: Session, caller: Caller, record_id: str) -> Record:
    record = session.get(Record, record_id) if is_well_formed_id(record_id) else None
    if record is None:
        raise NotFound()
    _require_access(session, caller, record.subject_id)
    return record


def read_record(
    session: Session, keys: KeyStore, caller: Caller, record_id: str, *, purpose: str | None = None, version: int | None = None, now: datetime
) -> RecordContent:
    """The record's content at ``version`` (default: the current one)."""
    if purpose is not None:
        check_purpose(purpose)
    record = _load(session, caller, record_id)
    wanted = record.current_version if version is None else version
    row = session.get(RecordVersion, (record.id, wanted))
    if row is None:
        raise NotFound()
    plain = keys.open_for_subject(session, record.subject_id, row.content_sealed, aad=_aad(record, wanted, "content"))
    meta = _meta(record, _open_title(session, keys, record, row))
    # updated_at is when this version was written, which for an older version
    # is earlier than the record's last update.
    return RecordContent(**{**meta.__dict__, "version": wanted, "updated_at": row.created_at}, content=decode_content(plain))


def add_version(
    session: Session,
    keys: KeyStore,
    caller: Caller,
    record_id: str,
    *,
    content: Any,
    title: Any = KEEP,
    expected_version: int | None = None,
    now: datetime,
) -> RecordMeta:
    """Seal a new version; earlier versions stay.

    ``title=KEEP`` (the default) carries the previous title over; ``None`` or
    an empty string removes it.
    """
    record = _load(session, caller, record_id)
    body = encode_content(content)
    keep_title = title is KEEP
    title = None if keep_title else check_title(title)
    if expected_version is not None and expected_version < 1:
        raise InvalidInput("expected_version starts at 1.")
    # Bump the version atomically in the database, so two concurrent writers
    # can never both take the same number (the row lock serialises them).
    bump = update(Record).where(Record.id == record.id).values(current_version=Record.current_version + 1, updated_at=now)
    if expected_version is not None:
        bump = bump.where(Record.current_version == expected_version)
    new_version = session.execute(bump.returning(Record.current_version)).scalar()
    if new_version is None:
        raise Conflict("The record has changed since the version you expected; read it again and retry.")
    session.refresh(record)
    if keep_title:
        previous = session.get(RecordVersion, (record.id, new_version - 1))
        title = _open_title(session, keys, record, previous)
    session.add(_seal_version(session, keys, record, version=new_version, body=body, title=title, caller=caller, now=now))
    session.flush()
    return _meta(record, title)
