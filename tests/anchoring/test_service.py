"""Anchoring the latest checkpoint, recovering an unrecorded anchor, gas per anchor, and what verify finds."""

import pytest
from sqlalchemy import delete, select, update

from tests.anchoring.helpers import ORIGIN, add_events, rewrite_history, sign
from vault.anchoring import service
from vault.anchoring.chain import Chain
from vault.anchoring.check import AnchorCheck
from vault.core.errors import ConfigError, InvalidInput, LedgerIntegrityError
from vault.keys import ledger_key
from vault.storage.models import Anchor, Event
from vault.verification.verify import verify


def check(vault, settings, chain=None, configured=None):
    public_key = ledger_key.read(settings.ledger_key_file).public_key
    anchors = AnchorCheck(
        chain_for=(lambda address: Chain(chain.w3.provider.endpoint_uri, contract=address)) if chain else None,
        configured=configured,
        origin=ORIGIN,
    )
    with vault.read_transaction() as session:
        return verify(session, public_key=public_key, anchors=anchors)


def test_anchor_the_latest_checkpoint_record_it_and_verify(vault_, settings, chain, owner):
    add_events(vault_, 5)
    with pytest.raises(InvalidInput, match="No checkpoint"):
        service.anchor_latest(vault_, chain=chain, signer=owner)
    signed = sign(vault_, settings)
    outcome = service.anchor_latest(vault_, chain=chain, signer=owner)
    assert (
        outcome.sent
        and outcome.anchor.tree_size == signed.tree_size == 5
        and outcome.anchor.root_hash == signed.root_hash
    )
    assert chain.anchor_of(ORIGIN, 5).root.hex() == signed.root_hash
    assert outcome.anchor.contract == chain.address and outcome.anchor.chain_id == 1337 and outcome.anchor.gas_used > 0
    again = service.anchor_latest(vault_, chain=chain, signer=owner)  # nothing new: not sent twice
    assert not again.sent and again.anchor == outcome.anchor
    with vault_.read_transaction() as session:
        [event] = session.scalars(select(Event).where(Event.kind == "checkpoint.anchored")).all()
        assert f'"tx_hash":"{outcome.anchor.transaction_hash}"' in event.data and event.subject_id is None
        assert service.list_anchors(session) == [outcome.anchor]
    add_events(vault_, 3)
    sign(vault_, settings)
    second = service.anchor_latest(vault_, chain=chain, signer=owner)
    assert second.sent and second.anchor.tree_size == 9  # 5 + the anchored event + 3
    report = check(vault_, settings, chain)
    assert report.anchors.anchors == 2 and report.anchors.on_chain and report.anchors.chain_only == 0
    assert check(vault_, settings).anchors.on_chain is False  # no node configured: local checks only


def test_an_anchor_mined_but_not_recorded_is_recovered_not_sent_again(vault_, settings, chain, owner):
    add_events(vault_, 3)
    signed = sign(vault_, settings)
    sent = chain.anchor(
        owner, origin=ORIGIN, tree_size=3, root=bytes.fromhex(signed.root_hash)
    )  # the process died here
    outcome = service.anchor_latest(vault_, chain=chain, signer=owner)
    assert (
        not outcome.sent
        and outcome.anchor.transaction_hash == sent.tx_hash.hex()
        and outcome.anchor.block_number == sent.block_number
    )


def test_a_chain_holding_another_root_for_the_size_is_an_integrity_failure(vault_, settings, chain, owner):
    add_events(vault_, 3)
    sign(vault_, settings)
    chain.anchor(owner, origin=ORIGIN, tree_size=3, root=b"\x99" * 32)
    with pytest.raises(LedgerIntegrityError, match="already holds root 9999.* for size 3"):
        service.anchor_latest(vault_, chain=chain, signer=owner)


def test_a_node_on_another_chain_is_refused_before_sending(vault_, settings, chain, owner):
    add_events(vault_, 1)
    sign(vault_, settings)
    with pytest.raises(ConfigError, match="chain 1337, but CIVICVAULT_ANCHOR_CHAIN_ID says 5"):
        service.anchor_latest(vault_, chain=chain, signer=owner, expected_chain_id=5)
    assert not chain.anchor_of(ORIGIN, 1).present


def _anchored(vault_, settings, chain, owner, n=6):
    add_events(vault_, n)
    sign(vault_, settings)
    return service.anchor_latest(vault_, chain=chain, signer=owner).anchor


def test_a_rewritten_history_contradicts_the_anchor(vault_, settings, chain, owner):
    anchor = _anchored(vault_, settings, chain, owner)
    rewrite_history(vault_, settings, index=2)
    with pytest.raises(LedgerIntegrityError) as failure:
        check(vault_, settings, chain)
    message = failure.value.detail
    assert "contradicts the anchor of size 6" in message and f"tx 0x{anchor.transaction_hash}" in message
    assert f"block {anchor.block_number}" in message


def test_rewriting_the_anchor_rows_too_is_caught_on_chain(vault_, settings, chain, owner):
    anchor = _anchored(vault_, settings, chain, owner)
    rewrite_history(vault_, settings, index=0)
    with vault_.transaction() as session:  # the forger also "fixes" the recorded anchor
        from vault.anchoring.check import ledger as ledger_module

        session.execute(update(Anchor).values(root=ledger_module.root(session, anchor.tree_size)))
    with pytest.raises(LedgerIntegrityError, match=f"chain holds root {anchor.root_hash} where the anchor of size 6"):
        check(vault_, settings, chain)
    check(vault_, settings)  # without the chain the forgery is invisible: which is why anchors go on chain


def test_deleting_the_anchor_rows_does_not_hide_the_chains_anchor(vault_, settings, chain, owner):
    anchor = _anchored(vault_, settings, chain, owner)
    rewrite_history(vault_, settings, index=1)
    with vault_.transaction() as session:
        session.execute(delete(Anchor))
    with pytest.raises(
        LedgerIntegrityError, match=f"contradicts the on-chain anchor of size 6 .*tx 0x{anchor.transaction_hash}"
    ):
        check(vault_, settings, chain, configured=(chain.address, 0))


def test_an_anchor_that_disappeared_from_the_chain_fails(vault_, settings, chain, owner, snapshot):
    revert = snapshot
    anchor = _anchored(vault_, settings, chain, owner)
    assert check(vault_, settings, chain).anchors.anchors == 1
    revert()  # the chain forgets the anchor (a reorganisation, or a node reset)
    with pytest.raises(
        LedgerIntegrityError, match=f"anchor of size 6 .*tx 0x{anchor.transaction_hash}.* is no longer on chain"
    ):
        check(vault_, settings, chain)


def test_a_missing_local_checkpoint_or_truncated_ledger_fails(vault_, settings, chain, owner):
    from vault.storage.models import Checkpoint

    _anchored(vault_, settings, chain, owner)
    with vault_.transaction() as session:
        session.execute(delete(Checkpoint))
    with pytest.raises(LedgerIntegrityError, match="No local checkpoint of size 6 exists for the anchor of size 6"):
        check(vault_, settings, chain)


def test_gas_per_anchor_does_not_depend_on_the_number_of_events(tmp_path, ganache, owner):
    """10 and 10,000 events: identical execution gas; only calldata bytes (zero or not) differ in price."""
    from bench.ledger import fill_bulk
    from tests.conftest import new_master_key
    from vault.core.config import Settings
    from vault.runtime import Vault, init_home

    gas = {}
    for n in (10, 10_000):
        home = tmp_path / f"h{n}"
        s = Settings(home=home, database_url=f"sqlite:///{home / 'vault.db'}", master_key=new_master_key())
        init_home(s)
        vault = Vault.open(s)
        fill_bulk(vault, n)
        sign(vault, s)
        chain = Chain(ganache.url, timeout=20)
        chain.deploy(owner)
        first = service.anchor_latest(vault, chain=chain, signer=owner).anchor
        add_events(vault, 1)
        sign(vault, s)
        later = service.anchor_latest(vault, chain=chain, signer=owner).anchor
        receipt_tx = chain.w3.eth.get_transaction(bytes.fromhex(later.transaction_hash))
        calldata = bytes(receipt_tx["input"])
        calldata_gas = sum(16 if b else 4 for b in calldata)
        gas[n] = (first.gas_used, later.gas_used, later.gas_used - calldata_gas)
        vault.close()
    print(f"gas per anchor (first, later, later without calldata): {gas}")
    assert gas[10][2] == gas[10_000][2]  # execution: the same to the unit
    assert abs(gas[10][1] - gas[10_000][1]) <= 12 * 8 and abs(gas[10][0] - gas[10_000][0]) <= 12 * 40


def test_confirmations_are_awaited_and_an_unconfirmed_anchor_is_recovered_later(
    vault_, settings, ganache, chain, owner
):
    import threading

    from tests.anchoring.conftest import rpc
    from vault.anchoring.chain import ChainUnavailable

    add_events(vault_, 3)
    sign(vault_, settings)
    impatient = Chain(
        ganache.url, contract=chain.address, timeout=2, confirmations=1
    )  # instamine: no block follows by itself
    with pytest.raises(ChainUnavailable, match="1 confirmations did not come within 2 s"):
        service.anchor_latest(vault_, chain=impatient, signer=owner)
    with vault_.read_transaction() as session:
        assert service.list_anchors(session) == []  # mined, not recorded
    patient = Chain(ganache.url, contract=chain.address, timeout=20, confirmations=2)
    add_events(vault_, 1)
    sign(vault_, settings)
    miner = threading.Timer(1.5, lambda: [rpc(ganache.url, "evm_mine") for _ in range(3)])
    miner.start()
    try:
        outcome = service.anchor_latest(vault_, chain=patient, signer=owner)
    finally:
        miner.join()
    assert outcome.sent and chain.block_number() >= outcome.anchor.block_number + 2
    # The earlier, unrecorded anchor is still on chain and checks out.
    report = check(vault_, settings, chain)
    assert report.anchors.anchors == 1 and report.anchors.chain_only == 1
