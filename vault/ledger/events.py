"""Domain events: every consent and access decision, emitted through one function.

``emit(session, event)`` stores the event in the caller's transaction, so an
event exists exactly when the action it describes was committed. Refusals are
carried by the exception (``VaultError.events``) and stored by
``Vault.transaction`` in a transaction of their own after the failed one was
rolled back. Every event is committed to the ledger (``vault.ledger``); no
event ever holds record content, names or free text, only ids, codes and times.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from vault.core.clock import rfc3339
from vault.ledger import ledger
from vault.ledger.ledger import Receipt

KINDS = (
    "consent.granted",
    "consent.revoked",
    "access-request.created",
    "access-request.approved",
    "access-request.denied",
    "delegation.granted",
    "delegation.revoked",
    "break-glass.declared",
    "access.permitted",
    "access.refused",
    "record.created",
    "record.version-added",
    "witness.registered",
    # Issuer keys (vault/identity/issuer_keys.py): a key registered or revoked, by id.
    "issuer-key.registered",
    "issuer-key.revoked",
    "checkpoint.cosigned",
    "subject.exported",
    # vault/anchoring: a checkpoint recorded on an EVM chain
    "checkpoint.anchored",
    # Compliance (vault.break_glass_review): an officer reviewed an emergency access.
    "break-glass.acknowledged",
    # Key management and erasure (vault/keys.py, vault/key_rotation.py, vault/erasure.py)
    "subject-key.rotated",
    "keys.rotated",
    "keys.retired",
    "subject.erased",
    # Reads of the trail and of sealed free text about a resident (vault.consent.openings.log_opened,
    # vault.compliance.audit_search): who was shown what (kinds and ids, never the text).
    "text.opened",
    "trail.searched",
    # A compliance officer looked a resident up by exact login or name (vault.compliance.lookup):
    # how (``by``) and whether anyone was found, never what was typed.
    "resident.looked-up",
    # Attestations (vault/attestations): a signed yes/no answer about a resident's records was
    # issued, or the question had no counted record to answer it (ids and the question, never the answer).
    "attestation.issued",
    "attestation.no-evidence",
)


@dataclass(frozen=True)
class DomainEvent:
    kind: str
    occurred_at: datetime
    actor_id: str
    subject_id: str | None
    data: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown event kind {self.kind!r}")


def encode(data: Mapping[str, Any]) -> str:
    """Canonical JSON of an event's data (sorted keys, no white space)."""
    return json.dumps(
        {k: rfc3339(v) if isinstance(v, datetime) else v for k, v in data.items()},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )


def _columns(event: DomainEvent) -> dict[str, Any]:
    return {
        "kind": event.kind,
        "occurred_at": event.occurred_at,
        "actor_id": event.actor_id,
        "subject_id": event.subject_id,
        "data_json": encode(event.data),
        "data": event.data,
    }


def emit(session: Session, event: DomainEvent) -> Receipt:
    """Record ``event`` in the session's transaction, pending its ledger index (``vault.ledger.sequencer``).

    If the append fails (``LedgerUnavailable``), the exception rolls the whole
    transaction back: the action the event describes does not happen (fail closed).
    The receipt gets its ``leaf_index`` once the event is sequenced.
    """
    return ledger.append_many(session, [_columns(event)])[0]


def emit_sequenced(session: Session, event: DomainEvent) -> Receipt:
    """Record ``event`` with its ledger index now (``ledger.append_sequenced``): for rare actions that need it.

    Everything pending is sequenced first, and the sequencer lock is held
    until the transaction ends: never on a request path that must scale.
    """
    return ledger.append_sequenced(session, [_columns(event)])[0]
