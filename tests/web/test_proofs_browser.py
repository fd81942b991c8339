"""In the browser: Amina's own browser checks the proof of a line of her access history.

The demo vault's clinic read Amina's allergy record; a checkpoint is signed,
Amina opens the line's proof page and her browser verifies it (WebCrypto
SHA-256, RFC 9162 inclusion, the BLS signature with the vendored noble).
Then the proof JSON is tampered with on its way to the page, one bit or one
number at a time, and each time the page must say it failed: the browser
really checks. The pure functions are also run on known answers computed
with the project's Python crypto and on the published RFC 9162 vectors.
"""

import base64
import json
import re
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect

from crypto import checkpoint as notes
from crypto import merkle
from crypto.bls import SigningKey
from tests.crypto.test_merkle_vectors import INCLUSION, LEAF_INPUTS, _load
from tests.web.conftest import browser_sign_in, check_page
from vault.ledger import ledger

pytestmark = pytest.mark.browser

PROOF_JSON = "**/proofs/entries/*.json"
VECTORS = Path(__file__).resolve().parents[1] / "vectors"


def api(live, login: str, path: str, body: dict | None = None, *, token: str | None = None):
    """The JSON API as a demo person (or the holder of ``token``); ``body`` makes it a POST."""
    headers = {"Authorization": f"Bearer {token or live.people[login]['token']}"}
    data = None
    if body is not None:
        headers["Content-Type"] = "application/json"
        data = json.dumps(body).encode()
    request = urllib.request.Request(f"{live.base}{path}", data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as answer:
        text = answer.read()
        return json.loads(text) if text else None


@pytest.fixture(scope="module")
def read_line(live_vault):
    """The ledger index of the clinic's read of Amina's record, under a signed checkpoint."""
    amina = live_vault.people["amina"]
    log = api(live_vault, "amina", f"/api/v1/subjects/{amina['id']}/access-log")
    riverside = live_vault.people["riverside"]["id"]
    index = next(i["ledger_index"] for i in log["items"] if i["actor"]["id"] == riverside and i["action"] == "read")
    live_vault.cli("checkpoint")  # signs the ledger as it is now: the read is covered
    return index


def flip_bit(data: bytes, at: int = 0) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def _flip_path(doc):
    path = doc["events"][0]["audit_path"]
    path[0] = flip_bit(bytes.fromhex(path[0])).hex()


def _flip_salt(doc):
    doc["events"][0]["salt"] = flip_bit(bytes.fromhex(doc["events"][0]["salt"])).hex()


def _flip_body(doc):
    body = doc["events"][0]["body"].encode()
    at = body.index(b'"occurred_at":"') + len('"occurred_at":"')  # a digit of the year: still JSON
    doc["events"][0]["body"] = flip_bit(body, at).decode()


def _flip_root(doc):
    lines = doc["checkpoint"].split("\n")
    lines[2] = base64.b64encode(flip_bit(base64.b64decode(lines[2]), 7)).decode()
    doc["checkpoint"] = "\n".join(lines)


def _flip_signature(doc):
    text = doc["checkpoint"]
    cut = text.rfind("\n\n")
    head, line = text[: cut + 2], text[cut + 2 :].split("\n")[0]
    dash, name, blob = line.split(" ")
    raw = base64.b64decode(blob)
    flipped = raw[:4] + flip_bit(raw[4:], 50)  # a bit of the signature's x coordinate, not its flags
    doc["checkpoint"] = text.replace(line, f"{dash} {name} {base64.b64encode(flipped).decode()}")
    doc["checkpoint_signature"]["signature"] = base64.b64encode(flipped[4:]).decode()
    assert doc["checkpoint"].startswith(head)


def _other_size(doc):
    doc["tree_size"] -= 1


def tampering_with(tamper):
    """A route handler that changes the real proof JSON with ``tamper`` on its way to the page."""

    def handler(route):
        answer = route.fetch()
        doc = answer.json()
        tamper(doc)
        route.fulfill(response=answer, body=json.dumps(doc))

    return handler


# What is changed, how, and the reason the page must give.
TAMPERING = {
    "a proof hash": (_flip_path, "the inclusion path does not lead to the checkpoint's root"),
    "the leaf's salt": (_flip_salt, "the entry's data does not hash to its leaf hash"),
    "the leaf's body": (_flip_body, "the entry's data does not hash to its leaf hash"),
    "the checkpoint's root": (_flip_root, "the checkpoint's signature does not verify"),
    "the signature": (_flip_signature, "the checkpoint's signature does not verify"),
    "another tree size": (_other_size, "the proof is for"),
}


def test_amina_s_browser_verifies_her_proof_and_refuses_every_tampered_one(
    guarded_page, live_vault, read_line, tmp_path
):
    page = guarded_page
    browser_sign_in(page, live_vault, "amina")
    key = live_vault.cli("checkpoint", "--show-key").strip()
    page.goto(f"{live_vault.base}/proofs/entries/{read_line}")
    expect(page.locator('meta[name="civicvault-ledger-key"]')).to_have_attribute("content", key)
    proof = page.locator(".cv-proof")
    expect(proof).to_have_attribute("data-state", "verified", timeout=20_000)
    expect(proof).to_contain_text("Proof verified")
    expect(proof).to_have_attribute("title", re.compile(rf"^Entry {read_line}; tree size (\d+); checkpoint size \1;"))
    check_page(page, screenshot="proof-verified")
    # The download link's file passes the offline check too.
    href = page.get_by_role("link", name="Download this proof").get_attribute("href")
    download = page.request.get(live_vault.base + href)
    (tmp_path / "proof.json").write_bytes(download.body())
    said = live_vault.cli("audit", "verify-bundle", str(tmp_path / "proof.json"), "--log-key", key)
    assert said.startswith("bundle verified: 1 events of " + live_vault.people["amina"]["id"])

    for what, (tamper, reason) in TAMPERING.items():
        page.route(PROOF_JSON, tampering_with(tamper))
        page.reload()
        expect(proof, f"tampered: {what}").to_have_attribute("data-state", "failed", timeout=20_000)
        expect(proof, f"tampered: {what}").to_contain_text(f"Proof failed: {reason}")
        page.unroute(PROOF_JSON)
    page.reload()
    expect(proof).to_have_attribute("data-state", "verified", timeout=20_000)


def _flip_cosignature(doc):
    text = doc["checkpoint"]
    line = text.rstrip("\n").split("\n")[-1]  # the witness's line comes after the node's
    dash, name, blob = line.split(" ")
    raw = base64.b64decode(blob)
    doc["checkpoint"] = text.replace(
        line, f"{dash} {name} {base64.b64encode(raw[:4] + flip_bit(raw[4:], 50)).decode()}"
    )


def test_a_witness_cosignature_is_checked_against_the_witness_key_the_page_names(guarded_page, live_vault, read_line):
    page = guarded_page
    witness = json.loads(live_vault.cli("principal", "add", "--role", "witness", "--name", "County Witness", "--json"))
    key = SigningKey(bytes(range(100, 132)))
    registration = {"public_key": key.public_key.hex(), "proof_of_possession": key.prove_possession().hex()}
    api(live_vault, "", "/api/v1/ledger/witnesses", registration, token=witness["token"])
    latest = api(live_vault, "", "/api/v1/ledger/checkpoint", token=witness["token"])
    checkpoint = notes.parse_note(latest["note"])[0]
    cosignature = base64.b64encode(notes.cosign(checkpoint, key=key)).decode()
    cosigned = {"tree_size": checkpoint.size, "root_hash": checkpoint.root.hex(), "signature": cosignature}
    assert api(live_vault, "", "/api/v1/ledger/cosignatures", cosigned, token=witness["token"])["cosigners"] == 1

    browser_sign_in(page, live_vault, "amina")
    page.goto(f"{live_vault.base}/proofs/entries/{read_line}")
    witnesses = page.locator('meta[name="civicvault-witness-keys"]')
    expect(witnesses).to_have_attribute("content", f"{witness['id']}:{key.public_key.hex()}")
    proof = page.locator(".cv-proof")
    expect(proof).to_have_attribute("data-state", "verified", timeout=20_000)
    expect(proof).to_have_attribute("title", re.compile("cosigned by 1 of this page's witnesses$"))
    check_page(page)
    page.route(PROOF_JSON, tampering_with(_flip_cosignature))
    page.reload()
    expect(proof).to_have_attribute("data-state", "failed", timeout=20_000)
    expect(proof).to_contain_text("Proof failed: the witnesses' cosignatures do not verify")


def test_the_pure_functions_agree_with_the_python_crypto_and_the_published_vectors(guarded_page, live_vault):
    page = guarded_page
    browser_sign_in(page, live_vault, "amina")
    page.goto(f"{live_vault.base}/account")
    check_page(page)

    # Every leaf of every tree of 1 to 8 leaves (RFC 6962/9162 test data), proofs from our own generator.
    leaves = [merkle.leaf_hash(d) for d in LEAF_INPUTS]
    ours = []
    for size in range(1, len(leaves) + 1):
        root = merkle.root_from_leaves(leaves[:size])
        for index in range(size):
            path = merkle.inclusion_proof(index, size, lambda s, e: merkle.root_from_leaves(leaves[s:e]))
            ours.append([leaves[index].hex(), index, size, [p.hex() for p in path], root.hex(), True])
            if path:
                ours.append([leaves[index].hex(), index, size, [flip_bit(path[0]).hex()], root.hex(), False])
            ours.append([leaves[index].hex(), index, size + 1, [p.hex() for p in path], root.hex(), None])
    # transparency-dev/merkle's inclusion vectors, good and corrupted: the browser must agree with Python.
    published = []
    for name in INCLUSION:
        v = _load(name)
        path = [base64.b64decode(p).hex() for p in v["proof"] or []]
        leaf, root = base64.b64decode(v["leafHash"]).hex(), base64.b64decode(v["root"]).hex()
        published.append([leaf, v["leafIdx"], v["treeSize"], path, root, not v["wantErr"]])
    for case in ours:
        if case[5] is None:  # a bigger size: what Python says (sizes may share a proof; the checkpoint binds it)
            try:
                path = [bytes.fromhex(p) for p in case[3]]
                merkle.verify_inclusion(case[1], case[2], bytes.fromhex(case[0]), path, bytes.fromhex(case[4]))
                case[5] = True
            except merkle.ProofError:
                case[5] = False
    cases = ours + published
    got = page.evaluate(
        """async (cases) => {
            const m = await import("/assets/js/proofs.js");
            return Promise.all(cases.map(([leaf, i, n, path, root]) => m.verifyInclusion(leaf, i, n, path, root)));
        }""",
        cases,
    )
    assert got == [case[5] for case in cases]

    # Leaf hashes of ledger entries, from salt and body (docs/ledger-format.md section 2).
    salt, body = bytes(range(32)), '{"actor_id":"p-1","data":{"é":"ü"},"kind":"access.permitted","v":1}'
    leaf = page.evaluate(
        """async ([salt, body]) => {
            const m = await import("/assets/js/proofs.js");
            return m.toHex(await m.entryLeafHash(salt, body));
        }""",
        [salt.hex(), body],
    )
    assert leaf == ledger.leaf_hash_of(salt, body.encode("utf-8")).hex()

    # BLS: a checkpoint signed by py-ecc verifies in noble with the POP ciphersuite, and nothing else does.
    node = SigningKey(bytes(range(32, 64)))
    checkpoint = notes.Checkpoint(origin="civicvault", size=26, root=merkle.root_from_leaves(leaves))
    signed = notes.sign(checkpoint, name="civicvault", key=node)
    other = SigningKey(bytes(range(64, 96)))
    bls_cases = [
        [checkpoint.body(), signed.signature.hex(), node.public_key.hex(), True],
        [checkpoint.body().replace("26", "27"), signed.signature.hex(), node.public_key.hex(), False],
        [checkpoint.body(), flip_bit(signed.signature, 50).hex(), node.public_key.hex(), False],
        [checkpoint.body(), signed.signature.hex(), other.public_key.hex(), False],
        [checkpoint.cosigned_message().decode(), notes.cosign(checkpoint, key=node).hex(), node.public_key.hex(), True],
        [checkpoint.body(), notes.cosign(checkpoint, key=node).hex(), node.public_key.hex(), False],
        [checkpoint.body(), "00" * 96, node.public_key.hex(), False],
    ]
    got = page.evaluate(
        """async (cases) => {
            const m = await import("/assets/js/proofs.js");
            const out = [];
            for (const [note, sig, key] of cases) out.push(await m.verifyCheckpoint(note, sig, key));
            return out;
        }""",
        bls_cases,
    )
    assert got == [case[3] for case in bls_cases]

    # The project's signed-note vectors: the log's signature, good, forged, replayed and malformed.
    # With the vectors' witness as the roster, the cosignatures too (a threshold of one).
    vectors = json.loads((VECTORS / "checkpoint-note-v2.json").read_text(encoding="utf-8"))
    got = page.evaluate(
        """async ([notes, key, roster]) => {
            const m = await import("/assets/js/proofs.js");
            const out = [];
            for (const note of notes) {
                try { m.parseNote(note); } catch { out.push(["malformed"]); continue; }
                let log = "ok", cosigned = "invalid";
                try { await m.verifySignedNote(note, key, { acceptLegacyKeyId: false }); } catch { log = "invalid"; }
                try { if ((await m.verifyCosignatures(note, roster)).length >= 1) cosigned = "ok"; } catch {}
                out.push([log, cosigned]);
            }
            return out;
        }""",
        [
            [v["note"] for v in vectors["vectors"]],
            vectors["log"]["public_key"],
            {vectors["witness"]["name"]: vectors["witness"]["public_key"]},
        ],
    )
    for vector, answer in zip(vectors["vectors"], got, strict=True):
        assert answer[0] == vector["log"], vector["name"]
        if "cosigned" in vector:
            assert answer[1] == vector["cosigned"], vector["name"]
