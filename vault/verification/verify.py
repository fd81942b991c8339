"""``civicvault verify``: recompute the ledger from its rows and name the first bad entry.

Checks, streaming the rows in index order (memory does not grow with the
number of entries):

1. indices run 0, 1, 2, ... up to the ledger's size, with no gap, duplicate
   or extra entry;
2. each entry's leaf, recomputed from its stored salt and body, equals the
   stored leaf hash, and its query columns (kind, time, actor, subject, data)
   say what its body says;
3. every stored interior node equals the hash of its two children, checked
   in the same pass as the leaf stream completes it, and no node lies beyond
   the ledger's size;
4. the root recomputed from the leaves equals the root served from the
   stored nodes;
5. every record version and every grant has the event that created it, and
   every event's compliance search columns say what its data says
   (``vault.audit_index``); entries erased with their subject
   (``vault.erasure``) are checked structurally, and against the digest
   their erasure event holds;
6. every signed checkpoint: its signature, a size within the ledger (a
   truncated tail is caught here), and its root equal to the ledger's root
   at that size (so all checkpoints are consistent with each other);
7. every anchored checkpoint, locally and, when a node is configured, on
   chain (``vault.anchoring.check``);
8. given checkpoints held outside the database (``verify
   --against-checkpoint``: a witness's state file or a signed checkpoint
   note), that the ledger is not behind them and extends them
   (``check_against``). Cosignatures live in the database, so a restored
   older backup loses them with the entries they covered; only what a
   witness kept, or the chain, still shows that the log was longer.

The first failure raises ``LedgerIntegrityError`` naming the entry.

On SQLite, checks 2, 3 and 5 run a batch of entries at a time (``_screen``):
SQLite's JSON parser validates the data and Python parses none; whatever the
screening cannot vouch for is checked entry by entry (``_check_event``), the
way every entry is checked on PostgreSQL, so the first fault named is the same.
"""

import hashlib
import itertools
import json
import sqlite3
from bisect import bisect_left
from collections.abc import Callable, Generator, Sequence
from contextlib import ExitStack, closing
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from crypto import checkpoint as notes
from crypto import merkle
from vault.anchoring import check as anchor_check
from vault.core.clock import rfc3339
from vault.core.errors import InvalidInput, LedgerIntegrityError
from vault.ledger import checkpoints, ledger
from vault.rights import erasure
from vault.storage import audit_index
from vault.storage.models import Event

BATCH = 2048  # rows per fetch and per screened batch (a power of two: batches stay aligned with subtrees)


@dataclass(frozen=True)
class Report:
    size: int
    root: str
    nodes: int
    checkpoints: int
    anchors: anchor_check.AnchorReport | None = None
    erased: int = 0  # entries whose payload an erasure destroyed (vault/erasure.py)
    pending: int = 0  # events committed and waiting for the sequencer (docs/ledger-format.md section 10)


def _fail(index: int | None, problem: str) -> LedgerIntegrityError:
    where = f"Ledger entry {index}" if index is not None else "The ledger"
    return LedgerIntegrityError(f"{where}: {problem}")


def _check_columns(index: int, kind, moment: str, actor_id, subject_id, data, body: bytes) -> None:
    """The slow, exact comparison of a body with its columns (parsed JSON on both sides).

    The columns must also be of their types: data stored as a BLOB that holds
    the same JSON is a rewritten row all the same (``TypeError``, which the
    caller names with ``_shape_problem``).
    """
    if not all(isinstance(v, str) for v in (kind, actor_id, data)) or not isinstance(subject_id, (str, type(None))):
        raise TypeError("a column of the wrong type")
    try:
        parsed = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _fail(index, "its stored body is not JSON.") from None
    try:
        columns_data = json.loads(data)
    except (TypeError, json.JSONDecodeError):
        raise _fail(index, "its data column is not JSON.") from None
    expected = {
        "v": ledger.BODY_VERSION,
        "kind": kind,
        "occurred_at": moment,
        "actor_id": actor_id,
        "subject_id": subject_id,
        "data": columns_data,
    }
    if parsed != expected:
        differing = sorted(k for k in set(parsed) | set(expected) if parsed.get(k) != expected.get(k))
        raise _fail(index, f"its columns do not match its body ({', '.join(differing)}).")


_cursors = itertools.count()


_NO_ROW: tuple[Any, Any] = (None, None)  # what a finished stream gives


def _driver_cursor(session: Session, sql: str, params: tuple = ()) -> Any:
    """A driver cursor that has executed ``sql`` in the session's transaction, for its rows to be fetched in batches.

    The verify loop reads every row of the ledger; plain driver tuples cost a
    fraction of SQLAlchemy rows. PostgreSQL gets a server-side (named) cursor
    so that memory stays flat; SQLite's cursor steps through the table as
    rows are fetched. ``?`` in ``sql`` becomes the driver's parameter mark.
    """
    connection = session.connection()
    raw: Any = connection.connection  # the DB-API connection
    if connection.dialect.name == "postgresql":
        cursor = raw.driver_connection.cursor(name=f"civicvault_verify_{next(_cursors)}")
        cursor.itersize = BATCH
        sql = sql.replace("?", "%s")
    else:
        cursor = raw.cursor()
    try:
        cursor.execute(sql, params)
    except BaseException:
        cursor.close()
        raise
    return cursor


def _driver_rows(session: Session, sql: str, params: tuple = ()) -> Generator[tuple[Any, ...], None, None]:
    """Rows of ``sql`` straight from the driver (``_driver_cursor``), one at a time."""
    cursor = _driver_cursor(session, sql, params)
    try:
        while rows := cursor.fetchmany(BATCH):
            yield from rows
    finally:
        cursor.close()


_first = itemgetter(0)


class _Batches:
    """The rows of one ordered query (``_driver_cursor``), fetched ``fetch`` at a time and taken as lists:
    ``n`` rows, or those below a key.

    The verify pass takes a batch of events, then exactly the leaves and the
    search categories of those events from their own streams: a list per
    batch costs a fraction of a generator step per row.
    """

    def __init__(self, session: Session, sql: str, params: tuple = (), *, fetch: int = BATCH) -> None:
        self.cursor = _driver_cursor(session, sql, params)
        self.buffer: list[tuple[Any, ...]] = []
        self.at, self.fetch = 0, fetch

    def _more(self) -> bool:
        if self.at == len(self.buffer):
            self.buffer, self.at = self.cursor.fetchmany(self.fetch), 0
        return bool(self.buffer)

    def take(self, count: int) -> list[tuple[Any, ...]]:
        taken: list[tuple[Any, ...]] = []
        while len(taken) < count and self._more():
            end = min(self.at + count - len(taken), len(self.buffer))
            taken += self.buffer[self.at : end]
            self.at = end
        return taken

    def next(self) -> tuple[Any, ...] | None:
        if not self._more():
            return None
        row = self.buffer[self.at]
        self.at += 1
        return row

    def take_below(self, key: int) -> list[tuple[Any, ...]]:
        """The next rows whose first column is below ``key`` (the query orders by it)."""
        taken: list[tuple[Any, ...]] = []
        while self._more():
            end = bisect_left(self.buffer, key, self.at, key=_first)
            taken += self.buffer[self.at : end]
            self.at = end
            if end < len(self.buffer):
                break
        return taken

    def close(self) -> None:
        self.cursor.close()


def _moment_text(value) -> str:
    """RFC 3339 text of a stored ``occurred_at`` read without type processing.

    SQLite keeps ``YYYY-MM-DD HH:MM:SS.ffffff`` (UTC), which slicing turns
    into the body's form far faster than parsing and formatting a datetime;
    PostgreSQL's driver gives an aware datetime. Anything else is parsed.
    """
    if isinstance(value, str):
        if len(value) == 26 and value[10] == " " and value[19] == ".":
            return f"{value[:10]}T{value[11:23]}Z"
        value = datetime.fromisoformat(value)
    return rfc3339(value if value.tzinfo is not None else value.replace(tzinfo=UTC))


class _Levels:
    """The stored interior nodes of ``[start, end)``: one ordered stream per level (``_Batches``), opened when
    first needed, read a node or a run of nodes at a time."""

    def __init__(self, session: Session, start: int, end: int):
        self.session, self.start, self.end = session, start, end
        self.streams: dict[int, _Batches] = {}

    def stream(self, level: int) -> _Batches:
        if level not in self.streams:
            self.streams[level] = _Batches(
                self.session,
                "SELECT idx, hash FROM ledger_nodes WHERE level = ? AND idx >= ? AND idx < ? ORDER BY idx",
                (level, self.start >> level, self.end >> level),
            )
        return self.streams[level]

    def next(self, level: int) -> tuple[Any, ...] | None:
        return self.stream(level).next()

    def close(self) -> None:
        for stream in self.streams.values():
            stream.close()

    @staticmethod
    def fail(level: int, index: int, row) -> LedgerIntegrityError:
        where = index << level
        if row is None or row[0] != index:
            return _fail(where, f"the node at level {level}, index {index} is missing or misplaced.")
        return _fail(where, f"node (level {level}, index {index}) does not match its children.")


class _NotUtf8:
    """A TEXT value that is not UTF-8 (random bytes cast to TEXT), as read during ``verify``."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw


def _decode_or_mark(raw: bytes) -> "str | _NotUtf8":
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return _NotUtf8(raw)


def _lenient_text(session: Session) -> Callable[[], None]:
    """On SQLite, read TEXT that is not UTF-8 as a value ``_shape_problem`` names, instead of failing the fetch.

    The driver decodes TEXT itself and raises on bad UTF-8 before any row reaches
    us, which would leave the bad entry unnamed. Returns what restores the setting.
    """
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return lambda: None
    driver: Any = connection.connection.driver_connection
    previous = driver.text_factory
    driver.text_factory = _decode_or_mark

    def restore() -> None:
        driver.text_factory = previous

    return restore


# What a row whose columns hold the wrong types or shapes raises on the way through the checks;
# RecursionError: data nested deeper than json.loads can follow.
_SHAPE_ERRORS = (TypeError, ValueError, AttributeError, KeyError, IndexError, OverflowError, RecursionError)
_SQL_TYPES = {
    str: "TEXT",
    int: "INTEGER",
    float: "REAL",
    type(None): "NULL",
    bytes: "BLOB",
    memoryview: "BLOB",
    _NotUtf8: "TEXT that is not UTF-8",
}
# What each column of an event row must hold (``None`` allowed where listed), for _shape_problem.
_EXPECTED: tuple[tuple[str, tuple[type, ...]], ...] = (
    ("ledger_index", (int,)),
    ("kind", (str,)),
    ("occurred_at", (str, datetime)),
    ("actor_id", (str,)),
    ("subject_id", (str, type(None))),
    ("data", (str,)),
    ("salt", (bytes, memoryview)),
    ("body", (bytes, memoryview)),
    ("outcome", (str, type(None))),
    ("purpose", (str, type(None))),
    ("erased_by", (int, type(None))),
    ("leaf_hash", (bytes, memoryview)),
)


def _as_bytes(value) -> bytes | None:
    """A binary column's value as bytes; None when it is not binary at all (TEXT, INTEGER, REAL, NULL)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return None


def _shape_problem(row: tuple, *, stored_leaf) -> str:
    """Say which column of a tampered row holds what it should not."""
    wrong = [
        f"{name} is {_SQL_TYPES.get(type(value), type(value).__name__)}"
        for (name, allowed), value in zip(_EXPECTED, row, strict=True)
        if not isinstance(value, allowed)
    ]
    if stored_leaf is None:
        wrong.append("its stored leaf hash is not BLOB")
    if wrong:
        return f"its stored row has the wrong types ({', '.join(wrong)})."
    return "its stored row cannot be read as an event (a column holds a value of the wrong shape)."


_ENTRY_PREFIX, _LEAF_PREFIX = ledger.ENTRY_DOMAIN + b"\x00", bytes([0, ledger.ENTRY_VERSION])
_VERSION = ledger.BODY_VERSION
_quote = json.encoder.encode_basestring  # what ledger.body_from_columns quotes strings with


def _check_entry(index: int, kind, occurred_at, actor_id, subject_id, data, salt, body, stored) -> bytes:
    """An entry's leaf, recomputed from its salt and body (``ledger.leaf_hash_of``, inlined), checked
    against the stored leaf; and its query columns against its body. Returns the leaf."""
    sha256 = hashlib.sha256
    leaf = sha256(_LEAF_PREFIX + sha256(_ENTRY_PREFIX + salt + body).digest()).digest()
    if leaf != stored:
        raise _fail(index, f"its event does not match its leaf: recomputed {leaf.hex()}, stored {bytes(stored).hex()}.")
    if type(occurred_at) is str and len(occurred_at) == 26 and occurred_at[10] == " ":
        moment = f"{occurred_at[:10]}T{occurred_at[11:23]}Z"  # SQLite's text, as _moment_text does it
    else:
        moment = _moment_text(occurred_at)
    if body != ledger.body_from_columns(
        kind=kind, occurred_at=moment, actor_id=actor_id, subject_id=subject_id, data_json=data
    ):
        _check_columns(index, kind, moment, actor_id, subject_id, data, bytes(body))
    return leaf


@dataclass(frozen=True)
class _Range:
    """What one pass over the entries ``[start, end)`` found: its peaks ``(level, hash)``, largest first."""

    peaks: list[tuple[int, bytes]]
    checked: int  # interior nodes compared with the stored ones


def _check_event(session: Session, row: tuple, stored, named: list, *, size: int) -> bytes:
    """One entry checked exactly, column by column, as ``civicvault verify`` always has: its leaf from its salt
    and body against the stored leaf, its query columns against its body, its search columns and categories
    against its data, or, erased, its structure (``vault.erasure``). Returns the leaf; raises naming the entry.

    ``row`` is the event's columns as ``_EVENT_COLUMNS`` lists them; ``stored`` the leaf in the tree.
    """
    event_row = row[:12]
    index, kind, occurred_at, actor_id, subject_id, data, salt, body, outcome, purpose, erased_by, named_leaf = (
        event_row
    )
    # Rows written by someone with a database shell can hold any type in any column (SQLite keeps
    # what it is given: a body rewritten as TEXT stays TEXT). Such a row is a bad entry like any
    # other, named, never a crash (_shape_problem says which column holds what).
    if type(salt) is not bytes or type(body) is not bytes or type(stored) is not bytes:
        salt, body, stored = _as_bytes(salt), _as_bytes(body), _as_bytes(stored)
        if salt is None or body is None or stored is None:
            raise _fail(index, _shape_problem(event_row, stored_leaf=stored))
    if named_leaf != stored:  # the name a receipt resolves by (GET /ledger/entries/{leaf_hash})
        if _as_bytes(named_leaf) is None:
            raise _fail(index, _shape_problem(event_row, stored_leaf=stored))
        if _as_bytes(named_leaf) != stored:
            raise _fail(index, "its leaf_hash column differs from its leaf in the tree.")
    try:
        if erased_by is not None:  # the payload was destroyed with its subject: structure only (erasure.py)
            if type(erased_by) is not int:
                raise TypeError(erased_by)
            erasure.check_erased_entry(session.get_one(Event, index), stored, size=size)
            if named:
                raise _fail(index, "it is erased but still has search categories.")
            return stored
        leaf = _check_entry(index, kind, occurred_at, actor_id, subject_id, data, salt, body, stored)
        fields = json.loads(data)
        if outcome != audit_index.outcome_of(kind) or purpose != audit_index.purpose_of(fields):
            raise _fail(index, "its search columns (outcome, purpose) do not match its data.")
        if tuple(named) != audit_index.categories_of(fields):
            raise _fail(index, "its search categories do not match its data.")
        return leaf
    except _SHAPE_ERRORS:
        raise _fail(index, _shape_problem(event_row, stored_leaf=stored)) from None


class _Tree:
    """The Merkle tree over the leaves of ``[start, end)`` as they come, in index order: each perfect subtree
    a leaf completes, up to level ``top``, is hashed once and compared with its stored node as it completes.
    ``prefix``: the peaks ``(level, hash)`` of the entries before ``start``, largest first."""

    def __init__(self, session: Session, start: int, end: int, *, top: int, prefix: Sequence[tuple[int, bytes]]):
        self.levels = _Levels(session, start, end)
        self.peaks: list[bytes] = [node for _, node in prefix]
        self.heights: list[int] = [level for level, _ in prefix]
        self.top, self.checked = top, 0

    def add(self, first: int, leaves: Sequence[bytes]) -> None:
        """The leaves of entries ``first, first + 1, ...``, one by one: the nodes each completes, checked."""
        for position, leaf in enumerate(leaves, first):
            self.merge(leaf, 0, position)

    def merge(self, node: bytes, level: int, position: int) -> None:
        """The perfect subtree ``node`` (at ``level``, ``position``) onto the peaks: the nodes it completes."""
        peaks, heights, top, next_node, sha256 = self.peaks, self.heights, self.top, self.levels.next, hashlib.sha256
        while position & 1 and level < top:
            node = sha256(b"\x01" + peaks.pop() + node).digest()
            heights.pop()
            level += 1
            position >>= 1
            row = next_node(level)
            if row is None or row[0] != position or row[1] != node:
                raise self.levels.fail(level, position, row)
            self.checked += 1
        peaks.append(node)
        heights.append(level)

    def add_aligned(self, first: int, leaves: list[bytes]) -> None:
        """``add`` for a whole aligned batch (``len(leaves)`` a power of two dividing ``first``), a level at a
        time: each level's nodes hashed in one comprehension and compared with a run of stored nodes; the first
        fault named is the one ``add`` would have met first."""
        nodes, level, top, sha256 = leaves, 0, self.top, hashlib.sha256
        faults = []
        while len(nodes) > 1 and level < top:
            level += 1
            nodes = [
                sha256(b"\x01" + left + right).digest() for left, right in zip(nodes[::2], nodes[1::2], strict=True)
            ]
            base = first >> level
            stored = self.levels.stream(level).take(len(nodes))
            if [row[1] for row in stored] != nodes or [row[0] for row in stored] != list(
                range(base, base + len(nodes))
            ):
                at = next(i for i, node in enumerate(nodes) if i >= len(stored) or stored[i] != (base + i, node))
                faults.append((((at + 1) << level) - 1, level, base + at, stored[at] if at < len(stored) else None))
            self.checked += len(nodes)
        if faults:  # add checks the nodes an entry completes before the next entry's: the earliest entry's first
            _, level, index, row = min(faults)
            raise self.levels.fail(level, index, row)
        if len(nodes) > 1:  # top is below the batch: each of its subtrees is a peak
            self.peaks.extend(nodes)
            self.heights.extend([level] * len(nodes))
        else:
            self.merge(nodes[0], level, first >> level)

    def result(self) -> _Range:
        return _Range(peaks=list(zip(self.heights, self.peaks, strict=True)), checked=self.checked)


# The columns of an event as verify reads them; a pass that screens (``_screen``) adds ``_SEARCH_SIGNATURE``.
_EVENT_COLUMNS = (
    "ledger_index, kind, occurred_at, actor_id, subject_id, data, salt, body, outcome, purpose, erased_by, leaf_hash"
)
# SQLite's own JSON parser, in C, validates each event's data and takes out what the search columns derive from:
# the top-level purpose, category and categories, as one JSON array; NULL where the data is not a JSON object.
_SEARCH_SIGNATURE = (
    "CASE WHEN typeof(data) = 'text' AND json_valid(data) AND json_type(data) = 'object' "
    "THEN json_extract(data, '$.purpose', '$.category', '$.categories') END"
)
# What SQLite's JSON functions must answer for the screening to be sound (``_json_agrees``): RFC 8259 strictly
# (no JSON5, no NaN, no raw control characters) and one array for several paths.
_JSON_PROBE = (
    "SELECT json_valid('{\"a\":1}'), json_valid('{a:1}'), json_valid('[1,]'), json_valid('{\"a\":NaN}'), "
    "json_valid('\"' || char(9) || '\"'), json_extract('{\"p\":\"x\",\"c\":[1,\"y\"]}', '$.p', '$.q', '$.c')"
)
_JSON_ANSWERS = (1, 0, 0, 0, 0, '["x",null,[1,"y"]]')
# How the search keys are written in data without a backslash: "purpose", and "category" or "categories".
_SEARCH_KEYS = ('"purpose"', '"categor')
# Data with more opening brackets is checked by json.loads, which cannot follow nesting as deep as SQLite's
# parser (its recursion limit): each level of nesting opens one.
_MAX_SCREENED_NESTING = 200


def _json_agrees(session: Session) -> bool:
    """Does this SQLite parse JSON as ``_screen`` assumes (``_JSON_PROBE``)? Without JSON functions it does not."""
    try:
        return tuple(session.connection().exec_driver_sql(_JSON_PROBE).one()) == _JSON_ANSWERS
    except Exception:  # no JSON functions, or another SQLite: verify entry by entry
        return False


class _SearchColumns(dict):
    """Signature (``_SEARCH_SIGNATURE``) -> (purpose, categories, non-null keys): what ``vault.audit_index``
    derives from data holding those top-level values, and how many of the three keys the data holds with a
    non-null value. Few signatures recur (purposes x categories), so each is derived once, by the same
    functions ``emit`` uses."""

    LIMIT = 4096

    def __missing__(self, signature: Any) -> tuple[str | None, tuple[str, ...], int] | None:
        if type(signature) is not str:
            return None
        try:
            values = json.loads(signature)
        except ValueError:
            return None
        if type(values) is not list or len(values) != 3:
            return None
        fields = dict(zip(("purpose", "category", "categories"), values, strict=True))
        derived = (
            audit_index.purpose_of(fields),
            audit_index.categories_of(fields),
            sum(value is not None for value in values),
        )
        if len(self) >= self.LIMIT:
            self.clear()
        self[signature] = derived
        return derived


def _plain(data: str, keys: int) -> bool:
    """Can SQLite's reading of ``data`` stand for Python's? No backslash (no escaped key), no NUL (where
    SQLite's parser stops), too few brackets to nest deeper than ``json.loads`` can follow, and each of
    the search keys written no more often than it has a top-level value (``keys`` of them: a key with
    a value is written at least once): SQLite takes the first of duplicate keys, Python the last."""
    return (
        "\\" not in data
        and "\x00" not in data
        and data.count("{") + data.count("[") <= _MAX_SCREENED_NESTING
        and sum(data.count(key) for key in _SEARCH_KEYS) == keys
    )


def _screen(rows: list, stored: list, named: list, start: int, search: _SearchColumns) -> tuple[list, list] | None:
    """Check a batch of events at once, without Python parsing JSON: their leaves, and the entries that
    need the exact check (``_check_event``), by offset. ``None``: the whole batch goes entry by entry
    (an entry or leaf missing or out of place, or a column of a type the comprehensions cannot take).

    An entry passes when all of these hold, which together imply that ``_check_event`` would pass it:
    its leaf, recomputed from salt and body, equals the stored leaf and its leaf_hash column; it is
    not erased; its body equals the canonical body of its columns byte for byte (``body_from_columns``,
    inlined, with ``occurred_at`` in SQLite's form, 26 characters with a space at 10); its data is a
    JSON object by SQLite's strict parser (``_SEARCH_SIGNATURE``, ``_json_agrees``) and plain
    (``_plain``: where SQLite's and Python's readings could differ, neither is taken); its outcome,
    purpose and categories are those ``vault.audit_index`` derives from the top-level values SQLite
    took out (``_SearchColumns``). Its body then parses to exactly its columns: its data is JSON, and
    the other values are quoted by ``json``'s own encoder.
    """
    count = len(rows)
    span = list(range(start, start + count))
    sha256, q, outcome_of = hashlib.sha256, _quote, audit_index.OUTCOME_BY_KIND.get
    try:
        if len(stored) != count or [row[0] for row in rows] != span or [row[0] for row in stored] != span:
            return None
        leaves = [sha256(_LEAF_PREFIX + sha256(_ENTRY_PREFIX + row[6] + row[7]).digest()).digest() for row in rows]
        found = [search[row[12]] for row in rows]
        passed = [
            derived is not None
            and leaf == stored_leaf == named_leaf
            and erased_by is None
            and outcome == outcome_of(kind)
            and purpose == derived[0]
            and len(moment) == 26
            and moment[10] == " "
            and body
            == f'{{"actor_id":{q(actor)},"data":{data},"kind":{q(kind)},"occurred_at":"{moment[:10]}T{moment[11:23]}Z",'
            f'"subject_id":{"null" if subject is None else q(subject)},"v":{_VERSION}}}'.encode()
            for (_, kind, moment, actor, subject, data, _, body, outcome, purpose, erased_by, named_leaf, _), leaf, (
                _,
                stored_leaf,
            ), derived in zip(rows, leaves, stored, found, strict=True)
        ]
    except _SHAPE_ERRORS:
        return None
    if all(passed):
        wanted = [(index, category) for index, derived in zip(span, found, strict=True) for category in derived[1]]
        joined = "".join([row[5] for row in rows])
        # _plain for all at once: a search key cannot span two JSON objects, and each object opens a bracket,
        # so the counts over the batch bound (nesting) or match (keys) each entry's only if each entry's do.
        if (
            named == wanted
            and "\\" not in joined
            and "\x00" not in joined
            and joined.count("{") + joined.count("[") <= count - 1 + _MAX_SCREENED_NESTING
            and sum(joined.count(key) for key in _SEARCH_KEYS) == sum([derived[2] for derived in found])
        ):
            return leaves, []
    by_index = _categories_by_index(named)
    if not by_index.keys() <= set(span):  # a category stored for no entry of the batch: _check_rows names it
        return None
    return leaves, _suspects(rows, by_index, start, found, passed)


def _categories_by_index(named: list) -> dict[Any, list[str]]:
    by_index: dict[Any, list[str]] = {}
    for index, category in named:
        by_index.setdefault(index, []).append(category)
    return by_index


def _suspects(rows: list, by_index: dict, start: int, found: list, passed: list) -> list[int]:
    """The offsets of the entries of a screened batch that need the exact check, looked at one by one."""
    return [
        offset
        for offset, (row, derived, ok) in enumerate(zip(rows, found, passed, strict=True))
        if not ok or tuple(by_index.get(start + offset, ())) != derived[1] or not _plain(row[5], derived[2])
    ]


def _check_rows(session: Session, rows: list, stored: list, named: list, start: int, tree: _Tree, *, size: int):
    """A batch entry by entry, in index order, each checked exactly (``_check_event``) before the nodes it
    completes: the first fault found is the first in the ledger."""
    leaf_rows, categories = iter(stored), iter(named)
    category = next(categories, None)
    expected = start
    for row in rows:
        index = row[0]
        if index != expected:
            raise _fail(expected, f"is missing (the next stored entry is {index}).")
        leaf_index, stored_leaf = next(leaf_rows, _NO_ROW)
        if leaf_index != expected:
            raise _fail(expected, "has no stored leaf hash.")
        names = []
        while category is not None and category[0] <= index:
            if category[0] < index:
                raise _fail(category[0], "a search category is stored for an event that does not exist.")
            names.append(category[1])
            category = next(categories, None)
        tree.merge(_check_event(session, row, stored_leaf, names, size=size), 0, expected)
        expected += 1


def _check_screened(
    session: Session, rows: list, stored: list, named: list, start: int, tree: _Tree, screened: tuple, *, size: int
) -> None:
    """A screened batch into the tree; its suspects checked exactly, each in its place among the others."""
    leaves, suspects = screened
    if not suspects and len(leaves) == BATCH and start % BATCH == 0:
        tree.add_aligned(start, leaves)
        return
    by_index = _categories_by_index(named) if suspects else {}
    done = 0
    for offset in suspects:
        tree.add(start + done, leaves[done:offset])
        leaf = _check_event(session, rows[offset], stored[offset][1], by_index.get(start + offset, []), size=size)
        tree.add(start + offset, (leaf,))
        done = offset + 1
    tree.add(start + done, leaves[done:])


def _pass(
    session: Session,
    start: int,
    end: int,
    *,
    size: int,
    top: int,
    prefix: Sequence[tuple[int, bytes]],
    progress: Callable[[int], None],
    screen: bool,
) -> _Range:
    """One pass over ``[start, end)`` in batches: events, their leaves and categories read side by side;
    each batch screened (``_screen``) or, without screening, checked entry by entry (``_check_rows``)."""
    signature = _SEARCH_SIGNATURE if screen else "NULL"
    with ExitStack() as opened:  # every cursor closed, however the pass ends
        events = opened.enter_context(
            closing(
                _Batches(
                    session,
                    f"SELECT {_EVENT_COLUMNS}, {signature} FROM events WHERE ledger_index >= ? AND ledger_index < ? "
                    "ORDER BY ledger_index",
                    (start, end),
                )
            )
        )
        leaves = opened.enter_context(
            closing(
                _Batches(
                    session,
                    "SELECT idx, hash FROM ledger_nodes WHERE level = 0 AND idx >= ? AND idx < ? ORDER BY idx",
                    (start, end),
                )
            )
        )
        # The categories (outside the read floor) are fetched eight batches at a time: in long runs between the
        # other streams, verify of 10^6 entries took about a tenth less (measured), for a few MB more.
        categories = opened.enter_context(
            closing(
                _Batches(
                    session,
                    "SELECT ledger_index, category FROM event_categories WHERE ledger_index >= ? AND ledger_index < ? "
                    "ORDER BY ledger_index, category",
                    (start, end),
                    fetch=8 * BATCH,
                )
            )
        )
        tree = _Tree(session, start, end, top=top, prefix=prefix)
        opened.enter_context(closing(tree.levels))
        search = _SearchColumns()
        expected = start
        while rows := events.take(BATCH - expected % BATCH):  # batches aligned with subtrees after the first
            count = len(rows)
            stored, named = leaves.take(count), categories.take_below(expected + count)
            screened = _screen(rows, stored, named, expected, search) if screen else None
            if screened is None:
                _check_rows(session, rows, stored, named, expected, tree, size=size)
            else:
                _check_screened(session, rows, stored, named, expected, tree, screened, size=size)
            expected += count
            progress(count)
        if expected != end:
            raise _fail(
                expected,
                f"is missing: the ledger's size is {end} but only {expected} entries are stored."
                if top == 64
                else "is missing.",
            )
        orphan = categories.take(1)
        if orphan:
            raise _fail(orphan[0][0], "a search category is stored for an event that does not exist.")
    return tree.result()


def _check_range(
    session: Session,
    start: int,
    end: int,
    *,
    size: int,
    top: int = 64,
    prefix: Sequence[tuple[int, bytes]] = (),
    progress: Callable[[int], None] = lambda n: None,
) -> _Range:
    """One pass over the entries ``[start, end)`` in index order: leaves, columns and interior nodes.

    Each entry's leaf is recomputed from its salt and body and compared with
    the stored leaf; the perfect subtrees it completes, up to level ``top``,
    are hashed once and compared with the stored interior nodes as they
    complete (``_Tree``). The query columns must say what the body says, and
    the compliance search columns what the data says (``vault.audit_index``);
    an entry erased with its subject is checked structurally
    (``vault.erasure``). Exactly (``_check_event``), or, on SQLite, screened
    a batch at a time (``_screen``), which sends every entry it cannot vouch
    for to the exact check. ``start`` must be a multiple of ``2^top`` (0 for
    the whole ledger), or ``prefix`` the peaks ``(level, hash)`` of the
    entries before ``start``, largest first (an incremental verify,
    ``vault.verification.incremental``): the entries then complete the nodes
    above them with those peaks.

    SQLite's driver decodes TEXT as UTF-8 and refuses a row that is not; the
    pass then starts again reading such text as a value the exact check names
    (``_lenient_text``), without screening.
    """
    kwargs: dict[str, Any] = {"size": size, "top": top, "prefix": prefix}
    if session.connection().dialect.name != "sqlite":
        return _pass(session, start, end, progress=progress, screen=False, **kwargs)
    reported = 0

    def counted(count: int) -> None:
        nonlocal reported
        reported += count
        progress(count)

    try:
        return _pass(session, start, end, progress=counted, screen=_json_agrees(session), **kwargs)
    except sqlite3.OperationalError as exc:
        if "decode" not in str(exc):
            raise
    restore_text = _lenient_text(session)

    def again(count: int) -> None:  # what the first pass reported is not reported twice
        nonlocal reported
        skip = min(reported, count)
        reported -= skip
        if count > skip:
            progress(count - skip)

    try:
        return _pass(session, start, end, progress=again, screen=False, **kwargs)
    finally:
        restore_text()


def _check_nothing_beyond(session: Session, size: int, checked: int) -> None:
    """No event, leaf or interior node is stored that a ledger of ``size`` entries does not have.

    One statement on the driver: at ten thousand entries, compiling three ORM
    statements cost a tenth of the whole verify.
    """
    event, leaf, stored = next(
        _driver_rows(
            session,
            "SELECT (SELECT ledger_index FROM events WHERE ledger_index >= ? ORDER BY ledger_index LIMIT 1), "
            "(SELECT idx FROM ledger_nodes WHERE level = 0 AND idx >= ? ORDER BY idx LIMIT 1), "
            "(SELECT count(*) FROM ledger_nodes WHERE level > 0)",
            (size, size),
        )
    )
    if event is not None:
        raise _fail(event, f"lies beyond the ledger's size, {size}.")
    if leaf is not None:
        raise _fail(leaf, f"a leaf is stored at index {leaf}, beyond the ledger's size, {size}.")
    if stored != checked:
        raise _fail(
            size, f"{stored - checked} interior node(s) are stored that a ledger of {size} entries does not have."
        )


def _fold(peaks: list[bytes]) -> bytes:
    root = peaks[-1] if peaks else merkle.EMPTY_ROOT
    for left in reversed(peaks[:-1]):
        root = merkle.node_hash(left, root)
    return root


# --- Parallel verification -------------------------------------------------------
#
# The ledger splits into aligned chunks of 2^CHUNK_LEVEL entries; each worker
# process checks whole chunks (_check_range with top=CHUNK_LEVEL) and returns
# the chunk's hash, and this process merges the chunks' hashes as the single
# pass merges leaves, checking the few stored nodes above the chunks. Results
# are taken in chunk order, so the first bad entry is still the one named.

MIN_CHUNK_LEVEL = 16
PARALLEL_MIN_SIZE = 2 << MIN_CHUNK_LEVEL
_worker_sessions = None


def _chunk_level(size: int, workers: int) -> int:
    """Chunks of at least 2^16 entries, about four per worker, for even load."""
    return max(MIN_CHUNK_LEVEL, (max(size // (4 * workers), 1)).bit_length() - 1)


def _verify_chunk(task: tuple[str, int, int, int, int]):
    global _worker_sessions
    url, start, end, top, size = task
    if _worker_sessions is None:
        from vault.storage.db import READ_ONLY, make_engine, make_sessions

        _worker_sessions = make_sessions(make_engine(url).execution_options(**{READ_ONLY: True}))
    try:
        with _worker_sessions.begin() as session:
            return _check_range(session, start, end, top=top, size=size)
    except LedgerIntegrityError as exc:
        return exc.detail  # exceptions with our constructor do not cross processes; their message does


def _parallel_peaks(
    session: Session, size: int, workers: int, progress: Callable[[int], None]
) -> tuple[list[bytes], int]:
    import multiprocessing

    level = _chunk_level(size, workers)
    width = 1 << level
    url = cast(Engine, session.get_bind()).url.render_as_string(hide_password=False)
    tasks = [(url, start, min(start + width, size), level, size) for start in range(0, size, width)]
    stored = ledger.StoredNodes(session)
    stack: list[tuple[int, bytes]] = []
    checked = 0
    # "spawn": a forked child must not inherit this process's open database connections.
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        for (_, start, end, _, _), result in zip(tasks, pool.imap(_verify_chunk, tasks), strict=True):
            if isinstance(result, str):
                raise LedgerIntegrityError(result)
            checked += result.checked
            progress(end - start)
            if end - start < width:  # the last, partial chunk completes nothing above it
                stack.extend(result.peaks)
                continue
            (_, node), position, height = result.peaks[0], start >> level, level
            while position & 1:
                node = merkle.node_hash(stack.pop()[1], node)
                height, position = height + 1, position >> 1
                if stored.get(height, position) != node:
                    raise _Levels.fail(height, position, (position, None))
                checked += 1
            stack.append((height, node))
    return [node for _, node in stack], checked


def _can_fork_readers(session: Session) -> bool:
    url = cast(Engine, session.get_bind()).url
    return not (url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"))


_LINKED_KINDS = ("record.created", "record.version-added", "consent.granted")


def _check_pending(session: Session, *, now: datetime, bound_seconds: float | None) -> int:
    """The sequencer's queue (docs/ledger-format.md section 10): each pending event is what its leaf hash
    commits to, its columns say what its body says, it is not also sequenced, and (with a bound) it has
    not waited longer than the bound. Returns how many are pending."""
    count = 0
    rows = _driver_rows(
        session,
        "SELECT id, kind, occurred_at, actor_id, subject_id, data, salt, body, outcome, purpose, categories, "
        "leaf_hash, queued_at, EXISTS (SELECT 1 FROM events WHERE events.leaf_hash = ledger_pending.leaf_hash) "
        "FROM ledger_pending ORDER BY id",  # one statement: one snapshot, also under a concurrent sequencer
    )
    try:
        for row in rows:
            queue_id, kind, occurred_at, actor_id, subject_id, data, salt, body, outcome, purpose = row[:10]
            named, leaf, queued, also_sequenced = row[10:]
            where = f"Pending event {queue_id}"
            try:
                salt, body, leaf = _as_bytes(salt), _as_bytes(body), _as_bytes(leaf)
                if salt is None or body is None or leaf is None:
                    raise TypeError("a binary column is not binary")
                try:
                    _check_entry(-1, kind, occurred_at, actor_id, subject_id, data, salt, body, leaf)
                except LedgerIntegrityError as exc:
                    raise LedgerIntegrityError(str(exc).replace("Ledger entry -1", where)) from None
                fields = json.loads(data)
                if outcome != audit_index.outcome_of(kind) or purpose != audit_index.purpose_of(fields):
                    raise LedgerIntegrityError(f"{where}: its search columns (outcome, purpose) do not match its data.")
                if tuple(str(named).split()) != audit_index.categories_of(fields):
                    raise LedgerIntegrityError(f"{where}: its search categories do not match its data.")
                waited = (now - _aware(queued)).total_seconds()
            except _SHAPE_ERRORS:
                raise LedgerIntegrityError(f"{where}: its stored row cannot be read as an event.") from None
            if also_sequenced:
                raise LedgerIntegrityError(f"{where}: its leaf hash is also a sequenced entry's.")
            if bound_seconds is not None and waited > bound_seconds:
                raise LedgerIntegrityError(
                    f"{where}: it has waited {waited:.0f} s for the sequencer, longer than the bound of "
                    f"{bound_seconds:.0f} s (CIVICVAULT_LEDGER_PENDING_BOUND): is the sequencer running?"
                )
            count += 1
    finally:
        rows.close()
    return count


def _aware(value: Any) -> datetime:
    """A stored time as an aware UTC datetime (SQLite's driver gives text, PostgreSQL's a datetime)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _linked_rows(session: Session):
    """(where, kind, data) of every event that made a record version or a grant: pending, then sequenced.

    In that order, an event that a concurrent sequencer moves between the two
    statements is seen twice rather than not at all. On the driver, as the
    rest of verify reads.
    """
    kinds = ", ".join(f"'{kind}'" for kind in _LINKED_KINDS)
    for queue_id, kind, data in _driver_rows(
        session, f"SELECT id, kind, data FROM ledger_pending WHERE kind IN ({kinds})"
    ):
        yield f"pending {queue_id}", kind, data
    # Erased events are left out here rather than in SQL: with ``erased_by IS NULL`` beside the kinds, SQLite
    # walks the erased_by index over nearly every event instead of the kind index over these few.
    for index, kind, data, erased_by in _driver_rows(
        session, f"SELECT ledger_index, kind, data, erased_by FROM events WHERE kind IN ({kinds})"
    ):
        if erased_by is None:
            yield index, kind, data


def _check_links(session: Session) -> None:
    """Every record version and grant has the event that made it, sequenced or pending.

    A version's issuer key is the one its write event names (none for a
    self-asserted version), so a row that gains or loses an issuer's signature
    after it was written is found (docs/attestations.md).
    """
    written: dict[tuple[str, int], str | None] = {}
    granted = set()
    for where, kind, data in _linked_rows(session):
        fields = json.loads(data)
        wanted = ("grant_id",) if kind == "consent.granted" else ("record_id", "version")
        if not isinstance(fields, dict) or any(name not in fields for name in wanted):
            if isinstance(where, str):
                raise LedgerIntegrityError(
                    f"Pending event {where[8:]}: its {kind} event does not name its {' and '.join(wanted)}."
                )
            raise _fail(where, f"its {kind} event does not name its {' and '.join(wanted)}.")
        if kind == "consent.granted":
            granted.add(fields["grant_id"])
        else:
            written[(fields["record_id"], fields["version"])] = fields.get("issuer_key_id")
    for record_id, version, issuer_key_id in _driver_rows(
        session, "SELECT record_id, version, issuer_key_id FROM record_versions"
    ):
        if (record_id, version) not in written:
            raise _fail(None, f"record {record_id} version {version} has no record event in the ledger.")
        if written[(record_id, version)] != issuer_key_id:
            raise _fail(
                None,
                f"record {record_id} version {version} names another issuer key than its record event in the ledger.",
            )
    for (grant_id,) in _driver_rows(session, "SELECT id FROM grants"):
        if grant_id not in granted:
            raise _fail(None, f"grant {grant_id} has no consent.granted event in the ledger.")


def verify(
    session: Session,
    *,
    public_key: bytes | None = None,
    progress: Callable[[int], None] = lambda n: None,
    workers: int = 1,
    anchors: anchor_check.AnchorCheck | None = None,
    pending_bound: float | None = None,
) -> Report:
    """Check the whole ledger; raise ``LedgerIntegrityError`` at the first fault.

    The pending events are checked too (``_check_pending``); with
    ``pending_bound`` (seconds), one that has waited longer is a fault.

    With the node's ``public_key``, every signed checkpoint is checked too.
    With ``workers > 1`` and a ledger of at least ``PARALLEL_MIN_SIZE``
    entries in a database file or server, the entries are checked by that
    many processes (each with its own connection and constant memory).
    """
    size = ledger.size(session)
    if workers > 1 and size >= PARALLEL_MIN_SIZE and _can_fork_readers(session):
        peaks, nodes = _parallel_peaks(session, size, workers, progress)
    else:
        checked = _check_range(session, 0, size, size=size, progress=progress)
        peaks, nodes = [node for _, node in checked.peaks], checked.checked
    _check_nothing_beyond(session, size, nodes)
    root = _fold(peaks)
    served = ledger.root(session, size)
    if served != root:
        raise _fail(
            None, f"the root served from stored nodes ({served.hex()}) differs from the recomputed root ({root.hex()})."
        )
    try:
        pending = _check_pending(session, now=datetime.now(UTC), bound_seconds=pending_bound)
        _check_links(session)
        erased = erasure.check_erasures(session)
    except _SHAPE_ERRORS as exc:  # rows already checked one by one; this is a last guard against a crash
        raise _fail(None, f"a stored event cannot be read ({type(exc).__name__}).") from None
    signed = checkpoints.verify_all(session, public_key=public_key, ledger_size=size) if public_key is not None else 0
    anchored = anchor_check.verify_anchors(session, ledger_size=size, **vars(anchors or anchor_check.AnchorCheck()))
    return Report(
        size=size, root=root.hex(), nodes=nodes, checkpoints=signed, anchors=anchored, erased=erased, pending=pending
    )


# -- checkpoints held outside the database ---------------------------------


@dataclass(frozen=True)
class HeldCheckpoint:
    """A tree size and root someone outside the database holds: a witness's state, or a signed note."""

    size: int
    root: bytes
    source: str  # what it is, for messages: "the witness state in FILE", "the checkpoint signed in FILE"


def held_checkpoint(text: str, *, public_key: bytes, name: str) -> HeldCheckpoint:
    """Read a witness's ``state.json`` (``{"tree_size", "root_hash"}``) or a checkpoint note signed by this log.

    A note must carry the log's valid signature (``public_key``), whoever
    cosigned it; a witness state file is the witness's own record, which the
    operator fetched from the witness. Anything else is ``InvalidInput``.
    """
    if text.lstrip().startswith("{"):
        try:
            state = json.loads(text)
            size, root = state["tree_size"], bytes.fromhex(state["root_hash"])
        except (ValueError, KeyError, TypeError):
            raise InvalidInput(f"{name} is not a witness state file (tree_size, root_hash).") from None
        if type(size) is not int or size < 0 or len(root) != 32:
            raise InvalidInput(f"{name} is not a witness state file (tree_size, root_hash).")
        return HeldCheckpoint(size=size, root=root, source=f"the witness state in {name}")
    try:
        checkpoint, _signatures = notes.verify_note(text, public_key=public_key, accept_legacy_key_id=True)
    except notes.CheckpointError as exc:
        raise InvalidInput(f"{name} is not a checkpoint signed by this vault's ledger key ({exc}).") from None
    return HeldCheckpoint(size=checkpoint.size, root=checkpoint.root, source=f"the checkpoint signed in {name}")


def check_against(session: Session, held: HeldCheckpoint, *, size: int) -> None:
    """The (verified) ledger of ``size`` entries reaches ``held`` and has its root there; raises otherwise.

    Shorter: the ledger is *behind* a checkpoint a witness cosigned or that
    was anchored, which is what restoring a database backup older than that
    checkpoint does (the entries after the backup are gone, and so are the
    cosignature rows that covered them). Same size or longer with another
    root: this ledger does not extend that checkpoint (a fork or a rewrite).
    """
    if held.size > size:
        raise LedgerIntegrityError(
            f"The ledger is behind {held.source}: it holds {size} entries, that checkpoint {held.size}; entries "
            f"{size} to {held.size - 1} are missing (a database backup older than the checkpoint was restored, or "
            'the ledger was cut). Record the incident (docs/operations.md, "Restoring").'
        )
    actual = ledger.root(session, held.size)
    if actual != held.root:
        raise LedgerIntegrityError(
            f"The ledger does not extend {held.source}: its root at size {held.size} is {actual.hex()}, the "
            f"checkpoint's {held.root.hex()}."
        )
