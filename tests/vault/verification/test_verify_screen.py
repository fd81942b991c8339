"""``verify``'s batch screening (``vault.verification.verify._screen``) against the exact check.

On SQLite, verify screens a batch of entries at once: SQLite's JSON parser
validates each event's data and takes out its top-level purpose and
categories, and Python compares the rest without parsing JSON. What the
screening cannot vouch for goes to the exact check, entry by entry. These
tests hold that it never vouches for an entry the exact check would refuse:

* entries committed with data the vault never writes, where SQLite and
  Python read the data differently (a duplicate key, an escaped key, a NUL,
  nesting deeper than ``json.loads`` follows, white space), verified as
  committed and then with a search column that says what SQLite's reading
  says instead of Python's;
* search columns, categories, columns and nodes edited in entries that the
  screening checks a whole aligned batch at a time;
* each fault named as the exact pass names it (screening switched off).

They run on PostgreSQL too, where verify checks every entry exactly.
"""

import json
import sys
from datetime import timedelta

import pytest
from sqlalchemy import text

from bench.ledger import event_args
from tests.api.conftest import T0
from vault.core.errors import LedgerIntegrityError
from vault.ledger import ledger
from vault.verification import verify as module
from vault.verification.verify import verify

READS = 2100  # one whole screened batch of 2048 and a partial one


def append(vault_, data_json: str, data: dict | None = None, *, kind: str = "access.permitted", **columns) -> int:
    """Commit one event with exactly ``data_json`` (``data``: what its search columns are derived from, where
    ``data_json`` does not parse); its index."""
    with vault_.transaction() as session:
        event = {
            "kind": kind,
            "occurred_at": T0,
            "actor_id": "p-clinic",
            "subject_id": "p-resident",
            "data_json": data_json,
            **columns,
        }
        if data is not None:
            event["data"] = data
        ledger.append_many(session, [event])
    with vault_.engine.connect() as connection:
        return connection.execute(text("SELECT size FROM ledger_head")).scalar() - 1


def reads(vault_, count: int = READS) -> None:
    """``count`` reads under a grant (the bench's event), in batches."""
    for start in range(0, count, 1000):
        with vault_.transaction() as session:
            ledger.append_many(session, [event_args(i) for i in range(start, min(start + 1000, count))])


def message(vault_, *statements) -> str | None:
    """Verify after ``statements`` (then rolled back): the integrity error's message, or None if it passed."""
    with vault_.sessions.begin() as session:
        for statement, params in statements:
            session.execute(text(statement), params)
        try:
            verify(session)
        except LedgerIntegrityError as exc:
            return str(exc)
        finally:
            session.rollback()
    return None


@pytest.fixture
def exact_checks(monkeypatch):
    """How many entries went to the exact check, by index."""
    seen: list[int] = []
    real = module._check_event

    def counting(session, row, *args, **kwargs):
        seen.append(row[0])
        return real(session, row, *args, **kwargs)

    monkeypatch.setattr(module, "_check_event", counting)
    return seen


def both_ways(vault_, monkeypatch, *statements) -> str | None:
    """``message`` with screening and without: the same, which is returned."""
    screened = message(vault_, *statements)
    with monkeypatch.context() as patch:
        patch.setattr(module, "_json_agrees", lambda session: False)
        exact = message(vault_, *statements)
    assert screened == exact, (screened, exact)
    return screened


def sqlite(vault_) -> bool:
    return vault_.engine.dialect.name == "sqlite"


def test_honest_reads_are_screened_without_an_exact_check(vault_, exact_checks):
    reads(vault_)
    seen = []
    with vault_.read_transaction() as session:
        report = verify(session, progress=seen.append)
    assert report.size == READS and sum(seen) == READS
    assert len(exact_checks) == (0 if sqlite(vault_) else READS)


def test_the_rebuilt_body_is_the_canonical_body(vault_, exact_checks):
    """Columns that json quotes with escapes, non-ASCII and no subject: the screening rebuilds their body
    byte for byte as ``ledger.body_from_columns`` does, so none of them needs the exact check."""
    values = ['p-"quoted"', "p-back\\slash", "p-tab\there", "p-ünïcødé-名前", "p-\x01control", "p-\u2028line"]
    for n, actor in enumerate(values):
        append(vault_, json.dumps({"purpose": "treatment", "n": n}), actor_id=actor, subject_id=None)
        append(vault_, json.dumps({"category": "health.labs"}), actor_id="p-x", subject_id=actor)
    with vault_.read_transaction() as session:
        verify(session)
    assert exact_checks == [] if sqlite(vault_) else len(exact_checks) == 2 * len(values)


# (data as committed, what its search columns are derived from if it does not parse, an edit that makes a
# search column say what SQLite's reading says instead of Python's, or the fault of the data as committed)
CRAFTED = [
    pytest.param(
        '{"category":"health.labs","purpose":"research","purpose":"treatment"}',
        None,
        "UPDATE events SET purpose = 'research' WHERE ledger_index = :i",
        "its search columns (outcome, purpose) do not match its data",
        id="duplicate purpose: Python takes the last, SQLite the first",
    ),
    pytest.param(
        '{"category":"health.notes","category":"health.labs","purpose":"treatment"}',
        None,
        "UPDATE event_categories SET category = 'health.notes' WHERE ledger_index = :i",
        "its search categories do not match its data",
        id="duplicate category",
    ),
    pytest.param(
        '{"category":"health.labs","purp\\u006fse":"research"}',
        None,
        "UPDATE events SET purpose = NULL WHERE ledger_index = :i",
        "its search columns (outcome, purpose) do not match its data",
        id="escaped key: Python reads purpose, SQLite another key",
    ),
    pytest.param(
        '{"category":"health.labs","x":{"purpose":"research","category":"health.notes"}}',
        None,
        "UPDATE events SET purpose = 'research' WHERE ledger_index = :i",
        "its search columns (outcome, purpose) do not match its data",
        id="search keys nested, not top-level",
    ),
    pytest.param(
        '{ "purpose" : "treatment" ,\n "category" : "health.labs" }',
        None,
        "UPDATE events SET purpose = 'legal' WHERE ledger_index = :i",
        "its search columns (outcome, purpose) do not match its data",
        id="white space and key order",
    ),
    pytest.param(
        '["health.labs","treatment"]',
        {},
        None,
        "its stored row cannot be read as an event (a column holds a value of the wrong shape)",
        id="an array, not an object: it has no search keys for SQLite, no .get for Python",
    ),
    pytest.param(
        '{"category":"health.labs","purpose":"treatment"}\x00{}',
        {"category": "health.labs", "purpose": "treatment"},
        None,
        "its stored row cannot be read as an event (a column holds a value of the wrong shape)",
        id="NUL: SQLite's parser stops there, Python's does not",
    ),
    pytest.param(
        '{"category":"health.labs","purpose":"treatment","x":' + "[" * 1500 + "]" * 1500 + "}",
        {"category": "health.labs", "purpose": "treatment"},
        None,
        "its stored row cannot be read as an event (a column holds a value of the wrong shape)",
        id="nested deeper than json.loads follows",
    ),
]


@pytest.mark.parametrize("data_json, data, edit, fault", CRAFTED)
def test_data_read_differently_by_sqlite_is_judged_as_python_reads_it(
    vault_, monkeypatch, data_json, data, edit, fault
):
    if "\x00" in data_json and not sqlite(vault_):
        pytest.skip("PostgreSQL text cannot hold NUL")
    limit = sys.getrecursionlimit()  # as Python starts: another test may have raised it
    sys.setrecursionlimit(1000)
    try:
        _check_as_committed_and_edited(vault_, monkeypatch, data_json, data, edit, fault)
    finally:
        sys.setrecursionlimit(limit)


def _check_as_committed_and_edited(vault_, monkeypatch, data_json, data, edit, fault):
    reads(vault_, 40)
    index = append(vault_, data_json, data)
    reads(vault_, 10)
    if edit is None:  # committed so, the entry itself is the fault
        assert both_ways(vault_, monkeypatch) == f"Ledger entry {index}: {fault}."
        return
    assert both_ways(vault_, monkeypatch) is None
    assert both_ways(vault_, monkeypatch, (edit, {"i": index})) == f"Ledger entry {index}: {fault}."


AT = 1500  # an entry inside the first, aligned batch


RESEARCH = """UPDATE events SET data = replace(data, '"treatment"', '"research"') WHERE ledger_index = :i"""
REWRITTEN = (
    """UPDATE events SET data = replace(replace(data, '"treatment"', '"\\u0074reatment"'), ',"purpose"', """
    """', "purpose"') WHERE ledger_index = :i"""
)

EDITS = [
    (
        [("UPDATE events SET purpose = 'legal' WHERE ledger_index = :i", {"i": AT})],
        f"Ledger entry {AT}: its search columns (outcome, purpose) do not match its data.",
    ),
    (
        [("UPDATE events SET outcome = 'refused' WHERE ledger_index = :i", {"i": AT})],
        f"Ledger entry {AT}: its search columns (outcome, purpose) do not match its data.",
    ),
    (
        [("DELETE FROM event_categories WHERE ledger_index = :i", {"i": AT})],
        f"Ledger entry {AT}: its search categories do not match its data.",
    ),
    (
        [("INSERT INTO event_categories (ledger_index, category) VALUES (:i, 'health.notes')", {"i": AT})],
        f"Ledger entry {AT}: its search categories do not match its data.",
    ),
    (
        [("UPDATE events SET actor_id = 'p-someoneelse' WHERE ledger_index = :i", {"i": AT})],
        f"Ledger entry {AT}: its columns do not match its body (actor_id).",
    ),
    (
        [("UPDATE events SET occurred_at = '2026-11-25 09:00:01.501000' WHERE ledger_index = :i", {"i": AT})],
        f"Ledger entry {AT}: its columns do not match its body (occurred_at).",
    ),
    (  # the data says research; its body and its purpose column say treatment
        [(RESEARCH, {"i": AT})],
        f"Ledger entry {AT}: its columns do not match its body (data).",
    ),
    (  # the same data written another way (a unicode escape, white space): not a fault, as before
        [(REWRITTEN, {"i": AT})],
        None,
    ),
    (
        [("UPDATE events SET leaf_hash = :h WHERE ledger_index = :i", {"i": AT, "h": bytes(32)})],
        f"Ledger entry {AT}: its leaf_hash column differs from its leaf in the tree.",
    ),
    (
        [("UPDATE ledger_nodes SET hash = :h WHERE level = 3 AND idx = 5", {"h": bytes(32)})],
        "Ledger entry 40: node (level 3, index 5) does not match its children.",
    ),
    (  # two faults: the one completed by the earlier entry is named, as the exact pass meets it first
        [
            ("UPDATE ledger_nodes SET hash = :h WHERE level = 1 AND idx = 100", {"h": bytes(32)}),
            ("UPDATE ledger_nodes SET hash = :h WHERE level = 4 AND idx = 3", {"h": bytes(32)}),
        ],
        "Ledger entry 48: node (level 4, index 3) does not match its children.",
    ),
    (  # completed by the same entry (43): the lower level first
        [
            ("UPDATE ledger_nodes SET hash = :h WHERE level = 2 AND idx = 10", {"h": bytes(32)}),
            ("UPDATE ledger_nodes SET hash = :h WHERE level = 1 AND idx = 21", {"h": bytes(32)}),
        ],
        "Ledger entry 42: node (level 1, index 21) does not match its children.",
    ),
    (
        [("DELETE FROM ledger_nodes WHERE level = 2 AND idx = 7", {})],
        "Ledger entry 28: the node at level 2, index 7 is missing or misplaced.",
    ),
    (  # a node completed (by entry 41) before an entry's fault (90): the node
        [
            ("UPDATE events SET purpose = 'legal' WHERE ledger_index = :i", {"i": 90}),
            ("UPDATE ledger_nodes SET hash = :h WHERE level = 1 AND idx = 20", {"h": bytes(32)}),
        ],
        "Ledger entry 40: node (level 1, index 20) does not match its children.",
    ),
    (  # an entry's fault (30) before a node completed later (by entry 41): the entry
        [
            ("UPDATE events SET purpose = 'legal' WHERE ledger_index = :i", {"i": 30}),
            ("UPDATE ledger_nodes SET hash = :h WHERE level = 1 AND idx = 20", {"h": bytes(32)}),
        ],
        "Ledger entry 30: its search columns (outcome, purpose) do not match its data.",
    ),
]


@pytest.fixture
def many_reads(vault_):
    reads(vault_)
    return vault_


@pytest.mark.parametrize("statements, expected", EDITS)
def test_edits_inside_a_screened_batch_are_named_as_the_exact_pass_names_them(
    many_reads, monkeypatch, statements, expected
):
    assert both_ways(many_reads, monkeypatch, *statements) == expected


def test_a_category_of_no_entry_among_suspects_is_named(vault_, monkeypatch):
    """A batch with entries the screening cannot vouch for (an escaped key) and a category stored at an index
    no entry has (SQLite keeps 40.5 in an integer column): named as the exact pass names it."""
    if not sqlite(vault_):
        pytest.skip("PostgreSQL keeps integers in an integer column")
    reads(vault_, 40)
    append(vault_, '{"category":"health.labs","purp\\u006fse":"research"}')
    reads(vault_, 10)
    got = both_ways(
        vault_,
        monkeypatch,
        ("PRAGMA defer_foreign_keys = ON", {}),  # until the commit, which never comes
        ("INSERT INTO event_categories (ledger_index, category) VALUES (30.5, 'health.notes')", {}),
    )
    assert got == "Ledger entry 30.5: a search category is stored for an event that does not exist."


def test_text_that_is_not_utf8_is_named(vault_, monkeypatch):
    """SQLite's driver refuses such text as the screening pass reads it; the pass starts again leniently."""
    if not sqlite(vault_):
        pytest.skip("PostgreSQL refuses text that is not UTF-8")
    reads(vault_, 30)
    got = both_ways(vault_, monkeypatch, ("UPDATE events SET kind = CAST(X'FF41' AS TEXT) WHERE ledger_index = 7", {}))
    assert got is not None and got.startswith("Ledger entry 7: ") and "kind is TEXT that is not UTF-8" in got


def test_progress_is_reported_once_when_the_pass_starts_again(vault_):
    if not sqlite(vault_):
        pytest.skip("only SQLite's pass starts again")
    reads(vault_, 3000)
    with vault_.engine.begin() as connection:  # text that is not UTF-8 in the second batch
        connection.execute(text("UPDATE events SET data = CAST(X'FF' AS TEXT) WHERE ledger_index = 2999"))
    seen: list[int] = []
    with pytest.raises(LedgerIntegrityError, match="Ledger entry 2999"), vault_.read_transaction() as session:
        verify(session, progress=seen.append)
    assert sum(seen) <= 3000


def test_a_later_batch_stays_aligned_after_an_incremental_start(vault_):
    """An incremental verify starts anywhere; its first batch ends on a multiple of the batch size."""
    from vault.verification import incremental

    reads(vault_, 100)
    with vault_.read_transaction() as session:
        report = verify(session)
    state = incremental.state_after(origin="civicvault", size=report.size, root=report.root, now=T0)
    reads(vault_, 2100)
    with vault_.read_transaction() as session:
        report = incremental.verify_since(session, state)
    assert report.checked == 2100 and report.size == 2200


def test_events_in_time_order_keep_their_moments(vault_):
    """The screening rebuilds the body's time from SQLite's text: every millisecond round trip agrees."""
    with vault_.transaction() as session:
        ledger.append_many(
            session,
            [
                {
                    "kind": "access.refused",
                    "occurred_at": T0 + timedelta(microseconds=7919 * i),
                    "actor_id": "p-a",
                    "subject_id": None,
                    "data_json": json.dumps({"reason": "no-grant", "purpose": "research"}),
                }
                for i in range(300)
            ],
        )
    with vault_.read_transaction() as session:
        assert verify(session).size == 300
