"""CSV of compliance search results, safe to open in a spreadsheet.

A cell that begins with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage
return, which some spreadsheets skip before reading a formula) is prefixed
with a single quote, so a spreadsheet shows it as text instead of running it
as a formula (OWASP "CSV injection"). Ids, codes and times never start with
these characters; the guard is for whatever a future field may hold.
"""

import csv
import io
import json
from collections.abc import Iterable, Iterator

from vault.compliance.audit_search import EventLine
from vault.core.clock import rfc3339

COLUMNS = (
    "ledger_index",
    "leaf_hash",
    "occurred_at",
    "kind",
    "outcome",
    "actor_id",
    "subject_id",
    "purpose",
    "categories",
    "erased",
    "data",
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value) -> str:
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def row_of(line: EventLine) -> list[str]:
    values = (
        line.ledger_index,
        line.leaf_hash,
        rfc3339(line.occurred_at),
        line.kind,
        line.outcome,
        line.actor_id,
        line.subject_id,
        line.purpose,
        " ".join(line.categories),
        "true" if line.erased else "false",
        None if line.data is None else json.dumps(line.data, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
    )
    return [safe_cell(v) for v in values]


def _render(rows: Iterable[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)  # RFC 4180 line ends
    return buffer.getvalue()


def stream(batches: Iterable[list[EventLine]]) -> Iterator[str]:
    """The header, then one chunk of CSV text per batch of lines."""
    yield _render([list(COLUMNS)])
    for lines in batches:
        yield _render(row_of(line) for line in lines)
