"""Periodic anchoring: when it is due, one sender at a time, back-off while the node is down, requests unaffected."""

import logging
import socket
import time
from datetime import timedelta

import pytest

from tests.anchoring.conftest import OWNER_KEY, free_port
from tests.anchoring.helpers import T0, add_events, sign
from vault.anchoring import service
from vault.anchoring.background import Anchorer, start_in_worker
from vault.anchoring.chain import Chain
from vault.anchoring.settings import AnchorSettings
from vault.storage.models import Anchor


def settings_for(home, **values) -> AnchorSettings:
    return AnchorSettings(
        home=home,
        rpc_url=values.pop("rpc_url", "http://127.0.0.1:1"),
        contract=values.pop("contract", "0x" + "ab" * 20),
        **values,
    )


def test_due_after_every_n_checkpoints_or_t_minutes(vault_, settings):
    vault_.clock = lambda: T0
    with vault_.read_transaction() as session:
        assert not service.is_due(session, every=1, minutes=1, now=T0)  # no checkpoint at all
    add_events(vault_, 2)
    sign(vault_, settings)
    with vault_.read_transaction() as session:
        assert service.is_due(session, every=1, minutes=0, now=T0)
        assert not service.is_due(session, every=2, minutes=0, now=T0)
        assert service.is_due(session, every=2, minutes=30, now=T0)  # never anchored: time says now
        assert not service.is_due(session, every=0, minutes=0, now=T0)
    with vault_.transaction() as session:
        session.add(
            Anchor(
                origin="civicvault",
                tree_size=2,
                root=b"\x01" * 32,
                chain_id=1,
                contract="0x" + "ab" * 20,
                tx_hash=b"\x02" * 32,
                block_number=1,
                block_hash=b"\x03" * 32,
                gas_used=1,
                anchored_at=T0,
            )
        )
    add_events(vault_, 1)
    sign(vault_, settings)
    with vault_.read_transaction() as session:
        assert service.is_due(session, every=1, minutes=0, now=T0)
        assert not service.is_due(session, every=2, minutes=30, now=T0 + timedelta(minutes=29))
        assert service.is_due(session, every=2, minutes=30, now=T0 + timedelta(minutes=30))


def test_an_idle_vault_does_not_anchor_its_own_anchoring_records_forever(vault_, settings, chain, owner):
    add_events(vault_, 2)
    sign(vault_, settings)
    anchorer = Anchorer(
        vault=vault_, settings=settings_for(settings.home, every=1, minutes=1), signer=owner, holder="w1", chain=chain
    )
    anchorer.round()
    sign(vault_, settings)  # the background signer: the only new entry is the checkpoint.anchored event
    with vault_.read_transaction() as session:
        assert not service.is_due(session, every=1, minutes=1, now=T0 + timedelta(days=1))
    anchorer.round()
    add_events(vault_, 1)  # real activity
    sign(vault_, settings)
    with vault_.read_transaction() as session:
        assert service.is_due(session, every=1, minutes=0, now=T0)
    anchorer.round()
    with vault_.read_transaction() as session:
        # 2 events (anchored at 2), the anchoring record (size 3, not anchored), 1 more event: anchored at 4.
        assert [a.tree_size for a in service.list_anchors(session)] == [4, 2]


def test_one_sender_at_a_time(vault_):
    now = T0
    assert service.take_lease(vault_, holder="a", now=now, seconds=60)
    assert not service.take_lease(vault_, holder="b", now=now, seconds=60)
    assert service.take_lease(vault_, holder="b", now=now + timedelta(seconds=61), seconds=60)  # a's lease ran out
    service.release_lease(vault_, holder="a")  # not a's any more: changes nothing
    assert not service.take_lease(vault_, holder="c", now=now + timedelta(seconds=62), seconds=60)
    service.release_lease(vault_, holder="b")
    assert service.take_lease(vault_, holder="c", now=now + timedelta(seconds=62), seconds=60)


def test_a_node_that_is_down_is_retried_with_backoff_then_anchored(vault_, settings, chain, owner, caplog):
    add_events(vault_, 4)
    sign(vault_, settings)
    down = Chain(f"http://127.0.0.1:{free_port()}", contract=chain.address, timeout=2)
    anchorer = Anchorer(
        vault=vault_, settings=settings_for(settings.home, every=1, timeout=2), signer=owner, holder="w1", chain=down
    )
    with caplog.at_level(logging.INFO, logger="civicvault.anchoring"):
        assert [anchorer.round() for _ in range(8)] == [5, 10, 20, 40, 80, 160, 320, 600]
        assert "did not answer" in caplog.text and "retrying in 600 s" in caplog.text
        anchorer.chain = chain  # the node is back
        assert anchorer.round() == anchorer.pause and anchorer.failures == 0
        assert "anchored checkpoint of size 4" in caplog.text
    assert chain.anchor_of("civicvault", 4).present
    assert anchorer.round() == anchorer.pause  # nothing new: nothing sent
    with vault_.read_transaction() as session:
        assert len(service.list_anchors(session)) == 1
    assert OWNER_KEY[2:] not in caplog.text and OWNER_KEY[2:].upper() not in caplog.text


def test_requests_are_served_while_the_anchorer_waits_on_a_hanging_node(
    vault_, settings, client, make_actor, chain, owner
):
    reader = make_actor("resident")
    add_events(vault_, 2)
    sign(vault_, settings)
    with socket.socket() as hole:  # accepts connections, never answers
        hole.bind(("127.0.0.1", 0))
        hole.listen(8)
        hole.settimeout(20)
        hanging = Chain(f"http://127.0.0.1:{hole.getsockname()[1]}", contract=chain.address, timeout=15)
        anchorer = Anchorer(
            vault=vault_,
            settings=settings_for(settings.home, every=1, timeout=15),
            signer=owner,
            holder="w1",
            chain=hanging,
        )
        thread = anchorer.start()
        connection, _ = hole.accept()  # the anchorer is now waiting on the node
        try:
            began = time.monotonic()
            for _ in range(5):
                assert client.get("/api/v1/me", headers=reader.auth).status_code == 200
                assert client.get("/api/v1/ledger/anchors", headers=reader.auth).get_json() == {"anchors": []}
                assert client.get("/api/v1/ledger/checkpoint", headers=reader.auth).status_code == 200
            add_events(vault_, 3)  # writers are not held up either
            assert time.monotonic() - began < 5
            assert thread.is_alive() and anchorer.failures == 0
        finally:
            anchorer.stop.set()
            connection.close()
        thread.join(timeout=20)
    assert not thread.is_alive() and anchorer.failures == 1


def test_no_background_anchoring_unless_configured(vault_, settings):
    assert start_in_worker(vault_, AnchorSettings(home=settings.home), holder="w") is None
    assert start_in_worker(vault_, AnchorSettings(home=settings.home, rpc_url="http://127.0.0.1:1"), holder="w") is None
    assert AnchorSettings(home=settings.home, rpc_url="http://x", minutes=5).background


def test_anchor_settings_from_the_environment(tmp_path):
    from vault.core.errors import ConfigError

    values = AnchorSettings.from_env(
        tmp_path,
        {
            "CIVICVAULT_ANCHOR_RPC_URL": "http://node:8545",
            "CIVICVAULT_ANCHOR_EVERY": "3",
            "CIVICVAULT_ANCHOR_MINUTES": "10",
            "CIVICVAULT_ANCHOR_CONFIRMATIONS": "2",
            "CIVICVAULT_ANCHOR_CHAIN_ID": "1337",
            "CIVICVAULT_ANCHOR_PRIVATE_KEY": OWNER_KEY,
        },
    )
    assert (values.rpc_url, values.every, values.minutes, values.confirmations, values.chain_id) == (
        "http://node:8545",
        3,
        10,
        2,
        1337,
    )
    assert OWNER_KEY[2:] not in repr(values) and OWNER_KEY[2:] not in repr(values.signer())
    assert values.signer().address.startswith("0x")
    for name, value in (
        ("CIVICVAULT_ANCHOR_EVERY", "-1"),
        ("CIVICVAULT_ANCHOR_TIMEOUT", "0"),
        ("CIVICVAULT_ANCHOR_CONTRACT", "0x12"),
        ("CIVICVAULT_ANCHOR_RPC_URL", "ws://node"),
        ("CIVICVAULT_ANCHOR_RPC_URL", "127.0.0.1:8545"),
    ):
        with pytest.raises(ConfigError, match=name):
            AnchorSettings.from_env(tmp_path, {name: value})
    for bad in ("0x" + "00" * 32, "zz" * 32, "0x" + "ff" * 32):  # zero, not hex, beyond the curve order
        with pytest.raises(ConfigError) as failure:
            AnchorSettings.from_env(tmp_path, {"CIVICVAULT_ANCHOR_PRIVATE_KEY": bad}).signer()
        assert bad[2:] not in failure.value.detail
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(values.signer())
