"""Witnesses: other agencies that cosign checkpoints after checking consistency.

A principal with role ``witness`` registers a BLS public key with a proof of
possession. It then cosigns checkpoints: the vault accepts a cosignature only
if it verifies under the witness's key, is for a checkpoint the node signed,
and that checkpoint extends (by an RFC 9162 consistency proof) the last one
the same witness cosigned. A rollback or a fork is refused.

A cosignature is over the checkpoint's cosigned message
(``crypto.checkpoint.COSIGNATURE_HEADER`` and the note text), never over the
bytes the log signs; it is stored as its note line's bytes, key id then
signature (docs/ledger-format.md, section 6).
"""

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crypto import bls, merkle
from crypto import checkpoint as notes
from crypto.errors import ProofError, SignatureError
from vault.core.caller import Caller
from vault.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from vault.ledger import ledger
from vault.ledger.events import DomainEvent, emit
from vault.storage.models import Checkpoint, Cosignature, WitnessKey


def _require_witness(caller: Caller) -> None:
    if caller.role != "witness":
        raise Forbidden("Only witnesses register keys and cosign checkpoints.")


def register(session: Session, caller: Caller, *, public_key: bytes, proof: bytes, now: datetime) -> None:
    _require_witness(caller)
    try:
        bls.verify_possession(public_key, proof)
    except SignatureError:
        raise InvalidInput("The proof of possession does not verify for this public key.") from None
    existing = session.get(WitnessKey, caller.id)
    if existing is not None:
        if bytes(existing.public_key) == public_key:
            return
        raise Conflict("This witness already registered another key.")
    session.add(WitnessKey(principal_id=caller.id, public_key=public_key, registered_at=now))
    emit(
        session,
        DomainEvent(
            kind="witness.registered",
            occurred_at=now,
            actor_id=caller.id,
            subject_id=None,
            data={"key_id": notes.cosigner_key_id(caller.id, public_key).hex()},
        ),
    )


def roster(session: Session) -> dict[str, bytes]:
    return {row.principal_id: bytes(row.public_key) for row in session.scalars(select(WitnessKey))}


def _body(row: Checkpoint) -> notes.Checkpoint:
    return notes.Checkpoint(origin=row.origin, size=row.tree_size, root=bytes(row.root))


def cosign(session: Session, caller: Caller, *, tree_size: int, root: bytes, signature: bytes, now: datetime) -> int:
    """Accept a witness's cosignature of a node checkpoint; returns how many cosigners it has."""
    _require_witness(caller)
    key = session.get(WitnessKey, caller.id)
    if key is None:
        raise InvalidInput("Register a public key (POST /api/v1/ledger/witnesses) before cosigning.")
    row = session.scalars(
        select(Checkpoint)
        .where(Checkpoint.tree_size == tree_size, Checkpoint.root == root)
        .order_by(Checkpoint.id.desc())
        .limit(1)
    ).first()
    if row is None:
        raise NotFound("The node signed no checkpoint with this size and root.")
    body = _body(row)
    try:
        notes.verify_cosignature(body, signature, public_key=bytes(key.public_key))
    except SignatureError:
        raise InvalidInput("The cosignature does not verify under this witness's key.") from None
    previous = (
        session.execute(
            select(Checkpoint)
            .join(Cosignature, Cosignature.checkpoint_id == Checkpoint.id)
            .where(Cosignature.witness_id == caller.id)
            .order_by(Checkpoint.tree_size.desc())
            .limit(1)
        )
        .scalars()
        .first()
    )
    if previous is not None:
        if previous.tree_size > tree_size:
            raise Conflict(f"Rollback: this witness already cosigned a checkpoint of size {previous.tree_size}.")
        # What the witness saw before must be a prefix of what it signs now.
        proof = merkle.consistency_proof(previous.tree_size, tree_size, ledger.subtree_hasher(session))
        try:
            merkle.verify_consistency(previous.tree_size, tree_size, bytes(previous.root), root, proof)
        except ProofError:
            raise Conflict("This checkpoint is not consistent with the one the witness cosigned before.") from None
    stored = notes.cosigner_key_id(caller.id, bytes(key.public_key)) + signature
    existing = session.get(Cosignature, (row.id, caller.id))
    if existing is not None and bytes(existing.signature) != stored:
        # A format-1 cosignature (over the log's own bytes): the witness signs this checkpoint again, in format 2.
        existing.signature, existing.created_at = stored, now
        session.flush()
    if existing is None:
        session.add(Cosignature(checkpoint_id=row.id, witness_id=caller.id, signature=stored, created_at=now))
        emit(
            session,
            DomainEvent(
                kind="checkpoint.cosigned",
                occurred_at=now,
                actor_id=caller.id,
                subject_id=None,
                data={"tree_size": tree_size, "root_hash": root.hex()},
            ),
        )
        session.flush()
    return session.execute(
        select(func.count()).select_from(Cosignature).where(Cosignature.checkpoint_id == row.id)
    ).scalar_one()
