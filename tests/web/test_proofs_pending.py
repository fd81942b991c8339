"""A line whose entry the sequencer has not reached yet: its proof is ``pending``, found by its leaf hash.

The vault here waits for no sequencer (``CIVICVAULT_SEQUENCER=external``, no
wait), as when ``civicvault sequencer`` is behind: the read's receipt names
its entry by leaf hash only, and the proof says ``pending`` until the entry is
sequenced, and then until a signed checkpoint covers it.
"""

import dataclasses

import pytest

from tests.api.conftest import add_record, grant
from tests.web.test_proofs_pages import bearer
from vault.core.config import SequencerSettings
from vault.ledger import ledger


@pytest.fixture
def settings(settings):
    return dataclasses.replace(settings, sequencer=SequencerSettings(mode="external", receipt_wait_ms=0))


def test_a_pending_entry_answers_pending_until_sequenced_and_signed(
    client, person, make_actor, signed_in, vault_, clock
):
    amina, tomasz = person("resident", "Amina Yusuf"), person("resident", "Tomasz Nowak")
    clinic = make_actor("clinic")
    record = add_record(client, bearer(amina))
    grant(client, bearer(amina), clinic, clock)
    receipt = client.get(f"/api/v1/records/{record}?purpose=treatment", headers=clinic.auth).get_json()["receipt"]
    assert receipt["status"] == "pending"
    leaf_hash = receipt["leaf_hash"]

    browser = signed_in(amina)
    answer = browser.get(f"/proofs/entries/{leaf_hash}.json")
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    assert answer.get_json() == {
        "state": "pending",
        "waiting_for": "sequencer",
        "event_id": leaf_hash,
        "leaf_hash": leaf_hash,
        "leaf_index": None,
    }
    page = browser.get(f"/proofs/entries/{leaf_hash}")
    assert page.status_code == 200 and "waiting for its place in the ledger" in page.get_data(as_text=True)
    # Another resident gets the unknown id's 404 for a pending entry too.
    assert signed_in(tomasz).get(f"/proofs/entries/{leaf_hash}.json").status_code == 404

    with vault_.transaction() as session:
        ledger.sequence_now(session)
    sequenced = browser.get(f"/proofs/entries/{leaf_hash}.json").get_json()
    assert sequenced["state"] == "pending" and sequenced["waiting_for"] == "checkpoint"
    assert isinstance(sequenced["leaf_index"], int)
