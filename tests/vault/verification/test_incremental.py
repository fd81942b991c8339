"""``civicvault verify --state``: the consistency proof from the saved state, then only the new entries."""

import hashlib
import json
import stat
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from crypto import merkle
from tests.api.conftest import T0
from vault.cli.main import cli
from vault.core.errors import InvalidInput, LedgerIntegrityError
from vault.keys import ledger_key
from vault.ledger import ledger
from vault.ledger.events import encode
from vault.verification import incremental
from vault.verification.verify import verify


def append(vault_, count: int, *, start: int = 0) -> None:
    with vault_.transaction() as session:
        ledger.append_many(
            session,
            [
                {
                    "kind": "access.refused",
                    "occurred_at": T0 + timedelta(seconds=start + i),
                    "actor_id": f"p-actor{i % 7}",
                    "subject_id": f"p-subject{i % 5}",
                    "data_json": encode({"reason": "no-grant", "n": start + i}),
                }
                for i in range(count)
            ],
        )


def saved(vault_, origin: str = "civicvault") -> incremental.VerifiedState:
    with vault_.read_transaction() as session:
        report = verify(session)
    return incremental.state_after(origin=origin, size=report.size, root=report.root, now=T0)


def since(vault_, state):
    with vault_.read_transaction() as session:
        return incremental.verify_since(session, state)


def execute(vault_, statement: str, **params) -> None:
    with vault_.engine.begin() as connection:
        connection.execute(text(statement), params)


def rewrite_entry(vault_, index: int) -> None:
    """Rewrite an entry's body, its leaf and every stored node above it, so that the tree is consistent again."""
    with vault_.engine.begin() as connection:
        salt, body = connection.execute(
            text("SELECT salt, body FROM events WHERE ledger_index = :i"), {"i": index}
        ).one()
        body = bytes(body).replace(b"no-grant", b"granted!")
        leaf = ledger.leaf_hash_of(bytes(salt), body)
        connection.execute(text("UPDATE events SET body = :b WHERE ledger_index = :i"), {"b": body, "i": index})
        node, level = leaf, 0
        while True:
            updated = connection.execute(
                text("UPDATE ledger_nodes SET hash = :h WHERE level = :l AND idx = :i"),
                {"h": node, "l": level, "i": index >> level},
            )
            if not updated.rowcount:
                break
            sibling = connection.execute(
                text("SELECT hash FROM ledger_nodes WHERE level = :l AND idx = :i"),
                {"l": level, "i": (index >> level) ^ 1},
            ).scalar()
            if sibling is None:
                break
            pair = (bytes(sibling), node) if (index >> level) & 1 else (node, bytes(sibling))
            node, level = merkle.node_hash(*pair), level + 1


def test_after_appends_only_the_new_entries_are_checked(vault_):
    append(vault_, 37)
    state = saved(vault_)
    append(vault_, 29, start=37)
    seen: list[int] = []
    with vault_.read_transaction() as session:
        report = incremental.verify_since(session, state, progress=seen.append)
        full = verify(session)
    assert (report.since, report.size, report.checked, sum(seen)) == (37, 66, 29, 29)
    assert report.root == full.root
    # The interior nodes the new entries complete, and no others: the full verify's count minus the old tree's.
    assert report.nodes == full.nodes - (37 - bin(37).count("1"))
    again = incremental.state_after(origin="civicvault", size=report.size, root=report.root, now=T0)
    assert since(vault_, again).checked == 0


def test_tampering_in_the_new_range_is_named(vault_):
    append(vault_, 20)
    state = saved(vault_)
    append(vault_, 20, start=20)
    execute(vault_, "UPDATE events SET actor_id = 'p-someone' WHERE ledger_index = 31")
    with pytest.raises(LedgerIntegrityError, match="Ledger entry 31: its columns do not match its body"):
        since(vault_, state)


def test_a_new_stored_node_that_does_not_match_is_named(vault_):
    append(vault_, 20)
    state = saved(vault_)
    append(vault_, 20, start=20)
    execute(vault_, "UPDATE ledger_nodes SET hash = :h WHERE level = 2 AND idx = 6", h=b"\x07" * 32)
    with pytest.raises(LedgerIntegrityError, match=r"node \(level 2, index 6\) does not match its children"):
        since(vault_, state)


def test_an_old_entry_rewritten_with_its_nodes_fails_the_consistency_check(vault_):
    append(vault_, 40)
    state = saved(vault_)
    append(vault_, 10, start=40)
    rewrite_entry(vault_, 5)
    with vault_.read_transaction() as session:  # the rewrite is self-consistent: only the saved root shows it
        assert ledger.root(session, 50) != ledger.root(session, 40) != state.root_hash
    with pytest.raises(LedgerIntegrityError, match="does not extend the verified state: its root at size 40"):
        since(vault_, state)


def test_the_consistency_proof_is_checked_against_the_saved_root(vault_, monkeypatch):
    append(vault_, 40)
    append(vault_, 10, start=40)
    # Past the first check (the old peaks), a proof node that does not lead to the saved root is refused.
    monkeypatch.setattr(incremental, "_check_old_root", lambda state, prefix: None)
    forged = incremental.VerifiedState("civicvault", 40, hashlib.sha256(b"other").digest(), "")
    with pytest.raises(LedgerIntegrityError, match="consistency proof from 40 to 50 does not match the first root"):
        since(vault_, forged)


def test_a_truncated_ledger_is_behind_and_a_regrown_one_does_not_extend(vault_):
    append(vault_, 30)
    state = saved(vault_)
    execute(vault_, "DELETE FROM events WHERE ledger_index >= 20")
    execute(vault_, "DELETE FROM ledger_nodes WHERE (idx + 1) * (1 << level) > 20")  # SQL both databases run
    execute(vault_, "UPDATE ledger_head SET size = 20")
    with pytest.raises(LedgerIntegrityError, match="The ledger is behind the verified state: it holds 20 entries"):
        since(vault_, state)
    append(vault_, 15, start=100)  # regrown past the saved size with other entries
    with pytest.raises(LedgerIntegrityError, match="does not extend the verified state"):
        since(vault_, state)


@pytest.mark.parametrize(
    "content, expected",
    [
        ({"origin": "another-city"}, "is the verify state of the ledger 'another-city', not of this one"),
        ({"format": "civicvault-verify-state-v0"}, "is not a verify state file"),
        ({"root_hash": "abcd"}, "is not a verify state file"),
    ],
)
def test_a_state_file_from_elsewhere_is_refused_in_one_sentence(content, expected):
    state = incremental.VerifiedState("civicvault", 3, b"\x01" * 32, "2026-01-01T00:00:00Z")
    raw = json.loads(state.to_json()) | content
    with pytest.raises(InvalidInput, match=expected):
        incremental.read_state(json.dumps(raw), origin="civicvault", name="state.json")


def test_the_command_line_saves_the_state_and_then_verifies_incrementally(vault_, settings, tmp_path):
    ledger_key.create(settings.ledger_key_file)
    env = {"CIVICVAULT_DATABASE_URL": settings.database_url, "CIVICVAULT_MASTER_KEY": settings.master_key}
    path = tmp_path / "verified.json"
    args = ["verify", "--home", str(settings.home), "--workers", "1", "--state", str(path)]
    append(vault_, 25)
    first = CliRunner().invoke(cli, args, env=env)
    assert first.exit_code == 0 and "saved the verified state (size 25)" in first.output, first.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["format"] == incremental.STATE_FORMAT
    append(vault_, 8, start=25)
    second = CliRunner().invoke(cli, args, env=env)
    assert second.exit_code == 0 and "(incremental): 8 new entries checked (25 to 33)" in second.output
    assert json.loads(path.read_text())["tree_size"] == 33
    state = json.loads(path.read_text())
    path.write_text(json.dumps(state | {"root_hash": "00" * 32}))
    wrong = CliRunner().invoke(cli, args, env=env)
    assert wrong.exit_code == 1 and "does not extend the verified state" in wrong.output
    assert json.loads(path.read_text())["root_hash"] == "00" * 32  # a failed verify saves nothing


def test_an_erasure_after_the_state_is_checked_old_entries_included(vault_):
    from vault.core.caller import Caller
    from vault.identity import principals
    from vault.records import records
    from vault.rights import erasure

    with vault_.transaction() as session:
        amina, _ = principals.create_principal(session, vault_.keys, role="resident", name="Amina", now=T0)
        caller = Caller(amina.id, "resident")
        records.create_record(
            session, vault_.keys, caller, subject_id=amina.id, category="health.labs", content={"a": 1}, now=T0
        )
    append(vault_, 10)
    state = saved(vault_)
    erasure.erase(vault_, None, amina.id)
    report = since(vault_, state)
    assert report.erased >= 1 and report.checked >= 1
    # An old entry the new erasure blanked, put back: its erasure no longer covers what is marked.
    execute(vault_, "UPDATE events SET erased_by = NULL WHERE erased_by >= :s", s=state.tree_size)
    with pytest.raises(LedgerIntegrityError, match="the entries marked as erased by it are not the ones it erased"):
        since(vault_, state)
