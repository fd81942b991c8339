"""Proofs of access-log lines for the browser: the JSON a page's script checks, and the proof details page.

The JSON must be complete and correct on its own: the project's Python
verifier (``crypto``: leaf from salt and body, RFC 9162 inclusion, the signed
note under the ledger key) and ``civicvault audit verify-bundle``'s function
accept it, with the key taken from the page, not from the JSON.
"""

import json
import re
from types import SimpleNamespace

import pytest

from crypto import checkpoint as notes
from crypto import merkle
from tests.api.conftest import add_record, grant
from vault.keys import ledger_key
from vault.ledger import checkpoints, ledger
from vault.storage.models import Event
from vault.verification.bundles import verify_bundle


def auth(who) -> dict:
    return {"Authorization": f"Bearer {who.token}"}


def bearer(who) -> SimpleNamespace:
    """A page test's person as the API helpers take one (``id`` and ``auth``)."""
    return SimpleNamespace(id=who.id, auth=auth(who))


@pytest.fixture
def node_key(vault_):
    """The vault's ledger key, in its home as `civicvault init` makes it."""
    ledger_key.create(vault_.settings.ledger_key_file)
    return ledger_key.read(vault_.settings.ledger_key_file)


@pytest.fixture
def sign(vault_, node_key, clock):
    """Sign a checkpoint of the ledger as it is now (as `civicvault checkpoint` does)."""

    def sign_now():
        with vault_.transaction() as session:
            return checkpoints.sign_now(session, key=node_key, origin=vault_.settings.ledger_origin, now=clock.now)

    return sign_now


@pytest.fixture
def story(client, person, make_actor, clock):
    """Amina's record read by a clinic under her grant; the read's ledger index."""
    amina = person("resident", "Amina Yusuf")
    clinic = make_actor("clinic", "Riverside Clinic")
    record = add_record(client, bearer(amina))
    grant(client, bearer(amina), clinic, clock)
    answer = client.get(f"/api/v1/records/{record}?purpose=treatment", headers=clinic.auth)
    assert answer.status_code == 200
    receipt = answer.get_json()["receipt"]
    assert receipt["status"] == "sequenced"

    class Story:
        pass

    Story.amina, Story.clinic, Story.record, Story.index, Story.leaf_hash = (
        amina,
        clinic,
        record,
        receipt["leaf_index"],
        receipt["leaf_hash"],
    )
    return Story


def page_key(html: str) -> bytes:
    found = re.search(r'<meta name="civicvault-ledger-key" content="([0-9a-f]{96})">', html)
    assert found, "the page names no ledger key"
    return bytes.fromhex(found.group(1))


def test_the_json_of_a_residents_own_entry_verifies_with_the_python_verifier(story, signed_in, sign, node_key):
    sign()
    browser = signed_in(story.amina)
    home = browser.get(f"/proofs/entries/{story.index}")
    key = page_key(home.get_data(as_text=True))
    assert key == node_key.public_key

    answer = browser.get(f"/proofs/entries/{story.index}.json")
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    assert answer.headers["Cache-Control"] == "no-store"
    doc = answer.get_json()
    assert doc["state"] == "sequenced" and doc["leaf_index"] == story.index and doc["leaf_hash"] == story.leaf_hash
    assert doc["ledger_public_key"] == key.hex()

    # Checked with the page's key, step by step, as the browser does.
    checkpoint, lines = notes.verify_note(doc["checkpoint"], public_key=key)
    assert checkpoint.size == doc["tree_size"] > story.index
    node_line = next(line for line in lines if line.name == checkpoint.origin)
    assert doc["checkpoint_signature"]["key_id"] == node_line.key_id.hex()
    [event] = doc["events"]
    leaf = ledger.leaf_hash_of(bytes.fromhex(event["salt"]), event["body"].encode("utf-8"))
    assert leaf.hex() == story.leaf_hash
    assert json.loads(event["body"])["subject_id"] == story.amina.id
    assert json.loads(event["body"])["actor_id"] == story.clinic.id
    merkle.verify_inclusion(
        event["leaf_index"], checkpoint.size, leaf, [bytes.fromhex(h) for h in event["audit_path"]], checkpoint.root
    )
    # And whole, as `civicvault audit verify-bundle` checks a downloaded proof.
    verified, count = verify_bundle(doc, log_key=key)
    assert count == 1 and verified.size == checkpoint.size


def test_an_entry_is_found_by_its_leaf_hash_as_well(story, signed_in, sign):
    sign()
    doc = signed_in(story.amina).get(f"/proofs/entries/{story.leaf_hash}.json").get_json()
    assert doc["state"] == "sequenced" and doc["leaf_index"] == story.index


def test_a_tampered_answer_would_not_verify(story, signed_in, sign, node_key):
    """The checks above are not vacuous: a flipped bit in the data, the path or the root fails them."""
    sign()
    doc = signed_in(story.amina).get(f"/proofs/entries/{story.index}.json").get_json()
    body = doc["events"][0]["body"].replace(story.clinic.id, story.clinic.id[:-1] + "x")
    with pytest.raises(Exception, match="not in the signed log"):
        verify_bundle({**doc, "events": [{**doc["events"][0], "body": body}]}, log_key=node_key.public_key)
    other = ledger_key.SigningKey(b"\x07" * 32)
    with pytest.raises(Exception, match="not signed by the given log key"):
        verify_bundle(doc, log_key=other.public_key)


def test_the_proof_is_at_the_latest_checkpoints_size(story, signed_in, sign, client, clock):
    sign()
    # More entries after the checkpoint: the proof stays at the signed size.
    add_record(client, bearer(story.amina), category="health.medications")
    with_more = signed_in(story.amina).get(f"/proofs/entries/{story.index}.json").get_json()
    first = notes.parse_note(with_more["checkpoint"])[0]
    assert with_more["tree_size"] == first.size
    later = sign()
    doc = signed_in(story.amina).get(f"/proofs/entries/{story.index}.json").get_json()
    assert doc["tree_size"] == later.tree_size > first.size


def test_an_entry_no_checkpoint_covers_yet_is_pending(story, signed_in):
    browser = signed_in(story.amina)
    doc = browser.get(f"/proofs/entries/{story.index}.json").get_json()
    assert doc == {
        "state": "pending",
        "waiting_for": "checkpoint",
        "event_id": str(story.index),
        "leaf_hash": story.leaf_hash,
        "leaf_index": story.index,
    }
    html = browser.get(f"/proofs/entries/{story.index}").get_data(as_text=True)
    assert "no signed checkpoint covers it yet" in html


def test_another_residents_entry_an_unknown_id_and_other_kinds_are_404(story, signed_in, person, sign, vault_):
    sign()
    tomasz = signed_in(person("resident", "Tomasz Nowak"))
    unknown = tomasz.get("/proofs/entries/999999.json")
    assert unknown.status_code == 404
    for url in (f"/proofs/entries/{story.index}.json", f"/proofs/entries/{story.leaf_hash}.json"):
        foreign = tomasz.get(url)
        assert foreign.status_code == 404 and foreign.data == unknown.data
    assert tomasz.get(f"/proofs/entries/{story.index}").status_code == 404
    # An entry about Amina that is not a line of her access log (her grant) is not served either.
    amina = signed_in(story.amina)
    with vault_.read_transaction() as session:
        granted = session.query(Event).filter_by(kind="consent.granted", subject_id=story.amina.id).one()
    assert amina.get(f"/proofs/entries/{granted.ledger_index}.json").status_code == 404
    for bad in ("abc", "-1", "0x10", "1" * 40, "A" * 64, "%20"):
        assert amina.get(f"/proofs/entries/{bad}.json").status_code == 404


def test_a_delegate_sees_the_proof_and_a_former_one_does_not(story, signed_in, person, sign, client, clock):
    sign()
    tomasz = person("resident", "Tomasz Nowak")
    made = client.post(
        "/api/v1/delegations",
        json={"delegate_id": tomasz.id, "expires_at": clock.at(days=10)},
        headers=auth(story.amina),
    )
    assert made.status_code == 201, made.get_json()
    browser = signed_in(tomasz)
    assert browser.get(f"/proofs/entries/{story.index}.json").get_json()["state"] == "sequenced"
    page = browser.get(f"/proofs/entries/{story.index}").get_data(as_text=True)
    assert "Amina Yusuf" in page  # whom the line is about
    ended = client.post(f"/api/v1/delegations/{made.get_json()['id']}/revoke", json={}, headers=auth(story.amina))
    assert ended.status_code == 200
    assert browser.get(f"/proofs/entries/{story.index}.json").status_code == 404


def test_compliance_sees_it_and_a_clinic_or_a_stranger_does_not(story, signed_in, person, sign, client):
    sign()
    officer = signed_in(person("compliance"))
    assert officer.get(f"/proofs/entries/{story.index}.json").get_json()["state"] == "sequenced"
    clinic = signed_in(person("clinic"))
    assert clinic.get(f"/proofs/entries/{story.index}.json").status_code == 404
    assert clinic.get(f"/proofs/entries/{story.index}").status_code == 404
    stranger = client.get(f"/proofs/entries/{story.index}.json")
    assert stranger.status_code == 302 and "/signin" in stranger.headers["Location"]


def test_the_details_page_shows_the_access_the_proof_and_how_to_check_it(story, signed_in, sign, node_key):
    signed = sign()
    answer = signed_in(story.amina).get(f"/proofs/entries/{story.index}")
    assert answer.status_code == 200 and answer.mimetype == "text/html"
    html = answer.get_data(as_text=True)
    assert html.count("<h1") == 1 and "style=" not in html and "<script>" not in html
    assert "Riverside Clinic" in html and "Read a record" in html and "treatment" in html and "A grant" in html
    assert story.leaf_hash in html and f"<dd>{signed.tree_size}</dd>" in html
    assert signed.note in html  # the signed note as it is (base64 and an em dash: nothing to escape)
    proof = (
        f'<span class="cv-proof" role="status" data-state="pending" data-proof-url="/proofs/entries/{story.index}.json"'
    )
    assert proof in html
    assert "--log-key" in html and node_key.public_key.hex() in html
    assert '<script type="module" src="/assets/js/proofs.js"></script>' in html
    assert f"/api/v1/ledger/proofs/inclusion?leaf_index={story.index}&amp;tree_size={signed.tree_size}" in html


def test_every_resident_page_carries_the_ledger_key_and_others_do_not(story, signed_in, person, node_key):
    home = signed_in(story.amina).get("/account").get_data(as_text=True)
    assert page_key(home) == node_key.public_key
    clinic_page = signed_in(person("clinic")).get("/account").get_data(as_text=True)
    assert "civicvault-ledger-key" not in clinic_page and "proofs.js" not in clinic_page


def test_without_a_ledger_key_the_page_says_so_and_names_none(story, signed_in, vault_):
    assert not vault_.settings.ledger_key_file.exists()
    html = signed_in(story.amina).get(f"/proofs/entries/{story.index}").get_data(as_text=True)
    assert "civicvault-ledger-key" not in html


def test_the_registered_witnesses_keys_are_on_the_page_for_the_script(story, signed_in, make_actor, client, node_key):
    html = signed_in(story.amina).get("/account").get_data(as_text=True)
    assert "civicvault-witness-keys" not in html  # none registered
    witness = make_actor("witness", "County Witness")
    key = ledger_key.SigningKey(b"\x09" * 32)
    body = {"public_key": key.public_key.hex(), "proof_of_possession": key.prove_possession().hex()}
    assert client.post("/api/v1/ledger/witnesses", json=body, headers=witness.auth).status_code == 204
    html = signed_in(story.amina).get("/account").get_data(as_text=True)
    assert (
        f'<meta name="civicvault-witness-keys" content="{witness.id}:{key.public_key.hex()}" data-threshold="1">'
        in html
    )
