"""Flags that draw a compliance officer's attention, computed from the events on demand.

Each rule reads the event trail over a time range and returns flags; nothing
is stored, so changing a threshold (``vault.config.FlagThresholds``,
``CIVICVAULT_FLAG_*``) changes the answer for the past too. The rules
(docs/compliance.md explains them for the officer):

``break-glass``     every emergency declaration, with the reads made under it
                    and whether it has been acknowledged;
``refusal-burst``   a principal refused at least N times within W minutes;
``read-volume``     a principal's reads of other people's records in one window
                    above ``factor`` x its average over the windows before, once
                    those windows hold at least ``min_reads`` reads (a new
                    grantee has no usual volume yet, and never fires);
``near-expiry``     reads under a grant within X hours of the grant's end;
``after-expiry``    accesses refused because the grant had expired.

The rules are pure functions of the events given to them (``evaluate``);
``compute`` loads those events. Flags hold ids, codes, counts and times only.
"""

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.consent.authz import require_compliance
from vault.core.caller import Caller
from vault.core.clock import rfc3339
from vault.core.config import FlagThresholds
from vault.core.errors import InvalidInput
from vault.storage.models import BreakGlassReview, Event, Grant

RULES = ("break-glass", "refusal-burst", "read-volume", "near-expiry", "after-expiry")
MAX_RANGE = timedelta(days=366)
DEFAULT_RANGE = timedelta(days=7)
MAX_INDICES = 100  # ledger indices listed per flag; ``count`` has the full number
_KINDS = ("break-glass.declared", "access.permitted", "access.refused")


@dataclass(frozen=True)
class Seen:
    """The facts of one event that the rules need."""

    ledger_index: int
    occurred_at: datetime
    kind: str
    actor_id: str
    subject_id: str | None
    data: dict


@dataclass(frozen=True)
class Flag:
    rule: str
    principal_id: str
    subject_id: str | None
    first_at: datetime
    last_at: datetime
    count: int
    ledger_indices: tuple[int, ...]
    detail: dict = field(default_factory=dict)


def _flag(rule: str, events: list[Seen], *, principal_id: str, subject_id: str | None, **detail) -> Flag:
    return Flag(
        rule=rule,
        principal_id=principal_id,
        subject_id=subject_id,
        first_at=events[0].occurred_at,
        last_at=events[-1].occurred_at,
        count=len(events),
        ledger_indices=tuple(e.ledger_index for e in events[:MAX_INDICES]),
        detail=detail,
    )


def _is_read_of_another(event: Seen) -> bool:
    return event.kind == "access.permitted" and event.data.get("action") == "read" and event.data.get("basis") != "self"


def break_glass_flags(events: list[Seen], since: datetime, until: datetime, acknowledged: set[str]) -> list[Flag]:
    reads = defaultdict(list)
    for event in events:
        if event.kind == "access.permitted" and event.data.get("break_glass_id"):
            reads[event.data["break_glass_id"]].append(event)
    flags = []
    for event in events:
        if event.kind == "break-glass.declared" and since <= event.occurred_at < until:
            declaration = event.data.get("break_glass_id")
            used = reads.get(declaration, [])
            flags.append(
                _flag(
                    "break-glass",
                    [event, *used],
                    principal_id=event.actor_id,
                    subject_id=event.subject_id,
                    break_glass_id=declaration,
                    reads=len(used),
                    acknowledged=declaration in acknowledged,
                )
            )
    return flags


def refusal_burst_flags(events: list[Seen], since: datetime, until: datetime, limits: FlagThresholds) -> list[Flag]:
    """Runs of one principal's refusals in which ``refusal_count`` fall within ``refusal_minutes``.

    Every refusal that lies in such a span is marked; marked refusals less
    than the span apart form one flag, reported if any of them is in range.
    """
    span, needed = timedelta(minutes=limits.refusal_minutes), limits.refusal_count
    by_actor = defaultdict(list)
    for event in events:
        if event.kind == "access.refused":
            by_actor[event.actor_id].append(event)
    flags = []
    for actor, refusals in by_actor.items():
        refusals.sort(key=lambda e: (e.occurred_at, e.ledger_index))
        marked = [False] * len(refusals)
        for start in range(len(refusals) - needed + 1):
            end = start + needed - 1
            if refusals[end].occurred_at - refusals[start].occurred_at <= span:
                for i in range(start, end + 1):
                    marked[i] = True
        run: list[Seen] = []
        for event, hit in zip(refusals, marked, strict=True):
            if not hit:
                continue
            if run and event.occurred_at - run[-1].occurred_at > span:
                flags.extend(_burst(run, actor, since, until))
                run = []
            run.append(event)
        flags.extend(_burst(run, actor, since, until))
    return flags


def _burst(run: list[Seen], actor: str, since: datetime, until: datetime) -> list[Flag]:
    if not run or not any(since <= e.occurred_at < until for e in run):
        return []
    subjects = {e.subject_id for e in run} - {None}  # refusals of unknown ids name no resident
    reasons = sorted({reason for e in run if isinstance(reason := e.data.get("reason"), str)})
    return [
        _flag(
            "refusal-burst",
            run,
            principal_id=actor,
            subject_id=next(iter(subjects)) if len(subjects) == 1 else None,
            subjects=len(subjects),
            reasons=reasons,
            minutes=_minutes(run),
        )
    ]


def _minutes(run: list[Seen]) -> float:
    return round((run[-1].occurred_at - run[0].occurred_at).total_seconds() / 60, 2)


def read_volume_flags(events: list[Seen], since: datetime, until: datetime, limits: FlagThresholds) -> list[Flag]:
    """Windows (counted back from ``until``) in which a principal read far more than usual.

    Window k is [until - (k+1)h, until - kh). It fires when its reads are
    above ``volume_factor`` times the average of the
    ``volume_baseline_windows`` windows before it, and those windows hold at
    least ``volume_min_reads`` reads between them: without that much history
    there is no usual volume to compare with (a new grantee). Windows before
    the principal's first read (in the data looked at) are not averaged in.
    """
    width = timedelta(hours=limits.volume_window_hours)
    buckets: dict[str, dict[int, list[Seen]]] = defaultdict(lambda: defaultdict(list))
    for event in events:
        if _is_read_of_another(event) and event.occurred_at < until:
            buckets[event.actor_id][_window_of(until - event.occurred_at, width)].append(event)
    last_window = _window_of(until - since, width)  # the oldest window that reaches into the range
    flags = []
    for actor, windows in buckets.items():
        first = max(windows)  # the oldest window with a read: the windows before it are not "usual zeros"
        for k, reads in windows.items():
            if k > last_window or k == first:
                continue
            baseline = range(k + 1, min(k + limits.volume_baseline_windows, first) + 1)
            history = sum(len(windows.get(j, ())) for j in baseline)
            usual = history / len(baseline)
            if history >= limits.volume_min_reads and len(reads) > limits.volume_factor * usual:
                reads.sort(key=lambda e: e.ledger_index)
                subjects = {e.subject_id for e in reads}
                flags.append(
                    _flag(
                        "read-volume",
                        reads,
                        principal_id=actor,
                        subject_id=next(iter(subjects)) if len(subjects) == 1 else None,
                        window_start=rfc3339(until - (k + 1) * width),
                        window_end=rfc3339(until - k * width),
                        usual=round(usual, 2),
                        factor=limits.volume_factor,
                        subjects=len(subjects),
                    )
                )
    return flags


def _window_of(before_until: timedelta, width: timedelta) -> int:
    """k such that a moment ``before_until`` before ``until`` is in [until - (k+1)w, until - kw)."""
    tick = timedelta(microseconds=1)
    return (before_until // tick - 1) // (width // tick)


def expiry_flags(
    events: list[Seen], since: datetime, until: datetime, grant_ends: dict[str, datetime], limits: FlagThresholds
) -> list[Flag]:
    """Reads under a grant within ``expiry_hours`` of its end; accesses refused as expired."""
    near = timedelta(hours=limits.expiry_hours)
    close, expired = defaultdict(list), defaultdict(list)
    for event in events:
        if not since <= event.occurred_at < until:
            continue
        if event.kind == "access.permitted" and event.data.get("basis") == "grant":
            ends = grant_ends.get(str(event.data.get("grant_id")))
            if ends is not None and ends - event.occurred_at <= near:
                close[(event.actor_id, event.subject_id, event.data["grant_id"])].append(event)
        elif event.kind == "access.refused" and event.data.get("reason") == "expired":
            expired[(event.actor_id, event.subject_id)].append(event)
    flags = [
        _flag(
            "near-expiry",
            found,
            principal_id=actor,
            subject_id=subject,
            grant_id=grant,
            expires_at=rfc3339(grant_ends[grant]),
            hours=limits.expiry_hours,
        )
        for (actor, subject, grant), found in close.items()
    ]
    flags += [
        _flag("after-expiry", found, principal_id=actor, subject_id=subject)
        for (actor, subject), found in expired.items()
    ]
    return flags


def evaluate(
    events: Iterable[Seen],
    *,
    since: datetime,
    until: datetime,
    limits: FlagThresholds,
    acknowledged: set[str],
    grant_ends: dict[str, datetime],
) -> list[Flag]:
    """Every rule over ``events``; flags ordered by time, then rule."""
    events = sorted(events, key=lambda e: e.ledger_index)
    flags = (
        break_glass_flags(events, since, until, acknowledged)
        + refusal_burst_flags(events, since, until, limits)
        + read_volume_flags(events, since, until, limits)
        + expiry_flags(events, since, until, grant_ends, limits)
    )
    return sorted(flags, key=lambda f: (f.first_at, RULES.index(f.rule), f.ledger_indices))


def window(since: datetime | None, until: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    until = until or now
    since = since or until - DEFAULT_RANGE
    if since >= until:
        raise InvalidInput("'from' must be before 'to'.")
    if until - since > MAX_RANGE:
        raise InvalidInput(f"Flags cover at most {MAX_RANGE.days} days at a time.")
    return since, until


def compute(
    session: Session,
    caller: Caller,
    *,
    since: datetime | None,
    until: datetime | None,
    limits: FlagThresholds,
    now: datetime,
    rules: tuple[str, ...] = (),
) -> tuple[datetime, datetime, list[Flag]]:
    """The flags over ``[since, until)`` (default: the last 7 days)."""
    require_compliance(caller)
    for rule in rules:
        if rule not in RULES:
            raise InvalidInput(f"Unknown rule {rule!r}; expected one of: {', '.join(RULES)}.")
    since, until = window(since, until, now)
    # Reach back far enough for the rules that look at what came before the range.
    before = max(
        timedelta(minutes=limits.refusal_minutes),
        timedelta(hours=limits.volume_window_hours) * (limits.volume_baseline_windows + 1),
    )
    rows = session.execute(
        select(Event.ledger_index, Event.occurred_at, Event.kind, Event.actor_id, Event.subject_id, Event.data)
        .where(Event.kind.in_(_KINDS), Event.occurred_at >= since - before, Event.occurred_at < until)
        .order_by(Event.ledger_index)
    )
    events = []
    for index, occurred_at, kind, actor_id, subject_id, data in rows:
        parsed = json.loads(data) if data else None
        if actor_id is None or not isinstance(parsed, dict) or not parsed:
            continue  # erased (data cleared to {}): nothing left to judge
        events.append(
            Seen(
                ledger_index=index,
                occurred_at=occurred_at,
                kind=kind,
                actor_id=actor_id,
                subject_id=subject_id,
                data=parsed,
            )
        )
    grant_ids = {e.data["grant_id"] for e in events if e.kind == "access.permitted" and e.data.get("grant_id")}
    grant_ends: dict[str, datetime] = {}
    for chunk in _chunks(sorted(grant_ids), 500):
        grant_ends.update(
            (gid, ends) for gid, ends in session.execute(select(Grant.id, Grant.expires_at).where(Grant.id.in_(chunk)))
        )
    declarations = {e.data.get("break_glass_id") for e in events if e.kind == "break-glass.declared"} - {None}
    acknowledged: set[str] = set()
    for chunk in _chunks(sorted(declarations), 500):
        acknowledged.update(
            session.scalars(select(BreakGlassReview.break_glass_id).where(BreakGlassReview.break_glass_id.in_(chunk)))
        )
    flags = evaluate(events, since=since, until=until, limits=limits, acknowledged=acknowledged, grant_ends=grant_ends)
    if rules:
        flags = [f for f in flags if f.rule in rules]
    return since, until, flags


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]
