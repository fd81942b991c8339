"""Proofs for the browser: the inclusion proof and signed checkpoint of a resident's own access-log entry.

Two routes, for a resident (their own entries, or those of a resident they
are an active delegate for) and a compliance officer (any resident's), with
the access log's own check (``trail.require_viewer``): anyone else, and any
id that names no access-log line, gets the 404 of an unknown id.

- ``GET /proofs/entries/<event_id>.json`` (``web.proofs.entry``): everything a
  browser needs to check the entry without trusting the server's word. The
  answer is an audit bundle (``civicvault-audit-bundle/1``, docs/ledger-format.md
  section 7) of this one entry, so the same file also passes ``civicvault
  audit verify-bundle``, with a few fields for the page's script on top.
  ``{"state": "pending", ...}`` while the entry is waiting for the sequencer
  or for the next signed checkpoint.
- ``GET /proofs/entries/<event_id>`` (``web.proofs.entry_page``): the entry
  for people: what happened, its leaf hash, index, the checkpoint and the
  inclusion path, the browser's own check, and how to check it offline.

``event_id`` is the line's ``ledger_index`` as the access log gives it
(``vault.rights.trail.AccessEntry.ledger_index``); its ``leaf_hash`` (64 hex
digits) is accepted too, and is the only name of an entry the sequencer has
not reached yet.

The ledger's public key is put in every resident's and compliance officer's
page by ``ledger_key_context`` (``<meta name="civicvault-ledger-key">`` in
``base.html``): the script checks signatures against the key of the page, not
one named in the JSON. docs/web/proofs.md says what that does and does not
prove.
"""

import functools
import logging
import re
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, g, json, url_for
from flask.blueprints import BlueprintSetupState
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.context import EXTENSION, Call, current_vault, reading
from api.web.pages import render
from api.web.session import page
from vault.anchoring import proofs as proof_service
from vault.core.caller import Caller
from vault.core.errors import ConfigError, NotFound
from vault.core.vocabulary import CATEGORY_LABELS
from vault.identity.principals import get_principal
from vault.ledger import checkpoints, witnesses
from vault.ledger.checkpoints import CheckpointView
from vault.rights import trail
from vault.rights.trail import AccessEntry
from vault.storage.models import Event, PendingEvent
from vault.verification.bundles import FORMAT as BUNDLE_FORMAT

log = logging.getLogger("civicvault.web")

bp = Blueprint("proofs", __name__)

ROLES = ("resident", "compliance")
_INDEX = re.compile(r"[0-9]{1,18}")  # a ledger index (below 2^63 with room to spare)
_LEAF_HASH = re.compile(r"[0-9a-f]{64}")


# --- the ledger key every resident and compliance page carries ---------------------------------


@functools.lru_cache(maxsize=4)
def _public_key_of(path: str, mtime_ns: int, size: int) -> str:
    from vault.keys import ledger_key

    return ledger_key.read(Path(path)).public_key.hex()


def _public_key_at(path: Path) -> str | None:
    try:
        stat = path.stat()
        return _public_key_of(str(path), stat.st_mtime_ns, stat.st_size)
    except FileNotFoundError:
        return None
    except ConfigError:
        log.error("the ledger key file is unreadable: pages carry no ledger key")
        return None


def ledger_public_key() -> str | None:
    """The vault's ledger public key (hex), derived once per key file from ``ledger.key``; None without one."""
    return _public_key_at(current_vault().settings.ledger_key_file)


@bp.record_once
def _warm_up(state: BlueprintSetupState) -> None:
    """Derive the key in the background when the app starts: py-ecc takes seconds to import, once per process."""
    vault = state.app.extensions.get(EXTENSION)
    if vault is not None and vault.settings.ledger_key_file.exists():
        threading.Thread(
            target=_public_key_at, args=(vault.settings.ledger_key_file,), name="civicvault-ledger-key", daemon=True
        ).start()


@bp.app_context_processor
def ledger_key_context() -> dict[str, Any]:
    """The keys the layout puts in the page of a signed-in resident or compliance officer.

    ``ledger_key``: the ledger's public key (hex). ``witness_keys``: the
    registered witnesses as ``name:hex`` separated by spaces (witness names
    have no spaces), and ``witness_threshold``: the script checks the
    cosignatures of these witnesses, and says how many cosigned.
    """
    info = g.get("web_session")
    if info is None or not info.second_factor_done or info.role not in ROLES:
        return {}
    key = ledger_public_key()
    if not key:
        return {}
    found: dict[str, Any] = {"ledger_key": key}
    try:
        vault = current_vault()
        with vault.read_transaction() as session:
            roster = witnesses.roster(session)
        found["witness_keys"] = " ".join(f"{name}:{public.hex()}" for name, public in sorted(roster.items()))
        found["witness_threshold"] = vault.settings.witness_threshold
    except Exception:  # an error page while the database is down: the page still renders, without witnesses
        log.warning("the witnesses' keys could not be read for a page")
    return found


# --- finding the entry -------------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """An access-log entry the caller may see: sequenced (``event``), or still pending (``pending``)."""

    subject_id: str
    leaf_hash: str
    event: Event | None
    pending: PendingEvent | None


def _find(session: Session, caller: Caller, event_id: str, now: datetime) -> Found:
    """The entry ``event_id`` names, checked as the access log checks its viewer; ``NotFound`` otherwise."""
    event: Event | None = None
    pending: PendingEvent | None = None
    if _INDEX.fullmatch(event_id):
        event = session.get(Event, int(event_id))
    elif _LEAF_HASH.fullmatch(event_id):
        digest = bytes.fromhex(event_id)
        event = session.scalars(select(Event).where(Event.leaf_hash == digest)).first()
        if event is None:
            pending = session.scalars(select(PendingEvent).where(PendingEvent.leaf_hash == digest)).first()
    row = event if event is not None else pending
    # Only the lines of an access log (trail.ACCESS_KINDS), about a resident.
    if row is None or row.subject_id is None or row.kind not in trail.ACCESS_KINDS:
        raise NotFound()
    trail.require_viewer(session, caller, row.subject_id, now)  # the access log's own check: 404 for others
    leaf = row.leaf_hash
    if leaf is None:
        raise NotFound()
    return Found(subject_id=row.subject_id, leaf_hash=bytes(leaf).hex(), event=event, pending=pending)


def _access_entry(call: Call, found: Found) -> AccessEntry:
    """The access log's own line for the entry (who, what, when, purpose, basis)."""
    assert found.event is not None
    index = found.event.ledger_index
    page_of_one = trail.access_log(
        call.session, call.keys, call.caller, subject_id=found.subject_id, before=index + 1, limit=1, now=call.now
    )
    if not page_of_one.items or page_of_one.items[0].ledger_index != index:
        raise NotFound()
    return page_of_one.items[0]


@dataclass(frozen=True)
class Proof:
    """What the page and the JSON show of a sequenced entry."""

    found: Found
    entry: AccessEntry
    checkpoint: CheckpointView | None  # None: nothing signed yet
    audit_path: list[str] | None  # None: the entry is beyond the latest checkpoint

    @property
    def covered(self) -> bool:
        return self.audit_path is not None


def _latest_checkpoint(session: Session, threshold: int) -> CheckpointView | None:
    try:
        return checkpoints.latest(session, threshold=threshold)
    except NotFound:
        return None


def _prove(call: Call, found: Found) -> Proof:
    assert found.event is not None
    entry = _access_entry(call, found)
    latest = _latest_checkpoint(call.session, call.settings.witness_threshold)
    path = None
    if latest is not None and entry.ledger_index < latest.tree_size:
        # The proof endpoint's own service, at the checkpoint's size (GET /api/v1/ledger/proofs/inclusion).
        proved = proof_service.inclusion(call.session, leaf_index=entry.ledger_index, tree_size=latest.tree_size)
        path = proved.proof.audit_path
    return Proof(found=found, entry=entry, checkpoint=latest, audit_path=path)


def _load(event_id: str, *, with_subject_name: bool = False) -> tuple[Found, Proof | None, str | None]:
    """The entry and its proof; the resident's name too when someone else (a delegate, an officer) looks."""
    with reading() as call:
        found = _find(call.session, call.caller, event_id, call.now)
        name = None
        if with_subject_name and found.subject_id != call.caller.id:
            name = get_principal(call.session, call.keys, found.subject_id).name
        return found, (_prove(call, found) if found.event is not None else None), name


# --- the JSON for the page's script --------------------------------------------------------------


def _pending(event_id: str, found: Found, waiting_for: str, index: int | None) -> dict[str, Any]:
    return {
        "state": "pending",
        "waiting_for": waiting_for,  # "sequencer" (no index yet) or "checkpoint" (no signed checkpoint covers it)
        "event_id": event_id,
        "leaf_hash": found.leaf_hash,
        "leaf_index": index,
    }


def proof_document(event_id: str, found: Found, proof: Proof | None) -> dict[str, Any]:
    """The JSON answer: ``pending``, or an audit bundle of the one entry with the script's fields on top."""
    if proof is None:
        return _pending(event_id, found, "sequencer", None)
    if not proof.covered or proof.checkpoint is None or proof.audit_path is None:
        return _pending(event_id, found, "checkpoint", proof.entry.ledger_index)
    event = found.event
    assert event is not None
    checkpoint = proof.checkpoint
    node = checkpoint.signatures[0]  # the node's own signature line comes first (checkpoints._view)
    return {
        # An audit bundle (docs/ledger-format.md section 7): `civicvault audit verify-bundle` checks this file.
        "format": BUNDLE_FORMAT,
        "subject_id": found.subject_id,
        "checkpoint": checkpoint.note,
        "events": [
            {
                "leaf_index": event.ledger_index,
                "salt": bytes(event.salt).hex(),
                "body": bytes(event.body).decode("utf-8"),
                "audit_path": proof.audit_path,
            }
        ],
        "pending": 0,
        # For the page's script: which entry, at which size, signed by which key.
        "state": "sequenced",
        "event_id": event_id,
        "leaf_index": event.ledger_index,
        "leaf_hash": found.leaf_hash,
        "tree_size": checkpoint.tree_size,
        "checkpoint_signature": {"name": node.name, "key_id": node.key_id, "signature": node.signature},
        "ledger_public_key": ledger_public_key(),
        "witnesses": {
            "cosigners": checkpoint.cosigners,
            "threshold": checkpoint.threshold,
            "witnessed": checkpoint.witnessed,
        },
    }


@bp.route("/proofs/entries/<event_id>.json")
@page(*ROLES)
def entry(event_id: str) -> Response:
    """The proof of one access-log line, for the browser to check (JSON, never cached)."""
    found, proof, _ = _load(event_id)
    response = Response(json.dumps(proof_document(event_id, found, proof)), mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


# --- the page --------------------------------------------------------------------------------------


@bp.route("/proofs/entries/<event_id>")
@page(*ROLES)
def entry_page(event_id: str) -> tuple[str, int]:
    """One access-log line and its proof: what happened, where it is in the log, and how to check it."""
    found, proof, subject_name = _load(event_id, with_subject_name=True)
    document = proof_document(event_id, found, proof)
    return render(
        "proofs/entry.html",
        title="Proof of an access",
        event_id=event_id,
        found=found,
        proof=proof,
        document=document,
        subject_name=subject_name,
        category_label=lambda code: CATEGORY_LABELS.get(code, code),
        proof_url=url_for("web.proofs.entry", event_id=event_id),
        history_url=url_for("web.resident.history") if "web.resident.history" in current_app.view_functions else None,
    )
