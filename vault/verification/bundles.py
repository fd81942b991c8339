"""Audit bundles: a resident's events with proofs, checkable offline with public keys only.

``civicvault audit export --subject ID`` writes a JSON bundle::

    {"format": "civicvault-audit-bundle/1",
     "subject_id": "...",
     "checkpoint": "<the signed note of the latest checkpoint>",
     "events": [{"leaf_index": i, "salt": "<hex>", "body": "<canonical JSON>", "audit_path": ["<hex>", ...]}, ...],
     "pending": n}

Every event about the resident up to the checkpoint's size is included, with
its salt and body (so the resident can see it and anyone can recompute its
leaf) and its inclusion proof against the checkpoint's root. ``pending``
counts the resident's events appended after that checkpoint, which the next
checkpoint will cover. ``civicvault audit verify-bundle FILE --log-key KEY``
checks the node's signature on the checkpoint with the pinned key (and, given
witnesses' keys, their cosignatures), recomputes every leaf and verifies every
proof; it needs neither the database nor any secret.
"""

import json
from collections.abc import Iterator

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crypto import checkpoint as notes
from crypto import merkle
from crypto.errors import ProofError, SignatureError
from vault.consent.authz import require_resident
from vault.ledger import checkpoints, ledger
from vault.storage.models import Event

FORMAT = "civicvault-audit-bundle/1"


class BundleError(Exception):
    """A bundle is malformed or does not verify; the message names the first problem."""


def export(session: Session, *, subject_id: str) -> dict:
    require_resident(session, subject_id)
    latest = checkpoints.latest(session)
    subtree = ledger.subtree_hasher(session)
    events = []
    rows = session.scalars(
        select(Event)
        .where(Event.subject_id == subject_id, Event.ledger_index < latest.tree_size)
        .order_by(Event.ledger_index)
    )
    for event in rows:
        path = merkle.inclusion_proof(event.ledger_index, latest.tree_size, subtree)
        events.append(
            {
                "leaf_index": event.ledger_index,
                "salt": bytes(event.salt).hex(),
                "body": bytes(event.body).decode("utf-8"),
                "audit_path": [h.hex() for h in path],
            }
        )
    pending = session.scalar(
        select(func.count())
        .select_from(Event)
        .where(Event.subject_id == subject_id, Event.ledger_index >= latest.tree_size)
    )
    return {"format": FORMAT, "subject_id": subject_id, "checkpoint": latest.note, "events": events, "pending": pending}


def verify_bundle(
    bundle: dict, *, log_key: bytes, witnesses: dict[str, bytes] | None = None, threshold: int = 1
) -> tuple[notes.Checkpoint, int]:
    """Check a bundle offline; returns the checkpoint and the number of events proven.

    The checkpoint must carry the log key's signature (signature lines of
    other keys are ignored); given ``witnesses`` (name to public key), at
    least ``threshold`` of them must have cosigned it too.
    """
    if not isinstance(bundle, dict) or bundle.get("format") != FORMAT:
        raise BundleError(f"not a {FORMAT} file")
    try:
        # A checkpoint signed before checkpoint format 2 names the log's key by its format-1 key id.
        body, signatures = notes.verify_note(bundle["checkpoint"], public_key=log_key, accept_legacy_key_id=True)
    except (KeyError, TypeError, SignatureError):
        raise BundleError("the checkpoint is not signed by the given log key") from None
    if witnesses is not None:
        try:
            notes.verify_cosignatures(body, signatures, witnesses, threshold=threshold)
        except SignatureError as exc:
            raise BundleError(f"the checkpoint is not cosigned by the given witnesses: {exc}") from None
    subject = bundle.get("subject_id")
    for position, item in enumerate(_items(bundle)):
        where = f"event {position} (leaf {item.get('leaf_index')})"
        try:
            salt, text = bytes.fromhex(item["salt"]), item["body"]
            index, path = int(item["leaf_index"]), [bytes.fromhex(h) for h in item["audit_path"]]
            document = json.loads(text)
        except (KeyError, TypeError, ValueError):
            raise BundleError(f"{where} is malformed") from None
        if document.get("subject_id") != subject:
            raise BundleError(f"{where} is about someone else")
        leaf = ledger.leaf_hash_of(salt, text.encode("utf-8"))
        try:
            merkle.verify_inclusion(index, body.size, leaf, path, body.root)
        except ProofError as exc:
            raise BundleError(f"{where} is not in the signed log: {exc}") from None
    return body, len(bundle["events"])


def _items(bundle: dict) -> Iterator[dict]:
    events = bundle.get("events")
    if not isinstance(events, list):
        raise BundleError("the bundle has no list of events")
    for item in events:
        if not isinstance(item, dict):
            raise BundleError("an event is not an object")
        yield item
