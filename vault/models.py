"""The storage schema: SQLAlchemy 2 typed models.

What is in clear: ids, roles, categories, version numbers, timestamps and
hashes. What is sealed: principal names, subject keys (under the master key),
record titles and contents (under the subject key). Alembic migrations in
``vault/migrations`` create and evolve these tables; keep both in step.
"""

from datetime import UTC, datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, LargeBinary, String, TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

ID = String(40)


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on every database (SQLite keeps no time zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), bytes: LargeBinary()}


class Principal(Base):
    __tablename__ = "principals"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    role: Mapped[str] = mapped_column(String(16), index=True)
    # Display name, sealed under the master keyring (crypto.principal_name_aad).
    name_sealed: Mapped[bytes]
    created_at: Mapped[datetime]


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    principal_id: Mapped[str] = mapped_column(ForeignKey("principals.id", ondelete="CASCADE"), index=True)
    # SHA-256 of the token, lowercase hex; the token itself is shown once and never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class SubjectKey(Base):
    __tablename__ = "subject_keys"

    subject_id: Mapped[str] = mapped_column(ForeignKey("principals.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    # The subject key sealed under master key version ``master_key_version``.
    wrapped: Mapped[bytes]
    master_key_version: Mapped[int]
    created_at: Mapped[datetime]


class Record(Base):
    __tablename__ = "records"
    __table_args__ = (Index("ix_records_subject_category", "subject_id", "category"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("principals.id", ondelete="CASCADE"))
    category: Mapped[str] = mapped_column(String(40))
    current_version: Mapped[int]
    created_by: Mapped[str] = mapped_column(ForeignKey("principals.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    versions: Mapped[list["RecordVersion"]] = relationship(back_populates="record", order_by="RecordVersion.version")


class RecordVersion(Base):
    __tablename__ = "record_versions"

    record_id: Mapped[str] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    # Envelopes under the subject key; the key version is in each envelope's header.
    content_sealed: Mapped[bytes]
    title_sealed: Mapped[bytes | None]
    created_by: Mapped[str] = mapped_column(ForeignKey("principals.id"))
    created_at: Mapped[datetime]

    record: Mapped[Record] = relationship(back_populates="versions")
