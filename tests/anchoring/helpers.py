"""Helpers for the anchoring tests: ledgers with checkpoints, and a history rewritten by someone holding every key."""

import json
from datetime import UTC, datetime

from sqlalchemy import delete, select

from crypto import checkpoint as notes
from crypto import merkle
from vault.keys import ledger_key
from vault.ledger import checkpoints, ledger
from vault.ledger.events import DomainEvent, emit
from vault.storage.models import Checkpoint, Event, LedgerNode

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
ORIGIN = "civicvault"


def add_events(vault, n: int) -> None:
    with vault.transaction() as session:
        for i in range(n):
            emit(
                session,
                DomainEvent(
                    kind="access.refused",
                    occurred_at=T0,
                    actor_id=f"p_actor{i % 7}",
                    subject_id="p_subject",
                    data={"reason": "no-grant", "n": i},
                ),
            )


def sign(vault, settings) -> checkpoints.CheckpointView:
    ledger_key.create(settings.ledger_key_file)
    key = ledger_key.read(settings.ledger_key_file)
    with vault.transaction() as session:
        return checkpoints.sign_now(session, key=key, origin=ORIGIN, now=vault.now())


def rewrite_history(vault, settings, *, index: int = 0) -> None:
    """Change event ``index`` and rebuild the tree and every checkpoint so that only an anchor can tell.

    What an operator holding the database and the ledger key could do: the
    rows, the Merkle nodes and the checkpoint signatures all agree again.
    """
    key = ledger_key.read(settings.ledger_key_file)
    with vault.transaction() as session:
        event = session.get(Event, index)
        # Pin the event on someone else: same kind and data, another actor.
        body = ledger.canonical_body(
            kind=event.kind,
            occurred_at=event.occurred_at,
            actor_id="p_someone_else",
            subject_id=event.subject_id,
            data=json.loads(event.data),
        )
        event.actor_id, event.body = "p_someone_else", body
        event.leaf_hash = ledger.leaf_hash_of(bytes(event.salt), body)  # the name a receipt resolves by, too
        session.flush()
        session.execute(delete(LedgerNode))
        peaks: list[bytes] = []
        for idx, salt, stored in session.execute(
            select(Event.ledger_index, Event.salt, Event.body).order_by(Event.ledger_index)
        ):
            node, level, position = ledger.leaf_hash_of(bytes(salt), bytes(stored)), 0, idx
            session.add(LedgerNode(level=0, index=idx, hash=node))
            while position & 1:
                node = merkle.node_hash(peaks.pop(), node)
                level, position = level + 1, position >> 1
                session.add(LedgerNode(level=level, index=position, hash=node))
            peaks.append(node)
        session.flush()
        for row in session.scalars(select(Checkpoint)):
            body = notes.Checkpoint(origin=row.origin, size=row.tree_size, root=ledger.root(session, row.tree_size))
            row.root, row.signature = body.root, notes.sign(body, name=row.origin, key=key).signature
