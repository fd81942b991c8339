"""The CheckpointAnchor contract on a real node: the committed artifact, deployment, anchoring, refusals, gas."""

import subprocess

import pytest

from tests.anchoring.conftest import ROOT, node_tools
from vault.anchoring.chain import AnchorRefused, Chain, artifact

ORIGIN = "civicvault-test"


def test_the_committed_artifact_is_a_fresh_compile_of_the_source():
    node, _ = node_tools()
    fresh = subprocess.run(
        [node, "contracts/compile.js", "--stdout"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    committed = (ROOT / "vault" / "anchoring" / "CheckpointAnchor.json").read_text(encoding="utf-8")
    assert fresh.stdout == committed, "run 'make contracts' and commit vault/anchoring/CheckpointAnchor.json"
    assert artifact()["compiler"]["version"].startswith("0.8.37+")


def test_deploy_anchor_and_read_back(chain, owner):
    assert chain.owner() == owner.address and chain.has_code()
    root = bytes(range(32))
    sent = chain.anchor(owner, origin=ORIGIN, tree_size=10, root=root)
    held = chain.anchor_of(ORIGIN, 10)
    assert held.present and held.root == root and held.block_number == sent.block_number
    assert chain.latest(ORIGIN) == (10, root)
    [event] = chain.logged(ORIGIN)
    assert (event.tree_size, event.root, event.tx_hash, event.block_number) == (
        10,
        root,
        sent.tx_hash,
        sent.block_number,
    )
    assert not chain.anchor_of(ORIGIN, 11).present and not chain.anchor_of("another-log", 10).present
    assert chain.logged("another-log") == []


def test_the_contract_refuses_overwrites_shrinking_sizes_strangers_and_empty_checkpoints(
    ganache, chain, owner, stranger
):
    root = b"\x11" * 32
    chain.anchor(owner, origin=ORIGIN, tree_size=100, root=root)
    with pytest.raises(AnchorRefused, match=r"AlreadyAnchored\(100, 1111"):
        chain.anchor(owner, origin=ORIGIN, tree_size=100, root=b"\x22" * 32)
    with pytest.raises(AnchorRefused, match=r"SizeNotIncreasing\(99, 100\)"):
        chain.anchor(owner, origin=ORIGIN, tree_size=99, root=b"\x22" * 32)
    with pytest.raises(AnchorRefused, match=r"NotOwner\(\)"):
        chain.anchor(stranger, origin=ORIGIN, tree_size=101, root=b"\x22" * 32)
    with pytest.raises(AnchorRefused, match=r"EmptyCheckpoint\(\)"):
        chain.anchor(owner, origin=ORIGIN, tree_size=101, root=bytes(32))
    assert chain.anchor_of(ORIGIN, 100).root == root and chain.latest(ORIGIN) == (100, root)
    # Origins are independent logs: another origin starts from nothing.
    chain.anchor(owner, origin="another-log", tree_size=5, root=root)
    assert chain.latest("another-log") == (5, root)
    # The same address on a fresh read-only client sees the same state.
    assert Chain(ganache.url, contract=chain.address).anchor_of(ORIGIN, 100).root == root
