"""The storage schema: SQLAlchemy 2 typed models.

What is in clear: ids, roles, categories, version numbers, timestamps and
hashes. What is sealed: principal names and logins, TOTP secrets and subject
keys (under the master key), record titles and contents (under the subject
key). Logins are found through a keyed blind index, passwords kept as
argon2id hashes, session and invitation tokens as SHA-256 hashes. Alembic migrations in
``vault/migrations`` create and evolve these tables; keep both in step.
"""

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    TypeDecorator,
    false,
)
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
    __table_args__ = (Index("ux_principals_login_index", "login_index", unique=True),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    role: Mapped[str] = mapped_column(String(16), index=True)
    # Display name, sealed under the master keyring (crypto.principal_name_aad).
    name_sealed: Mapped[bytes]
    created_at: Mapped[datetime]
    # Key management (vault/key_rotation.py, vault/erasure.py): 1 = name sealed
    # under the master keyring, 2 = under it bound to the subject secret.
    name_scheme: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    erased_at: Mapped[datetime | None]
    # Sign-in (vault/identity: logins, passwords, totp); all NULL for a principal without one,
    # and destroyed by erasure. The login is never in clear: ``login_index`` is an HMAC of the
    # normalised login under a key derived from master key version ``login_index_version``
    # (crypto.blind_index), for exact lookup; ``login_sealed`` is the login as given, sealed
    # like the name (same scheme, crypto.principal_login_aad), for display.
    login_index: Mapped[str | None] = mapped_column(String(64))
    login_index_version: Mapped[int | None] = mapped_column(Integer)
    login_sealed: Mapped[bytes | None]
    # argon2id, PHC string format ($argon2id$v=19$m=...,t=...,p=...$salt$hash).
    password_hash: Mapped[str | None] = mapped_column(String(255))
    # The TOTP secret sealed under the master keyring (crypto.totp_secret_aad); enabled once
    # confirmed with a first code. ``totp_last_step``: the newest 30-second step whose code
    # was accepted, so that no code is accepted twice.
    totp_secret_sealed: Mapped[bytes | None]
    totp_enabled_at: Mapped[datetime | None]
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    principal_id: Mapped[str] = mapped_column(ForeignKey("principals.id", ondelete="CASCADE"), index=True)
    # SHA-256 of the token, lowercase hex; the token itself is shown once and never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class WebSession(Base):
    """A signed-in browser (vault/identity/web_sessions.py): the cookie's token is stored only as a hash.

    ``csrf_secret`` keys the session's CSRF token (an HMAC, never stored).
    ``second_factor_done`` is False between a good password and a good TOTP
    code for a principal who needs one; ``second_factor_failures`` counts
    wrong codes (the session ends at a limit). A session ends at
    ``expires_at`` (absolute), after the idle timeout since ``last_seen_at``,
    or when revoked (sign-out).
    """

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    principal_id: Mapped[str] = mapped_column(ForeignKey("principals.id", ondelete="CASCADE"), index=True)
    # SHA-256 of the cookie's token, lowercase hex.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_secret: Mapped[bytes]
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    second_factor_done: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    second_factor_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    revoked_at: Mapped[datetime | None]


class Invitation(Base):
    """A one-time, expiring link with which a person sets their own password (vault/identity/invitations.py)."""

    __tablename__ = "invitations"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    principal_id: Mapped[str] = mapped_column(ForeignKey("principals.id", ondelete="CASCADE"), index=True)
    # SHA-256 of the link's token, lowercase hex; the token is shown once.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class SubjectKey(Base):
    __tablename__ = "subject_keys"

    subject_id: Mapped[str] = mapped_column(ForeignKey("principals.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    # The subject key sealed under master key version ``master_key_version``.
    wrapped: Mapped[bytes]
    master_key_version: Mapped[int] = mapped_column(Integer, index=True)
    created_at: Mapped[datetime]
    # 1 = wrapped under the master key, 2 = under it bound to the subject secret.
    wrap_scheme: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # Seals made with this key version; a new version takes over at the limit.
    uses: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


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
    # An issuer's signature over this version (docs/attestations.md, "Issuer signatures"), verified when
    # it was written; all NULL for a self-asserted version. The signer is ``created_by``. The signature
    # itself is sealed under the subject key (part ``signature``): in clear, with the issuer's public key,
    # it would let whoever reads the database confirm a guess at the content.
    issuer_key_id: Mapped[str | None] = mapped_column(ForeignKey("issuer_keys.id"), index=True)
    issued_at: Mapped[datetime | None]
    signature_sealed: Mapped[bytes | None]

    record: Mapped[Record] = relationship(back_populates="versions")


class IssuerKey(Base):
    """An issuer's Ed25519 public key, registered with a proof of possession (vault/identity/issuer_keys.py).

    A principal may hold several (rotation); a revoked key signs nothing new,
    and the versions it signed before keep showing it, with ``revoked_at``.
    """

    __tablename__ = "issuer_keys"
    __table_args__ = (Index("ix_issuer_keys_principal", "principal_id", "created_at"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    principal_id: Mapped[str] = mapped_column(ForeignKey("principals.id"))
    public_key: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class Grant(Base):
    """A resident's consent: grantee may do ``actions`` on ``categories`` for ``purpose``.

    Expiry and use limits are evaluated at decision time against ``now``; only
    revocation is a stored state change.
    """

    __tablename__ = "grants"
    __table_args__ = (
        Index("ix_grants_subject_grantee", "subject_id", "grantee_id"),
        Index("ix_grants_grantee", "grantee_id"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("principals.id", ondelete="CASCADE"))
    grantee_id: Mapped[str] = mapped_column(ForeignKey("principals.id", ondelete="CASCADE"))
    categories: Mapped[str] = mapped_column(String(600))  # space-separated, sorted
    purpose: Mapped[str] = mapped_column(String(40))
    actions: Mapped[str] = mapped_column(String(40))  # space-separated, sorted
    valid_from: Mapped[datetime]
    expires_at: Mapped[datetime]
    max_uses: Mapped[int | None]
    uses: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(ForeignKey("principals.id"))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(ForeignKey("principals.id"))
    request_id: Mapped[str | None] = mapped_column(ID)


class AccessRequest(Base):
    """A clinic's or landlord's request for access, decided by the resident."""

    __tablename__ = "access_requests"
    __table_args__ = (
        Index("ix_access_requests_subject_status", "subject_id", "status"),
        Index("ix_access_requests_requester", "requester_id"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("principals.id", ondelete="CASCADE"))
    requester_id: Mapped[str] = mapped_column(ForeignKey("principals.id", ondelete="CASCADE"))
    categories: Mapped[str] = mapped_column(String(600))
    purpose: Mapped[str] = mapped_column(String(40))
    actions: Mapped[str] = mapped_column(String(40))
    # The requester's free-text reason, sealed under the subject key.
    reason_sealed: Mapped[bytes]
    expires_at: Mapped[datetime | None]  # requested end of the grant
    status: Mapped[str] = mapped_column(String(16))  # pending | approved | denied
    created_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(ForeignKey("principals.id"))
    grant_id: Mapped[str | None] = mapped_column(ForeignKey("grants.id"))


class Delegation(Base):
    """A resident appoints a delegate (guardian, caregiver) for a bounded time."""

    __tablename__ = "delegations"
    __table_args__ = (Index("ix_delegations_subject", "subject_id"), Index("ix_delegations_delegate", "delegate_id"))

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("principals.id", ondelete="CASCADE"))
    delegate_id: Mapped[str] = mapped_column(ForeignKey("principals.id", ondelete="CASCADE"))
    valid_from: Mapped[datetime]
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(ForeignKey("principals.id"))


class BreakGlass(Base):
    """A clinic's declared emergency: health.* reads for a short window, flagged."""

    __tablename__ = "break_glass"
    __table_args__ = (Index("ix_break_glass_subject_clinic", "subject_id", "clinic_id"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("principals.id", ondelete="CASCADE"))
    clinic_id: Mapped[str] = mapped_column(ForeignKey("principals.id", ondelete="CASCADE"))
    reason_sealed: Mapped[bytes]
    declared_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class Event(Base):
    """Domain events, one row each, in ledger order: the ledger's off-chain entries.

    ``body`` is the event's canonical JSON and ``salt`` its random salt; the
    log entry at ``ledger_index`` is a commitment to both (docs/ledger-format.md).
    The other columns repeat what ``body`` says, for queries; ``civicvault
    verify`` checks that they agree. Ids, codes and timestamps only: never
    record content, names or free text.
    """

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_subject", "subject_id", "ledger_index"),
        Index("ix_events_actor", "actor_id", "ledger_index"),
        Index("ix_events_kind", "kind", "ledger_index"),
        Index("ix_events_outcome", "outcome", "ledger_index"),
        Index("ix_events_purpose", "purpose", "ledger_index"),
        Index("ix_events_occurred_at", "occurred_at"),
        Index("ux_events_leaf_hash", "leaf_hash", unique=True),
    )

    ledger_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[datetime]
    actor_id: Mapped[str] = mapped_column(ID)
    subject_id: Mapped[str | None] = mapped_column(ID)
    data: Mapped[str] = mapped_column(String(4000))  # canonical JSON of the event's data
    salt: Mapped[bytes]
    body: Mapped[bytes]
    # Search columns for compliance (vault.audit_index), derived from ``data``
    # when the event is emitted: ``permitted`` / ``refused`` for access events,
    # and the stated purpose. Categories are in ``event_categories``.
    outcome: Mapped[str | None] = mapped_column(String(16))
    purpose: Mapped[str | None] = mapped_column(String(40))
    # Set when the subject was erased: the ledger index of the ``subject.erased``
    # event; salt, body, data and ids are gone, the leaf stays (vault/erasure.py).
    erased_by: Mapped[int | None] = mapped_column(BigInteger, index=True)
    # The entry's RFC 9162 leaf hash (as at level 0 of ``ledger_nodes``): what a
    # receipt names before its index is known (GET /api/v1/ledger/entries/{leaf_hash}).
    leaf_hash: Mapped[bytes | None]


class PendingEvent(Base):
    """An event committed by its action and not yet given a ledger index (vault/ledger/sequencer.py).

    The action's transaction inserts it, touching no shared row; the sequencer
    moves it into ``events`` with the next index, in batches, and deletes it.
    ``id`` orders the queue (not the log: indices follow the order of
    sequencing). The columns are those ``events`` gets, computed when the event
    was emitted, so the salt, body and leaf hash a receipt names never change.
    """

    __tablename__ = "ledger_pending"
    __table_args__ = (Index("ux_ledger_pending_leaf_hash", "leaf_hash", unique=True),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    leaf_hash: Mapped[bytes]
    kind: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[datetime]
    actor_id: Mapped[str] = mapped_column(ID)
    subject_id: Mapped[str | None] = mapped_column(ID)
    data: Mapped[str] = mapped_column(String(4000))
    salt: Mapped[bytes]
    body: Mapped[bytes]
    outcome: Mapped[str | None] = mapped_column(String(16))
    purpose: Mapped[str | None] = mapped_column(String(40))
    categories: Mapped[str] = mapped_column(String(600))  # space-separated, for event_categories
    # Wall-clock time of the insert (not the event's time, which tests may freeze):
    # verify and /healthz compare it with the bound on how long an event may wait.
    queued_at: Mapped[datetime]


class LedgerHead(Base):
    """One row: the ledger's size. Only the sequencer (one at a time) moves it: gap-free indices."""

    __tablename__ = "ledger_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(BigInteger)


class LedgerNode(Base):
    """Hash of the perfect subtree over leaves [index * 2^level, (index + 1) * 2^level).

    Level 0 holds the leaf hashes. Appending a leaf writes it and the nodes it
    completes (two rows on average), and any subtree of the tree is composed
    from O(log n) of these rows.
    """

    __tablename__ = "ledger_nodes"

    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    index: Mapped[int] = mapped_column("idx", BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes]


class Checkpoint(Base):
    """A signed checkpoint of the ledger: (origin, size, root) and the node's BLS signature."""

    __tablename__ = "checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    origin: Mapped[str] = mapped_column(String(200))
    tree_size: Mapped[int] = mapped_column(BigInteger, index=True)
    root: Mapped[bytes]
    signer: Mapped[str] = mapped_column(String(200))
    key_id: Mapped[bytes]
    signature: Mapped[bytes]
    created_at: Mapped[datetime]


class WitnessKey(Base):
    """A witness principal's BLS public key, registered with a proof of possession."""

    __tablename__ = "witness_keys"

    principal_id: Mapped[str] = mapped_column(ForeignKey("principals.id", ondelete="CASCADE"), primary_key=True)
    public_key: Mapped[bytes]
    registered_at: Mapped[datetime]


class Cosignature(Base):
    """A witness's signature over a checkpoint body it checked for consistency."""

    __tablename__ = "cosignatures"

    checkpoint_id: Mapped[int] = mapped_column(ForeignKey("checkpoints.id", ondelete="CASCADE"), primary_key=True)
    witness_id: Mapped[str] = mapped_column(ForeignKey("principals.id", ondelete="CASCADE"), primary_key=True)
    signature: Mapped[bytes]
    created_at: Mapped[datetime]


class CheckpointLease(Base):
    """One row: who may sign the next periodic checkpoint, and until when (one signer across workers)."""

    __tablename__ = "checkpoint_lease"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    holder: Mapped[str | None] = mapped_column(String(80))
    until: Mapped[datetime | None]


# --- Anchoring on an EVM chain (vault/anchoring) ---------------------------------


class Anchor(Base):
    """A checkpoint recorded on an EVM chain: where, in which transaction and block, at what gas."""

    __tablename__ = "anchors"
    __table_args__ = (Index("ux_anchors_chain_size", "chain_id", "contract", "origin", "tree_size", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    origin: Mapped[str] = mapped_column(String(200))
    tree_size: Mapped[int] = mapped_column(BigInteger, index=True)
    root: Mapped[bytes]
    chain_id: Mapped[int] = mapped_column(BigInteger)
    contract: Mapped[str] = mapped_column(String(42))  # EIP-55 checksummed address
    tx_hash: Mapped[bytes]
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[bytes]
    gas_used: Mapped[int] = mapped_column(BigInteger)
    anchored_at: Mapped[datetime]


class AnchorLease(Base):
    """At most one row: who may send the next periodic anchor, and until when (one sender across workers)."""

    __tablename__ = "anchor_lease"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    holder: Mapped[str | None] = mapped_column(String(80))
    until: Mapped[datetime | None]


class EventCategory(Base):
    """The record categories an event concerns, one row each, for compliance search.

    Exact categories (``health.labs``) or a grant's family (``health.*``), as
    the event's data names them (vault.audit_index).
    """

    __tablename__ = "event_categories"
    __table_args__ = (Index("ix_event_categories_category", "category", "ledger_index"),)

    ledger_index: Mapped[int] = mapped_column(
        ForeignKey("events.ledger_index", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    category: Mapped[str] = mapped_column(String(40), primary_key=True)


class BreakGlassReview(Base):
    """A compliance officer's acknowledgement of a break-glass declaration.

    A declaration without a row here is pending review. The officer's note is
    free text, sealed under the resident's subject key (crypto.sealed_text_aad, kind
    ``break-glass-review-note``); the acknowledgement's event holds ids only.
    """

    __tablename__ = "break_glass_reviews"

    break_glass_id: Mapped[str] = mapped_column(ForeignKey("break_glass.id", ondelete="CASCADE"), primary_key=True)
    reviewer_id: Mapped[str] = mapped_column(ForeignKey("principals.id"))
    note_sealed: Mapped[bytes]
    acknowledged_at: Mapped[datetime]
    ledger_index: Mapped[int] = mapped_column(BigInteger)


class ShareCode(Base):
    """A resident's short, single-use share code (vault/consent/share_codes.py).

    Only the code's keyed hash is stored (HMAC-SHA256 under a key derived
    from the master key, lowercase hex); the code itself is shown once.
    ``used_at`` and ``used_by`` are set by the one redemption that wins.
    """

    __tablename__ = "share_codes"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("principals.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by: Mapped[str | None] = mapped_column(ForeignKey("principals.id", ondelete="SET NULL"))


class Attestation(Base):
    """A signed attestation the vault issued (vault/attestations, docs/attestations.md).

    What left the vault is kept for the resident's own accounting, sealed
    under the resident's subject key (crypto.sealed_text_aad, kind
    ``attestation-credential``): the signed credential, whose
    ``credentialSubject`` holds the answer. In clear: ids, the predicate's
    name, the pairwise pseudonym (an HMAC, meaningless without the master
    key) and times. Erasure deletes the rows with the subject key that
    opens them.
    """

    __tablename__ = "attestations"
    __table_args__ = (Index("ix_attestations_subject_requester", "subject_id", "requester_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # the credential's UUID (id urn:uuid:...)
    subject_id: Mapped[str] = mapped_column(ForeignKey("principals.id", ondelete="CASCADE"))
    requester_id: Mapped[str] = mapped_column(ForeignKey("principals.id"))
    grant_id: Mapped[str | None] = mapped_column(ID)
    predicate: Mapped[str] = mapped_column(String(40))
    purpose: Mapped[str] = mapped_column(String(40))
    pseudonym: Mapped[str] = mapped_column(String(80))
    pseudonym_key_version: Mapped[int] = mapped_column(Integer)  # the master key version it was derived from
    credential_sealed: Mapped[bytes]
    created_at: Mapped[datetime]
    valid_until: Mapped[datetime]
