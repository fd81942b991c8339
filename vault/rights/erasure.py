"""Erasure of a resident (GDPR Art. 17) by crypto-shredding.

Order of work (docs/operations.md, "Erasure", has the threat model):

1. check the request (the resident themself, or an operator through the
   CLI); a foreign, unknown or non-resident id is ``NotFound``;
2. destroy the resident's secret in the subject-secret store: from this
   moment no copy of their subject keys or sealed name opens, in this
   database or in any earlier copy of it, whoever holds the master key;
3. in one transaction: mark the principal erased and revoke its tokens;
   destroy its sign-in credentials (login index and sealed login, password
   hash, TOTP secret) and delete its web sessions, invitations and share codes;
   delete its subject keys, records (all versions), access requests, grants,
   break-glass declarations, delegations and the attestations issued about it; end delegations it held for
   others and grants others gave it (events by the system, naming no one:
   the erased id never appears in a new event); blank every event about it
   (salt, body, data, ids: the leaf hash stays in ``ledger_nodes``); record
   ``subject.erased``.

If step 3 fails, the resident's data is already unreadable and running the
erasure again completes it. The same holds after restoring a database backup
taken before an erasure while keeping the live secret store: the resident is
back as a row whose secret is gone. ``replay_erasures`` (``civicvault
replay-erasures``, docs/operations.md, "Restoring") finds every such
resident and runs the erasure again, with the same guarantees.

The ``subject.erased`` event names no one: it holds a commitment
``SHA-256(domain || nonce || subject id)`` whose nonce is given only to the
resident in the receipt, so only they can show that the entry is theirs, and
a digest of what the erased entries keep (index, leaf hash, kind, time),
which ``civicvault verify`` recomputes (``check_erased_entry`` and
``check_erasures``), so blanking an entry outside an erasure is tampering.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from vault.core.caller import Caller
from vault.core.clock import rfc3339
from vault.core.errors import Conflict, LedgerIntegrityError, NotFound
from vault.core.ids import is_well_formed_id, new_id
from vault.keys.key_rotation import residents_without_secret
from vault.keys.keys import SYSTEM_ACTOR
from vault.ledger.events import DomainEvent, emit, emit_sequenced
from vault.ledger.ledger import Receipt, StoredNodes, sequence_now
from vault.storage.db import rowcount
from vault.storage.models import (
    AccessRequest,
    ApiToken,
    Attestation,
    BreakGlass,
    Delegation,
    Event,
    EventCategory,
    Grant,
    Invitation,
    LedgerNode,
    Principal,
    Record,
    RecordVersion,
    ShareCode,
    SubjectKey,
    WebSession,
)

if TYPE_CHECKING:
    from vault.runtime import Vault

ERASED_ACTOR = "erased"
ERASED_CAUSE = "erased"  # why the erasure ended a delegation or grant on another resident's trail
DIGEST_DOMAIN = b"civicvault-erasure-v1"
COMMITMENT_DOMAIN = b"civicvault-erasure-subject-v1"
# What an erased event row keeps; every other column is blanked (nullable ones set to NULL).
KEPT_EVENT_COLUMNS = ("ledger_index", "leaf_hash", "kind", "occurred_at", "erased_by")
BLANK_EVENT_VALUES = {"actor_id": ERASED_ACTOR, "data": "{}", "salt": b"", "body": b""}
# The sign-in credentials an erased principal row keeps: none (vault/identity).
ERASED_CREDENTIALS = {
    "login_index": None,
    "login_index_version": None,
    "login_sealed": None,
    "password_hash": None,
    "totp_secret_sealed": None,
    "totp_enabled_at": None,
    "totp_last_step": None,
}


@dataclass(frozen=True)
class ErasureReceipt:
    erasure_id: str
    erased_at: datetime
    leaf_index: int
    leaf_hash: str
    subject_commitment: str
    commitment_nonce: str  # hex; the resident's only: with their id it opens the commitment
    events_erased: int
    records_deleted: int
    subject_keys_destroyed: int


def subject_commitment(nonce: bytes, subject_id: str) -> bytes:
    return hashlib.sha256(COMMITMENT_DOMAIN + b"\x00" + nonce + subject_id.encode("utf-8")).digest()


def erased_digest(entries: list[tuple[int, bytes, str, datetime]]) -> bytes:
    """What an erasure leaves of each entry, committed in its ledger event.

    SHA-256(domain || for each entry by index: index (8 bytes big-endian) ||
    leaf hash || kind || 0x00 || RFC 3339 time || 0x00).
    """
    h = hashlib.sha256(DIGEST_DOMAIN)
    for index, leaf, kind, occurred_at in sorted(entries, key=lambda e: e[0]):
        h.update(
            index.to_bytes(8, "big")
            + bytes(leaf)
            + kind.encode("utf-8")
            + b"\x00"
            + rfc3339(occurred_at).encode("ascii")
            + b"\x00"
        )
    return h.digest()


def _sequenced(receipt: Receipt) -> int:
    if receipt.leaf_index is None:  # emit_sequenced always gives one
        raise LedgerIntegrityError("The erasure's event has no ledger index.")
    return receipt.leaf_index


def _blank_values(erasure_index: int) -> dict:
    values: dict[str, object] = {"erased_by": erasure_index}
    for column in Event.__table__.columns:
        if column.name in KEPT_EVENT_COLUMNS:
            continue
        if column.name in BLANK_EVENT_VALUES:
            values[column.name] = BLANK_EVENT_VALUES[column.name]
        elif column.nullable:
            values[column.name] = None
        else:  # a new column must say what erasure leaves in it
            raise LedgerIntegrityError(f"events.{column.name} has no erased value.")
    return values


def _target(session: Session, caller: Caller | None, subject_id: str) -> Principal:
    row = session.get(Principal, subject_id) if is_well_formed_id(subject_id) else None
    if caller is not None and (caller.role != "resident" or caller.id != subject_id):
        row = None  # only the resident themself; everyone else gets the answer an unknown id gets
    if row is None or row.role != "resident":
        raise NotFound()
    return row


def erase(vault: Vault, caller: Caller | None, subject_id: str) -> ErasureReceipt:
    """Crypto-shred a resident; ``caller`` None is an operator acting through the CLI."""
    with vault.read_transaction() as session:
        if _target(session, caller, subject_id).erased_at is not None:
            raise Conflict("This resident has already been erased.")
    # Step 2: after this nothing of theirs opens, in any copy of the database.
    vault.keys.secrets.destroy(subject_id)
    now = vault.now()
    with vault.transaction() as session:
        claimed = rowcount(
            session.execute(
                update(Principal)
                .where(Principal.id == subject_id, Principal.erased_at.is_(None))
                .values(erased_at=now, name_sealed=b"", name_scheme=1, **ERASED_CREDENTIALS)
                .execution_options(synchronize_session=False)
            )
        )
        if claimed != 1:
            raise Conflict("This resident has already been erased.")
        # Signing in ends with the rest: the login (index and sealed copy), the password hash and the
        # TOTP secret are gone with the row's values above; the browsers' sessions and any invitation
        # link are deleted, not just ended, as they hold nothing the resident's erasure should keep.
        session.execute(delete(WebSession).where(WebSession.principal_id == subject_id))
        session.execute(delete(Invitation).where(Invitation.principal_id == subject_id))
        session.execute(delete(ShareCode).where(ShareCode.subject_id == subject_id))
        session.execute(
            update(ApiToken)
            .where(ApiToken.principal_id == subject_id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        keys = rowcount(session.execute(delete(SubjectKey).where(SubjectKey.subject_id == subject_id)))
        record_ids = select(Record.id).where(Record.subject_id == subject_id).scalar_subquery()
        session.execute(delete(RecordVersion).where(RecordVersion.record_id.in_(record_ids)))
        records = rowcount(session.execute(delete(Record).where(Record.subject_id == subject_id)))
        # Pending requests are withdrawn with the rest; grants end by being deleted.
        session.execute(delete(AccessRequest).where(AccessRequest.subject_id == subject_id))
        session.execute(delete(Grant).where(Grant.subject_id == subject_id))
        session.execute(delete(BreakGlass).where(BreakGlass.subject_id == subject_id))
        session.execute(delete(Delegation).where(Delegation.subject_id == subject_id))
        # The attestations issued about the resident: their sealed credentials, the pseudonyms.
        session.execute(delete(Attestation).where(Attestation.subject_id == subject_id))
        # Delegations the resident held for others, and grants other residents gave them, end, on those
        # residents' trails. The events say the system ended them and name no one: the erased id must
        # never appear in a new event (it stays only in what those residents recorded before).
        for delegation in session.scalars(
            select(Delegation).where(Delegation.delegate_id == subject_id, Delegation.revoked_at.is_(None))
        ).all():
            delegation.revoked_at, delegation.revoked_by = now, subject_id
            emit(
                session,
                DomainEvent(
                    kind="delegation.revoked",
                    occurred_at=now,
                    actor_id=SYSTEM_ACTOR,
                    subject_id=delegation.subject_id,
                    data={"delegation_id": delegation.id, "delegate_id": None, "cause": ERASED_CAUSE},
                ),
            )
        for received in session.scalars(
            select(Grant).where(Grant.grantee_id == subject_id, Grant.revoked_at.is_(None))
        ).all():
            received.revoked_at, received.revoked_by = now, subject_id
            emit(
                session,
                DomainEvent(
                    kind="consent.revoked",
                    occurred_at=now,
                    actor_id=SYSTEM_ACTOR,
                    subject_id=received.subject_id,
                    data={"grant_id": received.id, "grantee_id": None, "cause": ERASED_CAUSE},
                ),
            )
        session.flush()
        # Everything pending (this transaction's events included) takes its index first, so that the
        # resident's entries are all in the log to be blanked; the lock is held until the commit.
        sequence_now(session)
        entries = [
            (index, bytes(leaf), kind, occurred_at)
            for index, leaf, kind, occurred_at in session.execute(
                select(Event.ledger_index, LedgerNode.hash, Event.kind, Event.occurred_at)
                .join(LedgerNode, (LedgerNode.level == 0) & (LedgerNode.index == Event.ledger_index))
                .where(Event.subject_id == subject_id, Event.erased_by.is_(None))
            )
        ]
        nonce = os.urandom(32)
        erasure_id = new_id("e")
        receipt = emit_sequenced(
            session,
            DomainEvent(
                kind="subject.erased",
                occurred_at=now,
                actor_id=SYSTEM_ACTOR,
                subject_id=None,
                data={
                    "erasure_id": erasure_id,
                    "requested_by": "operator" if caller is None else "subject",
                    "subject_commitment": subject_commitment(nonce, subject_id).hex(),
                    "events_erased": len(entries),
                    "erased_digest": erased_digest(entries).hex(),
                    "records_deleted": records,
                    "subject_keys_destroyed": keys,
                },
            ),
        )
        erasure_index = _sequenced(receipt)
        if entries:
            erased_indices = [e[0] for e in entries]
            session.execute(
                update(Event)
                .where(Event.ledger_index.in_(erased_indices))
                .values(**_blank_values(erasure_index))
                .execution_options(synchronize_session=False)
            )
            # The compliance search's categories go with the rest of the payload.
            session.execute(delete(EventCategory).where(EventCategory.ledger_index.in_(erased_indices)))
    return ErasureReceipt(
        erasure_id=erasure_id,
        erased_at=now,
        leaf_index=erasure_index,
        leaf_hash=receipt.leaf_hash,
        subject_commitment=subject_commitment(nonce, subject_id).hex(),
        commitment_nonce=nonce.hex(),
        events_erased=len(entries),
        records_deleted=records,
        subject_keys_destroyed=keys,
    )


def replay_erasures(vault: Vault) -> list[tuple[str, ErasureReceipt]]:
    """Erase again every resident whose secret is gone; returns (resident id, receipt) for each.

    After a database backup older than some erasures is restored next to the
    live secret store, those residents are back as rows whose data opens no
    more: their tokens work, grantees' reads fail as if the data had been
    tampered with. Replaying the erasure (as an operator's, ``requested_by:
    operator``) revokes the tokens, deletes keys, records and grants, blanks
    their events and records ``subject.erased`` in the restored ledger.
    (A secret store that holds none of the residents' secrets is the wrong
    store: ``Vault.open`` refuses it, so nothing is replayed against it.)
    """
    done = []
    for subject_id in residents_without_secret(vault, limit=sys.maxsize):
        try:
            done.append((subject_id, erase(vault, None, subject_id)))
        except Conflict:
            continue  # erased meanwhile (another process replaying): nothing left to do
    return done


# -- civicvault verify -------------------------------------------------------


def is_erased(event: Event) -> bool:
    return event.erased_by is not None


def check_erased_entry(event: Event, stored_leaf: bytes, *, size: int) -> bytes:
    """Structural checks of an erased entry; its stored leaf is taken as it is.

    Whether the leaf belongs there is proven by the digest in its erasure
    event (``check_erasures``) and by the tree and checkpoints above it.
    """
    index, erased_by = event.ledger_index, event.erased_by
    if erased_by is None:
        raise LedgerIntegrityError(f"Ledger entry {index}: it is not marked erased.")
    expected = {name: value for name, value in _blank_values(erased_by).items() if name != "erased_by"}
    actual = {name: getattr(event, name) for name in expected}
    for name in ("salt", "body"):
        actual[name] = bytes(actual[name]) if actual[name] is not None else None
    if actual != expected:
        differing = sorted(k for k in expected if actual[k] != expected[k])
        raise LedgerIntegrityError(
            f"Ledger entry {index}: it is marked erased but still holds data ({', '.join(differing)})."
        )
    if not index < erased_by < size:
        raise LedgerIntegrityError(
            f"Ledger entry {index}: it names erasure entry {event.erased_by}, which cannot have erased it."
        )
    if len(bytes(stored_leaf)) != 32:
        raise LedgerIntegrityError(f"Ledger entry {index}: its stored leaf hash is not 32 bytes.")
    return bytes(stored_leaf)


_MIN_BIGINT = -(2**63)


def check_erasures(session: Session) -> int:
    """Every erased entry was erased by a ``subject.erased`` event whose digest covers exactly those entries."""
    erased: dict[int, list[tuple[int, bytes, str, datetime]]] = {}
    # A range over the erased_by index (every value verify lets through is a 64-bit integer): with IS NOT NULL,
    # or joined to the leaves, SQLite reads every event or every leaf. The leaves are then read by key.
    rows = session.execute(
        select(Event.erased_by, Event.ledger_index, Event.kind, Event.occurred_at)
        .where(Event.erased_by >= _MIN_BIGINT)
        .execution_options(yield_per=2000)
    ).all()
    leaves = StoredNodes(session)
    leaves.prefetch((0, row[1]) for row in rows)
    for erasure_index, index, kind, occurred_at in rows:
        if erasure_index is not None:  # excluded by the query; says so to the type checker
            erased.setdefault(erasure_index, []).append((index, leaves.get(0, index), kind, occurred_at))
    events = session.execute(
        select(Event.ledger_index, Event.kind, Event.data, Event.erased_by).where(Event.ledger_index.in_(list(erased)))
    )
    found = set()
    for index, kind, data, erased_by in events:
        if kind != "subject.erased" or erased_by is not None:
            raise LedgerIntegrityError(
                f"Ledger entry {index}: erased entries name it as their erasure, but it is not one."
            )
        fields = json.loads(data)
        entries = erased[index]
        if fields.get("events_erased") != len(entries) or fields.get("erased_digest") != erased_digest(entries).hex():
            raise LedgerIntegrityError(
                f"Ledger entry {index}: the entries marked as erased by it are not the ones it erased "
                f"({len(entries)} marked, {fields.get('events_erased')} erased)."
            )
        found.add(index)
    missing = sorted(set(erased) - found)
    if missing:
        raise LedgerIntegrityError(
            f"Ledger entry {missing[0]}: erased entries name it as their erasure, but it does not exist."
        )
    # And the other way round: an erasure whose entries are no longer all marked (unblanked or re-pointed).
    for index, data in session.execute(
        select(Event.ledger_index, Event.data).where(Event.kind == "subject.erased", Event.erased_by.is_(None))
    ):
        fields = json.loads(data)
        if fields.get("events_erased", 0) and index not in found:
            raise LedgerIntegrityError(f"Ledger entry {index}: the entries it erased are no longer marked as erased.")
    return sum(len(v) for v in erased.values())
