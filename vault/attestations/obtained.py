"""The attestations a requester obtained: their list, and each signed credential again.

An attestation is disclosed once, when it is issued (``attest``); the
vault keeps the signed credential sealed under the resident's subject key
for the resident's accounting. The requester it was issued to may fetch
that same credential again (to download it from the web app, or after a
lost response), and list the ones it obtained:

- ``list_obtained``: the caller's attestations, newest first, optionally
  about one resident, each with the answer it disclosed;
- ``credential_for``: one signed credential, byte for byte what was issued.

Fetching again discloses nothing new (the answer already left the vault
and was ledgered then), so it appends no event. Only the requester sees
its attestations: anyone else, the resident included, gets the
``NotFound`` an unknown id gets (the resident sees each attestation in
the access log and accounting of disclosures). After the resident's
erasure the subject key is gone and so are the rows: ``NotFound``.
"""

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vault.attestations.attest import CREDENTIAL_KIND
from vault.core.caller import Caller
from vault.core.errors import NotFound
from vault.keys.keys import KeyStore, open_text
from vault.storage.models import Attestation

URN_PREFIX = "urn:uuid:"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")  # as attest makes them
NOT_FOUND = "No attestation of yours has that id."


@dataclass(frozen=True)
class Obtained:
    id: str
    subject_id: str
    predicate: str
    parameters: dict[str, Any]
    result: bool
    counted: str
    purpose: str
    pseudonym: str
    created_at: datetime
    valid_until: datetime
    issuers: tuple[str, ...]
    ledger_event: str
    credential: dict[str, Any]

    @property
    def urn(self) -> str:
        """The credential's own id, ``urn:uuid:<id>``."""
        return f"{URN_PREFIX}{self.id}"


def open_credential(session: Session, keys: KeyStore, row: Attestation) -> dict[str, Any]:
    """The signed credential of an ``attestations`` row."""
    text = open_text(
        keys, session, kind=CREDENTIAL_KIND, object_id=row.id, subject_id=row.subject_id, sealed=row.credential_sealed
    )
    opened: dict[str, Any] = json.loads(text)
    return opened


def _obtained(session: Session, keys: KeyStore, row: Attestation) -> Obtained:
    credential = open_credential(session, keys, row)
    claims = credential["credentialSubject"]
    evidence = credential["evidence"][0]
    return Obtained(
        id=row.id,
        subject_id=row.subject_id,
        predicate=row.predicate,
        parameters=claims["parameters"],
        result=claims["result"],
        counted=claims["counted"],
        purpose=row.purpose,
        pseudonym=row.pseudonym,
        created_at=row.created_at,
        valid_until=row.valid_until,
        issuers=tuple(issuer["id"] for issuer in evidence["issuers"]),
        ledger_event=evidence["ledgerEvent"],
        credential=credential,
    )


def list_obtained(
    session: Session,
    keys: KeyStore,
    caller: Caller,
    *,
    subject_id: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Obtained], int]:
    """The attestations issued to ``caller``, newest first (about ``subject_id`` only, when given), and their total."""
    where = [Attestation.requester_id == caller.id]
    if subject_id is not None:
        where.append(Attestation.subject_id == subject_id)
    total = session.scalar(select(func.count()).select_from(Attestation).where(*where)) or 0
    rows = session.scalars(
        select(Attestation)
        .where(*where)
        .order_by(Attestation.created_at.desc(), Attestation.id)
        .limit(limit)
        .offset(offset)
    )
    return [_obtained(session, keys, row) for row in rows], total


def credential_for(session: Session, keys: KeyStore, caller: Caller, credential_id: str) -> Obtained:
    """The attestation ``credential_id`` (its UUID, or ``urn:uuid:<UUID>``) issued to ``caller``.

    ``NotFound`` for anyone else, or an unknown id.
    """
    if isinstance(credential_id, str):
        credential_id = credential_id.removeprefix(URN_PREFIX)
    well_formed = isinstance(credential_id, str) and UUID.fullmatch(credential_id) is not None
    row = session.get(Attestation, credential_id) if well_formed else None  # never a NUL or a long string to the DB
    if row is None or row.requester_id != caller.id:
        raise NotFound(NOT_FOUND)
    return _obtained(session, keys, row)
