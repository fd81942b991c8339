"""``verify`` against rows rewritten with a database shell: every shape of tampering names the entry.

SQLite keeps whatever a statement stores (``UPDATE events SET body = CAST(body
AS TEXT)`` leaves a TEXT body in a BLOB column); PostgreSQL refuses type
changes in an UPDATE (both refuse NULL where the schema does), but accepts
values of the right type in the wrong shape (non-JSON or non-object data, non-UTF-8 bodies, empty salts, wrong-length
hashes, impossible erasure pointers) and, for whoever owns the tables, a
column's type changed with ``ALTER TABLE``. Each case runs in a transaction
that is rolled back, and must end in ``LedgerIntegrityError`` naming the entry:
never ``TypeError``, ``AttributeError`` or another crash.
"""

import pytest
from sqlalchemy import text

from tests.vault.verification.test_verify import history  # noqa: F401  (fixture)
from vault.core.errors import LedgerIntegrityError
from vault.verification.verify import verify

AT = 6  # the tampered entry: a record event of the history, neither first nor last

BOTH = [
    ("data not JSON", "UPDATE events SET data = 'not json' WHERE ledger_index = :i"),
    ("data a JSON array", "UPDATE events SET data = '[]' WHERE ledger_index = :i"),
    ("data a JSON number", "UPDATE events SET data = '123' WHERE ledger_index = :i"),
    ("data JSON null", "UPDATE events SET data = 'null' WHERE ledger_index = :i"),
    ("data a JSON string", "UPDATE events SET data = '\"x\"' WHERE ledger_index = :i"),
    ("kind empty", "UPDATE events SET kind = '' WHERE ledger_index = :i"),
    ("subject removed", "UPDATE events SET subject_id = NULL WHERE ledger_index = :i"),
    ("outcome changed", "UPDATE events SET outcome = 'refused' WHERE ledger_index = :i"),
    ("erased_by negative", "UPDATE events SET erased_by = -1 WHERE ledger_index = :i"),
    ("erased_by itself", "UPDATE events SET erased_by = :i WHERE ledger_index = :i"),
    ("erased_by huge", "UPDATE events SET erased_by = 2000000000 WHERE ledger_index = :i"),
]
BINARY = [  # bytes given as parameters, for both databases
    ("body not UTF-8", "UPDATE events SET body = :b WHERE ledger_index = :i", b"\xff\xfe\x00"),
    ("body empty", "UPDATE events SET body = :b WHERE ledger_index = :i", b""),
    ("salt empty", "UPDATE events SET salt = :b WHERE ledger_index = :i", b""),
    ("leaf hash short", "UPDATE ledger_nodes SET hash = :b WHERE level = 0 AND idx = :i", b"\x01" * 7),
]
SQLITE_ONLY = [
    ("body as TEXT", "UPDATE events SET body = CAST(body AS TEXT) WHERE ledger_index = :i"),
    ("salt as TEXT", "UPDATE events SET salt = CAST(salt AS TEXT) WHERE ledger_index = :i"),
    ("salt as INTEGER", "UPDATE events SET salt = 7 WHERE ledger_index = :i"),
    ("body as INTEGER", "UPDATE events SET body = 12345 WHERE ledger_index = :i"),
    ("body as REAL", "UPDATE events SET body = 1.5 WHERE ledger_index = :i"),
    ("data as BLOB", "UPDATE events SET data = CAST(data AS BLOB) WHERE ledger_index = :i"),
    ("kind as BLOB", "UPDATE events SET kind = CAST(kind AS BLOB) WHERE ledger_index = :i"),
    ("actor as BLOB", "UPDATE events SET actor_id = CAST(actor_id AS BLOB) WHERE ledger_index = :i"),
    ("subject as INTEGER", "UPDATE events SET subject_id = 42 WHERE ledger_index = :i"),
    ("time as INTEGER", "UPDATE events SET occurred_at = 1700000000 WHERE ledger_index = :i"),
    ("time as text garbage", "UPDATE events SET occurred_at = 'yesterday' WHERE ledger_index = :i"),
    ("time as BLOB", "UPDATE events SET occurred_at = CAST(occurred_at AS BLOB) WHERE ledger_index = :i"),
    ("erased_by as TEXT", "UPDATE events SET erased_by = 'x' WHERE ledger_index = :i"),
    ("erased_by as REAL", "UPDATE events SET erased_by = 7.5 WHERE ledger_index = :i"),
    ("purpose as BLOB", "UPDATE events SET purpose = X'00' WHERE ledger_index = :i"),
    ("leaf hash as TEXT", "UPDATE ledger_nodes SET hash = CAST(hash AS TEXT) WHERE level = 0 AND idx = :i"),
    ("leaf hash as INTEGER", "UPDATE ledger_nodes SET hash = 0 WHERE level = 0 AND idx = :i"),
    ("category as BLOB", "UPDATE event_categories SET category = X'00' WHERE ledger_index = :i"),
]
POSTGRES_ONLY = [  # a table owner's ALTER TABLE: the type of the whole column changes
    ("body column as TEXT", "ALTER TABLE events ALTER COLUMN body TYPE text USING encode(body, 'escape')"),
    ("salt column as TEXT", "ALTER TABLE events ALTER COLUMN salt TYPE text USING encode(salt, 'hex')"),
    ("data column as JSONB", "ALTER TABLE events ALTER COLUMN data TYPE jsonb USING data::jsonb"),
    # Not here: occurred_at as TEXT keeps every moment exactly (the SQLite form), so the ledger is intact.
    ("leaf column as TEXT", "ALTER TABLE ledger_nodes ALTER COLUMN hash TYPE text USING encode(hash, 'hex')"),
]


def tampered(vault_, statement: str, **params) -> str:
    """Run ``statement``, verify in the same transaction, roll back; the integrity error's message."""
    with vault_.sessions.begin() as session:
        session.execute(text(statement), params)
        try:
            verify(session)
        except LedgerIntegrityError as exc:
            return str(exc)
        finally:
            session.rollback()
    raise AssertionError(f"verify accepted: {statement}")


def cases(vault_):
    found = [(name, sql, {"i": AT}) for name, sql in BOTH]
    found += [(name, sql, {"i": AT, "b": value}) for name, sql, value in BINARY]
    if vault_.engine.dialect.name == "sqlite":
        found += [(name, sql, {"i": AT}) for name, sql in SQLITE_ONLY]
    else:
        found += [(name, sql, {}) for name, sql in POSTGRES_ONLY]
    return found


def test_every_shape_of_tampering_names_the_entry(vault_, history):  # noqa: F811
    with vault_.read_transaction() as session:
        assert verify(session).size > AT + 1
    failures = {}
    for name, statement, params in cases(vault_):
        try:
            message = tampered(vault_, statement, **params)
        except LedgerIntegrityError:
            raise
        except Exception as exc:  # the point: no other exception may escape
            failures[name] = f"{type(exc).__name__}: {exc}"
            continue
        # Row tampering names the tampered entry; a whole column changed names the first entry.
        wanted = "Ledger entry 0" if "column" in name else f"Ledger entry {AT}"
        if "ALTER" not in statement and not message.startswith(wanted):
            failures[name] = f"names the wrong place: {message}"
        elif "ALTER" in statement and not message.startswith("Ledger entry"):
            failures[name] = f"names no entry: {message}"
    assert not failures, failures
    with vault_.read_transaction() as session:  # every change was rolled back
        verify(session)


@pytest.mark.parametrize("statement", ["UPDATE events SET body = CAST(body AS TEXT)"])
def test_the_whole_table_rewritten_as_text_names_the_first_entry(vault_, history, statement):  # noqa: F811
    if vault_.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL refuses a TEXT value in a bytea column")
    message = tampered(vault_, statement)
    assert message.startswith("Ledger entry 0: ") and "body is TEXT" in message, message
