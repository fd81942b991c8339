"""Issue an attestation: consent, evaluation, ledger event and signed credential, in the caller's one transaction.

``attest`` runs, in order (docs/attestations.md, "Attestations"):

1. the predicate and its parameters are checked (``InvalidInput``, before
   anything about the resident is looked at);
2. the resident must exist (otherwise the ``NotFound`` and refusal event of
   an unknown id, as for records);
3. the consent decision for action ``attest`` on each category the predicate
   reads, for the stated purpose, by the same machinery as a read
   (``vault.consent.access.decide_and_count``): a refusal is an
   ``access.refused`` event and the same answer a read gets; a permit
   counts one use of the grant (``max_uses``), as a read does;
4. the current versions of the resident's records in those categories are
   opened (``documents.documents_for``) and the predicate answers;
5. the ``attestation.issued`` event is appended (ids, the predicate, its
   checked parameters, the records used, the credential's id and digest;
   never the result), the credential is completed with the event's leaf
   hash as evidence and signed with the vault's attestation key;
6. the signed credential is sealed under the resident's subject key in an
   ``attestations`` row, for the resident's own accounting.

When no counted record answers the question the answer is ``NoEvidence``
(409): nothing is signed, no use of the grant is counted (the transaction
rolls back), and an ``attestation.no-evidence`` event is recorded in a
transaction of its own, so the resident sees that the requester learnt
"no counted record".
"""

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.attestations import credential as vc
from vault.attestations import documents as sources
from vault.attestations.predicates import Document, NoEvidence, evaluate, predicate
from vault.consent import policy
from vault.consent.access import check_stated_purpose, decide_and_count, load_facts, unknown_target
from vault.consent.authz import require_resident
from vault.core.caller import Caller
from vault.core.errors import InvalidInput, NotFound
from vault.core.ids import is_well_formed_id
from vault.keys.attestation_key import AttestationKey
from vault.keys.keys import KeyStore, seal_text
from vault.ledger.events import DomainEvent, emit
from vault.ledger.ledger import Receipt
from vault.storage.models import Attestation

CREDENTIAL_KIND = "attestation-credential"


@dataclass(frozen=True)
class Issued:
    credential: dict[str, Any]
    pseudonym: str
    receipt: Receipt


def _pseudonym(session: Session, keys: KeyStore, subject_id: str, requester_id: str) -> tuple[int, str]:
    """The pair's pseudonym, under the master key version of its first attestation while that version is kept.

    A landlord who got attestations before a master key rotation keeps
    seeing the same pseudonym; once the old version is retired, a new one
    starts (docs/attestations.md, "The credential").
    """
    earlier = session.scalar(
        select(Attestation.pseudonym_key_version)
        .where(Attestation.subject_id == subject_id, Attestation.requester_id == requester_id)
        .order_by(Attestation.created_at)
        .limit(1)
    )
    version = earlier if earlier is not None and earlier in keys.keyring.versions else None
    return keys.pseudonym(subject_id, requester_id, version=version)


def _issuers(used: tuple[Document, ...]) -> list[dict[str, str]]:
    return [{"id": issuer} for issuer in sorted({d.issuer_id for d in used if d.issuer_id is not None})]


def _require_subject(session: Session, caller: Caller, subject_id: str, *, purpose: str, now: datetime) -> None:
    try:
        require_resident(session, subject_id)
    except NotFound:
        shaped = subject_id if is_well_formed_id(subject_id) else "x-not-an-id"
        load_facts(session, subject_id=shaped, actor_id=caller.id, actor_role=caller.role)  # as costly as a foreign id
        raise unknown_target(caller, action=policy.ATTEST, purpose=purpose, now=now) from None


def attest(
    session: Session,
    keys: KeyStore,
    caller: Caller,
    subject_id: str,
    *,
    predicate_name: str,
    parameters: Mapping[str, Any],
    purpose: str,
    include_self_asserted: bool = False,
    now: datetime,
    valid_days: int,
    signing_key: AttestationKey,
) -> Issued:
    """Answer ``predicate_name`` about ``subject_id``'s records for ``caller``, signed; see the module's steps."""
    chosen = predicate(predicate_name)
    checked = chosen.check(parameters)
    if not isinstance(include_self_asserted, bool):
        raise InvalidInput("include_self_asserted must be true or false.")
    if purpose is None:
        raise InvalidInput("State the purpose of the attestation.")
    check_stated_purpose(caller, purpose)
    _require_subject(session, caller, subject_id, purpose=purpose, now=now)
    permits = [
        decide_and_count(
            session,
            caller,
            subject_id=subject_id,
            category=category,
            purpose=purpose,
            action=policy.ATTEST,
            now=now,
            predicate=chosen.name,
        )
        for category in chosen.categories
    ]
    grant_ids = sorted({p.grant_id for p in permits if p.grant_id is not None})
    basis = permits[0].basis
    documents = sources.documents_for(session, keys, subject_id, chosen.categories)
    event_data: dict[str, Any] = {
        "action": policy.ATTEST,
        "actor_role": caller.role,
        "purpose": purpose,
        "categories": list(chosen.categories),
        "basis": basis,
        "grant_id": grant_ids[0] if len(grant_ids) == 1 else None,
        "predicate": chosen.name,
        "parameters": checked,
        "include_self_asserted": include_self_asserted,
    }
    try:
        answer, _ = evaluate(
            chosen.name, checked, documents, today=now.date(), include_self_asserted=include_self_asserted
        )
    except NoEvidence as missing:
        raise missing.with_events(
            DomainEvent(
                kind="attestation.no-evidence",
                occurred_at=now,
                actor_id=caller.id,
                subject_id=subject_id,
                data=event_data,
            )
        ) from None
    version, pseudonym = _pseudonym(session, keys, subject_id, caller.id)
    credential_id = str(uuid.uuid4())
    body = vc.unsigned(
        credential_id=credential_id,
        issuer=signing_key.did,
        pseudonym=pseudonym,
        predicate=chosen.name,
        parameters=checked,
        result=answer.result,
        include_self_asserted=include_self_asserted,
        requester=caller.id,
        now=now,
        valid_days=valid_days,
    )
    receipt = emit(
        session,
        DomainEvent(
            kind="attestation.issued",
            occurred_at=now,
            actor_id=caller.id,
            subject_id=subject_id,
            data={
                **event_data,
                "credential_id": body["id"],
                "credential_sha256": vc.digest(body),
                "records": [{"record_id": d.record_id, "version": d.version} for d in answer.used],
                "issuers": [issuer["id"] for issuer in _issuers(answer.used)],
            },
        ),
    )
    signed = vc.sign(
        vc.with_evidence(body, ledger_event=receipt.leaf_hash, issuers=_issuers(answer.used)),
        signing_key.seed,
        now=now,
        method=signing_key.verification_method,
    )
    row = Attestation(
        id=credential_id,
        subject_id=subject_id,
        requester_id=caller.id,
        grant_id=event_data["grant_id"],
        predicate=chosen.name,
        purpose=purpose,
        pseudonym=pseudonym,
        pseudonym_key_version=version,
        credential_sealed=seal_text(
            keys,
            session,
            kind=CREDENTIAL_KIND,
            object_id=credential_id,
            subject_id=subject_id,
            text=json.dumps(signed, sort_keys=True, separators=(",", ":")),
        ),
        created_at=now,
        valid_until=vc.parse_datetime(body["validUntil"]),
    )
    session.add(row)
    session.flush()
    return Issued(credential=signed, pseudonym=pseudonym, receipt=receipt)
