"""What residents see of the trail: the access log and the accounting of disclosures.

Both are read from the ledger's off-chain events (``events``), never from a
second log, so every line carries its ``ledger_index`` and leaf hash and can
be proved with ``GET /api/v1/ledger/proofs/inclusion``.

* ``access_log``: every access and attempt concerning a resident, newest
  first: reads and writes permitted (``access.permitted``), refusals
  (``access.refused``, with their reason code) and break-glass declarations
  (``break-glass.declared``), and the reviews of compliance officers and
  delegates: a sealed free text about the resident shown to them
  (``text.opened``: which texts, never the text) and a compliance search of
  the trail filtered to the resident (``trail.searched``); and attestations
  (``attestation.issued``, ``attestation.no-evidence``), each described as
  what left the vault: the question, to whom, and the answer, which is
  opened from the sealed credential for the resident only. Paged by
  ``before`` (a ledger index) with the exact total. Reviews are not
  disclosures: they show nothing to anyone outside the vault's own
  officers and the resident's representatives.
* ``disclosures``: the accounting of disclosures of HIPAA 45 CFR 164.528:
  every permitted read of the resident's records, every listing of their
  record titles, and every attestation about them, by anyone other than
  the resident, in the last six years (grantees, break-glass clinics, and
  delegates, who are listed although the rule would allow leaving personal
  representatives out), each with the date, the recipient, a description of
  what was disclosed and the purpose. The report names the ledger size its
  proof references point at and the root at that size.

Who may look: the resident, a delegate acting for them, and compliance
officers; anyone else gets the ``NotFound`` an unknown id gets.
"""

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vault.consent.authz import acts_for, require_resident
from vault.core.bounds import MAX_PAGE
from vault.core.caller import Caller
from vault.core.clock import rfc3339
from vault.core.errors import InvalidInput, NotFound
from vault.core.vocabulary import CATEGORY_LABELS
from vault.identity.principals import get_principal
from vault.keys.keys import KeyStore, open_text
from vault.ledger import ledger
from vault.storage.models import Attestation, Event, LedgerNode, Principal

ATTESTATION_KINDS = ("attestation.issued", "attestation.no-evidence")
ACCESS_KINDS = (
    "access.permitted",
    "access.refused",
    "break-glass.declared",
    "text.opened",
    "trail.searched",
    "resident.looked-up",
    *ATTESTATION_KINDS,
)
OUTCOMES = {
    "access.permitted": "permitted",
    "access.refused": "refused",
    "break-glass.declared": "declared",
    "text.opened": "reviewed",
    "trail.searched": "reviewed",
    "resident.looked-up": "reviewed",
    "attestation.issued": "permitted",
    "attestation.no-evidence": "permitted",
}
REVIEW_ACTIONS = {"text.opened": "open-text", "trail.searched": "search", "resident.looked-up": "look-up"}
# The sealed credential of an attestation (vault/attestations): text kind and its own UUID as object id.
CREDENTIAL_KIND = "attestation-credential"
NO_EVIDENCE = "no-evidence"
DISCLOSURE_YEARS = 6


@dataclass(frozen=True)
class Actor:
    id: str
    role: str
    name: str | None  # None once the principal is gone


@dataclass(frozen=True)
class OpenedText:
    """A sealed free text about the resident that someone was shown (a review): its kind and object, not the text."""

    what: str  # access-request-reason, break-glass-reason or break-glass-review-note
    object_id: str


@dataclass(frozen=True)
class AccessEntry:
    ledger_index: int
    leaf_hash: str
    occurred_at: datetime
    kind: str
    outcome: str  # permitted | refused | declared
    actor: Actor
    action: str | None
    record_id: str | None
    version: int | None
    category: str | None
    purpose: str | None
    basis: str | None  # owner | grant | delegation | break-glass
    grant_id: str | None
    delegation_id: str | None
    break_glass_id: str | None
    flagged: bool
    reason: str | None  # the refusal's reason code; a declaration's coded reason (``unconscious``, ...)
    opened: tuple[OpenedText, ...] = ()  # a review (``text.opened``): the texts shown
    description: str | None = None  # an attestation: the question, to whom, and the answer (``describe_attestation``)


@dataclass(frozen=True)
class AccessLog:
    items: list[AccessEntry]
    total: int
    next_before: int | None


def require_viewer(session: Session, caller: Caller, subject_id: str, now: datetime) -> None:
    """The resident, their active delegate, or a compliance officer; otherwise the 404 of an unknown id."""
    require_resident(session, subject_id)
    if caller.role == "compliance" or caller.id == subject_id:
        return
    if acts_for(session, caller, subject_id, now) is None:
        raise NotFound()


def _actors(session: Session, keys: KeyStore, ids: Iterable[str]) -> dict[str, Actor]:
    actors = {}
    for principal_id in set(ids):
        row = session.get(Principal, principal_id)
        if row is None:
            actors[principal_id] = Actor(id=principal_id, role="unknown", name=None)
        else:
            actors[principal_id] = Actor(id=row.id, role=row.role, name=get_principal(session, keys, row.id).name)
    return actors


def _listing_basis(data: dict) -> tuple[str | None, str | None]:
    """The basis and grant of a listing, when one basis (and at most one grant) permitted everything it listed."""
    disclosed = data.get("disclosed") or []
    bases = {d.get("basis") for d in disclosed}
    grants = {d.get("grant_id") for d in disclosed} - {None}
    basis = next(iter(bases)) if len(bases) == 1 else None
    return basis, next(iter(grants)) if len(grants) == 1 and basis == "grant" else None


def _entry(row, actors: dict[str, Actor]) -> AccessEntry:
    index, kind, occurred_at, actor_id, data_json, leaf = row
    data = json.loads(data_json) if data_json else {}
    if data.get("action") == "list" and "disclosed" in data:
        data["basis"], data["grant_id"] = _listing_basis(data)
    return AccessEntry(
        ledger_index=index,
        leaf_hash=bytes(leaf).hex() if leaf is not None else "",
        occurred_at=occurred_at,
        kind=kind,
        outcome=OUTCOMES[kind],
        actor=actors[actor_id],
        action=REVIEW_ACTIONS.get(kind, data.get("action")),
        record_id=data.get("record_id"),
        version=data.get("version"),
        category=data.get("category") or ((data.get("categories") or [None])[0] if kind in ATTESTATION_KINDS else None),
        purpose=data.get("purpose"),
        basis=data.get("basis") or ("break-glass" if kind == "break-glass.declared" else None),
        grant_id=data.get("grant_id"),
        delegation_id=data.get("delegation_id"),
        break_glass_id=data.get("break_glass_id"),
        flagged=bool(data.get("flagged")),
        # A refusal's reason code, or the coded reason of an emergency declaration (vocabulary.BREAK_GLASS_CODES).
        reason=(
            data.get("code")
            if kind == "break-glass.declared"
            else NO_EVIDENCE
            if kind == "attestation.no-evidence"
            else data.get("reason")
        ),
        opened=tuple(
            OpenedText(what=item["what"], object_id=item["object_id"])
            for item in (data.get("opened") or [] if kind == "text.opened" else [])
        ),
    )


def _events(*conditions):
    return (
        select(Event.ledger_index, Event.kind, Event.occurred_at, Event.actor_id, Event.data, LedgerNode.hash)
        .outerjoin(LedgerNode, (LedgerNode.level == 0) & (LedgerNode.index == Event.ledger_index))
        .where(*conditions)
    )


def access_log(
    session: Session,
    keys: KeyStore,
    caller: Caller,
    *,
    subject_id: str,
    limit: int = 100,
    before: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    actor_id: str | None = None,
    now: datetime,
) -> AccessLog:
    """Accesses and attempts concerning ``subject_id``, newest first; ``before`` pages back from a ledger index.

    ``since`` (inclusive), ``until`` (exclusive) and ``actor_id`` narrow the
    log (and its total) to a time range and to one actor.
    """
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be 1 to {MAX_PAGE}.")
    if before is not None and before < 0:
        raise InvalidInput("before must be a ledger index, 0 or more.")
    if since is not None and until is not None and since >= until:
        raise InvalidInput("The start of the range must come before its end.")
    require_viewer(session, caller, subject_id, now)
    conditions = [Event.subject_id == subject_id, Event.kind.in_(ACCESS_KINDS)]
    if since is not None:
        conditions.append(Event.occurred_at >= since)
    if until is not None:
        conditions.append(Event.occurred_at < until)
    if actor_id is not None:
        conditions.append(Event.actor_id == actor_id)
    total = session.execute(select(func.count()).select_from(Event).where(*conditions)).scalar_one()
    if before is not None:
        conditions.append(Event.ledger_index < before)
    rows = session.execute(_events(*conditions).order_by(Event.ledger_index.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    actors = _actors(session, keys, (row[3] for row in rows))
    items = [_with_attestation(session, keys, caller, subject_id, row, _entry(row, actors)) for row in rows]
    return AccessLog(items=items, total=total, next_before=items[-1].ledger_index if more else None)


def log_actors(session: Session, keys: KeyStore, caller: Caller, *, subject_id: str, now: datetime) -> list[Actor]:
    """Everyone who appears in ``subject_id``'s access log (to filter it by who), by name."""
    require_viewer(session, caller, subject_id, now)
    ids = session.scalars(
        select(Event.actor_id).where(Event.subject_id == subject_id, Event.kind.in_(ACCESS_KINDS)).distinct()
    ).all()
    return sorted(_actors(session, keys, ids).values(), key=lambda a: ((a.name or "").casefold(), a.id))


def entries_per_day(
    session: Session, caller: Caller, *, subject_id: str, days: int, now: datetime
) -> list[tuple[date, int, int]]:
    """(day, permitted, refused) for each of the last ``days`` days up to ``now`` (UTC), oldest first."""
    require_viewer(session, caller, subject_id, now)
    first = now.date() - timedelta(days=days - 1)
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    rows = session.execute(
        select(Event.occurred_at, Event.kind).where(
            Event.subject_id == subject_id, Event.kind.in_(ACCESS_KINDS), Event.occurred_at >= start
        )
    ).all()
    counts = {first + timedelta(days=n): [0, 0] for n in range(days)}
    for occurred_at, kind in rows:
        day = occurred_at.astimezone(UTC).date() if occurred_at.tzinfo else occurred_at.date()
        if day in counts:
            counts[day][1 if kind == "access.refused" else 0] += 1
    return [(day, permitted, refused) for day, (permitted, refused) in counts.items()]


def _question(predicate: str, parameters: dict) -> str:
    """``income_at_least (3x annual rent 14400 EUR)``: an attestation's question in a few words."""
    if not isinstance(parameters, dict):
        parameters = {}
    currency = parameters.get("currency", "")
    if "multiple" in parameters and "annual_rent" in parameters:
        words = f"{parameters['multiple']:g}x annual rent {parameters['annual_rent']} {currency}"
    elif "amount" in parameters:
        words = f"{parameters['amount']} {currency}"
    elif "years" in parameters:
        words = f"{parameters['years']} years"
    else:
        words = ", ".join(f"{name} {value}" for name, value in sorted(parameters.items()))
    return f"{predicate} ({words.strip()})" if words.strip() else predicate


def _answer(session: Session, keys: KeyStore, caller: Caller, subject_id: str, data: dict, kind: str) -> str:
    """What left the vault: the signed result, opened for the resident only; others see that it is sealed."""
    if kind == "attestation.no-evidence":
        return "no counted record"
    if caller.id != subject_id:
        return "answer sealed for the resident"
    credential_id = str(data.get("credential_id") or "").removeprefix("urn:uuid:")
    row = session.get(Attestation, credential_id) if credential_id else None
    if row is None:
        return "answer no longer held"
    text = open_text(
        keys, session, kind=CREDENTIAL_KIND, object_id=row.id, subject_id=row.subject_id, sealed=row.credential_sealed
    )
    result = json.loads(text).get("credentialSubject", {}).get("result")
    return "true" if result is True else "false" if result is False else "unknown"


def describe_attestation(predicate: str, parameters: dict, recipient: str | None, answer: str) -> str:
    """``attestation income_at_least (3x annual rent 14400 EUR) for Harbour Housing: true``"""
    return f"attestation {_question(predicate, parameters)} for {recipient or 'a removed principal'}: {answer}"


def _with_attestation(
    session: Session, keys: KeyStore, caller: Caller, subject_id: str, row, entry: AccessEntry
) -> AccessEntry:
    if entry.kind not in ATTESTATION_KINDS:
        return entry
    data = json.loads(row[4]) if row[4] else {}
    answer = _answer(session, keys, caller, subject_id, data, entry.kind)
    description = describe_attestation(
        str(data.get("predicate", "")), data.get("parameters") or {}, entry.actor.name, answer
    )
    return replace(entry, description=description)


@dataclass(frozen=True)
class Disclosure:
    date: datetime
    recipient: Actor
    description: str
    purpose: str
    basis: str
    record_id: str  # "" for a listing
    version: int | None
    category: str
    ledger_index: int
    leaf_hash: str
    kind: str = "read"  # read | listing (record titles in one category)
    grant_id: str | None = None  # the grant that permitted it, when a grant did
    records: int = 1  # how many records it concerned (a listing: how many titles)


@dataclass(frozen=True)
class DisclosureReport:
    subject_id: str
    generated_at: datetime
    period_start: datetime
    period_end: datetime
    tree_size: int
    root_hash: str
    items: list[Disclosure]


def years_before(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year - years)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year - years, day=28)


def describe(category: str, record_id: str, version: int | None) -> str:
    label = CATEGORY_LABELS.get(category, category)
    return f"{label} ({category}): record {record_id}" + (f", version {version}" if version is not None else "")


def describe_listing(category: str, records: int, grant_id: str | None) -> str:
    label = CATEGORY_LABELS.get(category, category)
    titles = "1 record title" if records == 1 else f"{records} record titles"
    return f"Listing of {titles} in {label} ({category})" + (f", under grant {grant_id}" if grant_id else "")


def disclosures(
    session: Session, keys: KeyStore, caller: Caller, *, subject_id: str, now: datetime
) -> DisclosureReport:
    """Every permitted read of ``subject_id``'s records by someone else in the last six years, oldest first.

    A listing of record titles is a disclosure too (titles are health and
    tenancy facts): one line per category whose titles it listed, with the
    number of titles and the basis (and grant) that permitted it.
    """
    require_viewer(session, caller, subject_id, now)
    start = years_before(now, DISCLOSURE_YEARS)
    tree_size = ledger.size(session)
    rows = session.execute(
        _events(
            Event.subject_id == subject_id,
            Event.kind.in_(("access.permitted", *ATTESTATION_KINDS)),
            Event.actor_id != subject_id,
            Event.occurred_at >= start,
            Event.ledger_index < tree_size,
        ).order_by(Event.ledger_index)
    ).all()
    actors = _actors(session, keys, (row[3] for row in rows))
    items = []
    for row in rows:
        entry = _with_attestation(session, keys, caller, subject_id, row, _entry(row, actors))
        if entry.kind in ATTESTATION_KINDS:
            items.append(
                Disclosure(
                    date=entry.occurred_at,
                    recipient=entry.actor,
                    description=entry.description or "",
                    purpose=entry.purpose or "",
                    basis=entry.basis or "",
                    record_id="",
                    version=None,
                    category=entry.category or "",
                    ledger_index=entry.ledger_index,
                    leaf_hash=entry.leaf_hash,
                    kind="attestation",
                    grant_id=entry.grant_id,
                    records=len(json.loads(row[4]).get("records") or []) if row[4] else 0,
                )
            )
            continue
        if entry.action == "list":
            items.extend(_listing_lines(entry, json.loads(row[4]) if row[4] else {}))
            continue
        if entry.action != "read":
            continue
        items.append(
            Disclosure(
                date=entry.occurred_at,
                recipient=entry.actor,
                description=describe(entry.category or "", entry.record_id or "", entry.version),
                purpose=entry.purpose or "",
                basis=entry.basis or "",
                record_id=entry.record_id or "",
                version=entry.version,
                category=entry.category or "",
                ledger_index=entry.ledger_index,
                leaf_hash=entry.leaf_hash,
                grant_id=entry.grant_id,
            )
        )
    return DisclosureReport(
        subject_id=subject_id,
        generated_at=now,
        period_start=start,
        period_end=now,
        tree_size=tree_size,
        root_hash=ledger.root(session, tree_size).hex(),
        items=items,
    )


def _listing_lines(entry: AccessEntry, data: dict) -> list[Disclosure]:
    return [
        Disclosure(
            date=entry.occurred_at,
            recipient=entry.actor,
            description=describe_listing(item["category"], item["records"], item.get("grant_id")),
            purpose=entry.purpose or "",
            basis=item.get("basis") or "",
            record_id="",
            version=None,
            category=item["category"],
            ledger_index=entry.ledger_index,
            leaf_hash=entry.leaf_hash,
            kind="listing",
            grant_id=item.get("grant_id"),
            records=item["records"],
        )
        for item in data.get("disclosed") or []
    ]


def proof_reference(leaf_index: int, tree_size: int) -> str:
    return f"/api/v1/ledger/proofs/inclusion?leaf_index={leaf_index}&tree_size={tree_size}"


CSV_COLUMNS = (
    "date",
    "recipient_id",
    "recipient_role",
    "recipient_name",
    "description",
    "purpose",
    "basis",
    "ledger_index",
    "leaf_hash",
    "proof",
)


def _cell(value) -> str:
    """A CSV cell that a spreadsheet will not run: text starting with = + - @ or a control character gets a quote."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def disclosures_csv(report: DisclosureReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for item in report.items:
        writer.writerow(
            [
                _cell(v)
                for v in (
                    rfc3339(item.date),
                    item.recipient.id,
                    item.recipient.role,
                    item.recipient.name,
                    item.description,
                    item.purpose,
                    item.basis,
                    item.ledger_index,
                    item.leaf_hash,
                    proof_reference(item.ledger_index, report.tree_size),
                )
            ]
        )
    return out.getvalue()
