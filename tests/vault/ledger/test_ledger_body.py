"""The ledger's fast body builder says exactly what the canonical JSON says.

And appends in bulk match appends one by one.
"""

import json
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from crypto import merkle
from vault.core.clock import rfc3339
from vault.ledger import ledger
from vault.ledger.events import encode

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
moments = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 1, 1), timezones=st.just(UTC))


@settings(max_examples=300)
@given(
    kind=st.text(min_size=1, max_size=40),
    occurred_at=moments,
    actor_id=st.text(max_size=30),
    subject_id=st.none() | st.text(max_size=30),
    data=st.dictionaries(st.text(max_size=12), json_values, max_size=6),
)
def test_body_from_columns_is_the_canonical_body(kind, occurred_at, actor_id, subject_id, data):
    data_json = encode(data)
    fast = ledger.body_from_columns(
        kind=kind, occurred_at=rfc3339(occurred_at), actor_id=actor_id, subject_id=subject_id, data_json=data_json
    )
    assert fast == ledger.canonical_body(
        kind=kind, occurred_at=occurred_at, actor_id=actor_id, subject_id=subject_id, data=json.loads(data_json)
    )


def _events(start, count):
    return [
        {
            "kind": "access.permitted",
            "occurred_at": datetime(2026, 11, 25, 9, 0, tzinfo=UTC),
            "actor_id": f"p-a{i}",
            "subject_id": None if i % 3 else f"p-s{i}",
            "data_json": encode({"n": i, "note": 'é\u2028"x"'}),
        }
        for i in range(start, start + count)
    ]


def test_append_many_builds_the_same_tree_as_single_appends(vault_):
    """Batches of every awkward size, at every offset: the stored tree is the RFC 9162 tree of the leaves."""
    receipts = []
    position = 0
    for count in (1, 2, 3, 1, 5, 8, 1, 16, 7, 1, 31, 2):
        with vault_.transaction() as session:
            if count == 1:
                receipts.append(ledger.append(session, **_events(position, 1)[0]))
            else:
                receipts.extend(ledger.append_many(session, _events(position, count)))
        position += count
    assert [r.leaf_index for r in receipts] == list(range(position))
    leaves = [bytes.fromhex(r.leaf_hash) for r in receipts]
    with vault_.read_transaction() as session:
        assert ledger.size(session) == position
        for size in range(1, position + 1):
            assert ledger.root(session, size) == merkle.root_from_leaves(leaves[:size])
        for index in (0, 5, 44, position - 1):
            proof = ledger.inclusion(session, leaf_index=index, tree_size=position)
            merkle.verify_inclusion(
                index,
                position,
                leaves[index],
                [bytes.fromhex(h) for h in proof.audit_path],
                merkle.root_from_leaves(leaves),
            )
        with_empty = ledger.append_many(session, [])
    assert with_empty == []
    from vault.verification.verify import verify

    with vault_.read_transaction() as session:
        assert verify(session).size == position


def test_proofs_share_upper_nodes_per_database_only(vault_, tmp_path, monkeypatch):
    """Two ledgers in one process: the nodes proofs keep in memory never leak from one database to the other."""
    from tests.conftest import new_master_key
    from vault.core.config import Settings
    from vault.runtime import Vault, init_home

    monkeypatch.setattr(ledger, "SHARED_LEVEL", 1)  # share almost everything, so a leak would show at once
    other_home = tmp_path / "other"
    other_settings = Settings(
        home=other_home, database_url=f"sqlite:///{other_home / 'vault.db'}", master_key=new_master_key()
    )
    init_home(other_settings)
    other = Vault.open(other_settings)
    try:
        for vault, offset in ((vault_, 0), (other, 1000)):
            with vault.transaction() as session:
                ledger.append_many(session, _events(offset, 40))
        for _ in range(2):  # the second round is served from the shared nodes
            for vault in (vault_, other):
                with vault.read_transaction() as session:
                    leaves = [ledger.StoredNodes(session).get(0, i) for i in range(40)]
                    root = merkle.root_from_leaves(leaves)
                    for index in (0, 17, 39):
                        proof = ledger.inclusion(session, leaf_index=index, tree_size=40)
                        assert proof.root_hash == root.hex()
                        merkle.verify_inclusion(
                            index, 40, leaves[index], [bytes.fromhex(h) for h in proof.audit_path], root
                        )
                    consistency = ledger.consistency(session, first=23, second=40)
                    assert consistency.second_root == root.hex()
    finally:
        other.close()
