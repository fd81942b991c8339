"""A resident's export (GDPR Art. 20): everything held about them, in one JSON document.

``export(session, keys, caller, subject_id=..., now=...)`` returns a
JSON-ready dict (format ``civicvault-export-v1``, docs/compliance.md has the
layout): the resident's principal, every record with every version opened,
the health records again as an HL7 FHIR R4 ``Bundle``, a FHIR ``Provenance``
with the issuer's signature for every record version an issuer signed
(``issued_records``), their grants (each
also as a FHIR ``Consent``), access requests, delegations, break-glass
declarations and the whole access log, and the ``receipt`` of the
``subject.exported`` event that this export appended to the ledger in the
same transaction (if the ledger cannot record it, nothing is returned).

Only the resident may export; anyone else gets the ``NotFound`` an unknown id gets.
"""

import dataclasses
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from vault.consent import access_requests, break_glass, consent, delegations
from vault.consent.authz import require_resident
from vault.core.bounds import MAX_PAGE
from vault.core.caller import Caller
from vault.core.clock import rfc3339
from vault.core.errors import NotFound
from vault.identity import principals
from vault.keys.keys import KeyStore
from vault.ledger.events import DomainEvent, emit_sequenced
from vault.ledger.ledger import Receipt
from vault.records import fhir, records
from vault.rights import trail

FORMAT = "civicvault-export-v1"


def _json(value: Any) -> Any:
    if isinstance(value, Receipt):
        return value.as_dict()
    if dataclasses.is_dataclass(value):
        return {f.name: _json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, bytes):  # an issuer's signature
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    return value


def _all_pages(fetch) -> list:
    items, offset = [], 0
    while True:
        page, total = fetch(limit=MAX_PAGE, offset=offset)
        items.extend(page)
        offset += len(page)
        if not page or offset >= total:
            return items


def _whole_access_log(session: Session, keys: KeyStore, caller: Caller, subject_id: str, now: datetime) -> list:
    items, before = [], None
    while True:
        page = trail.access_log(session, keys, caller, subject_id=subject_id, limit=MAX_PAGE, before=before, now=now)
        items.extend(page.items)
        if page.next_before is None:
            return items
        before = page.next_before


def export(session: Session, keys: KeyStore, caller: Caller, *, subject_id: str, now: datetime) -> dict:
    require_resident(session, subject_id)
    if caller.id != subject_id:
        raise NotFound()
    me = principals.get_principal(session, keys, subject_id)
    history = records.history(session, keys, subject_id)
    grants = _all_pages(lambda **page: consent.list_grants(session, caller, subject_id=subject_id, now=now, **page))
    requests = _all_pages(
        lambda **page: access_requests.list_requests(session, keys, caller, subject_id=subject_id, now=now, **page)
    )
    delegated = _all_pages(
        lambda **page: delegations.list_delegations(session, caller, subject_id=subject_id, now=now, **page)
    )
    declarations = break_glass.list_declarations(session, keys, caller, subject_id=subject_id, now=now)
    log = _whole_access_log(session, keys, caller, subject_id, now)
    receipt = emit_sequenced(
        session,
        DomainEvent(
            kind="subject.exported",
            occurred_at=now,
            actor_id=caller.id,
            subject_id=subject_id,
            data={
                "records": len(history),
                "versions": sum(len(r.versions) for r in history),
                "grants": len(grants),
                "access_log_entries": len(log),
            },
        ),
    )
    return {
        "format": FORMAT,
        "generated_at": rfc3339(now),
        "subject": _json(me),
        "records": _json(history),
        "health_records": fhir.health_bundle(subject_id, me.name, history, generated_at=now),
        "issued_records": fhir.provenance_bundle(history, generated_at=now),
        "grants": [{**_json(g), "fhir": fhir.consent_resource(g)} for g in grants],
        "access_requests": _json(requests),
        "delegations": _json(delegated),
        "break_glass": _json(declarations),
        "access_log": _json(log),
        "receipt": _json(receipt),
    }
