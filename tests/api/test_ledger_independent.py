"""An independent verifier, written only from docs/ledger-format.md.

It imports nothing of the ledger or crypto code: hashlib and JSON only. It
recomputes every leaf from the stored events, the root from the leaves, and
checks a read's receipt with an inclusion proof fetched from the API.
"""

import base64
import hashlib

from py_ecc.bls import G2ProofOfPossession
from sqlalchemy import text

from tests.api.conftest import add_record, grant


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def leaf_hash(entry: bytes) -> bytes:
    return sha256(b"\x00" + entry)


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right)


def entry(salt: bytes, body: bytes) -> bytes:
    return b"\x01" + sha256(b"civicvault-ledger-entry-v1" + b"\x00" + salt + body)


def mth(leaves: list[bytes]) -> bytes:
    if not leaves:
        return sha256(b"")
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def root_from_path(index: int, size: int, leaf: bytes, path: list[bytes]) -> bytes:
    if index >= size:
        raise ValueError("index out of range")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise ValueError("proof too long")
        if fn % 2 == 1 or fn == sn:
            r = node_hash(p, r)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("proof too short")
    return r


def stored_leaves(vault_) -> list[bytes]:
    with vault_.engine.connect() as connection:
        rows = connection.execute(text("SELECT ledger_index, salt, body FROM events ORDER BY ledger_index")).all()
    assert [r[0] for r in rows] == list(range(len(rows))), "indices must be gap-free from 0"
    return [leaf_hash(entry(bytes(salt), bytes(body))) for _, salt, body in rows]


def test_a_read_receipt_verifies_with_an_independent_verifier(client, vault_, cast, clock):
    record = add_record(client, cast.amina, content={"substance": "penicillin"})
    grant(client, cast.amina, cast.clinic, clock)
    read = client.get(f"/api/v1/records/{record}?purpose=treatment", headers=cast.clinic.auth).get_json()
    receipt = read["receipt"]
    for _ in range(5):  # the log grows after the read
        client.get(f"/api/v1/records/{record}", headers=cast.amina.auth)

    proof = client.get(
        f"/api/v1/ledger/proofs/inclusion?leaf_index={receipt['leaf_index']}", headers=cast.landlord.auth
    ).get_json()
    assert proof["leaf_hash"] == receipt["leaf_hash"]
    computed = root_from_path(
        proof["leaf_index"],
        proof["tree_size"],
        bytes.fromhex(receipt["leaf_hash"]),
        [bytes.fromhex(h) for h in proof["audit_path"]],
    )
    assert computed.hex() == proof["root_hash"]

    leaves = stored_leaves(vault_)
    assert len(leaves) == proof["tree_size"]
    assert leaves[receipt["leaf_index"]].hex() == receipt["leaf_hash"]  # the leaf is the stored event, salted
    assert mth(leaves).hex() == proof["root_hash"]

    # A tampered leaf or path does not verify to that root.
    flipped = bytearray.fromhex(receipt["leaf_hash"])
    flipped[0] ^= 1
    assert (
        root_from_path(
            proof["leaf_index"], proof["tree_size"], bytes(flipped), [bytes.fromhex(h) for h in proof["audit_path"]]
        ).hex()
        != proof["root_hash"]
    )


def test_every_size_and_index_verifies_and_consistency_holds(client, vault_, cast):
    for i in range(12):
        add_record(client, cast.amina, content={"i": i})
    leaves = stored_leaves(vault_)
    n = len(leaves)
    for size in range(1, n + 1):
        root = mth(leaves[:size])
        for index in range(size):
            proof = client.get(
                f"/api/v1/ledger/proofs/inclusion?leaf_index={index}&tree_size={size}", headers=cast.amina.auth
            ).get_json()
            assert proof["root_hash"] == root.hex()
            assert root_from_path(index, size, leaves[index], [bytes.fromhex(h) for h in proof["audit_path"]]) == root
    for first in range(1, n + 1):
        proof = client.get(
            f"/api/v1/ledger/proofs/consistency?first={first}&second={n}", headers=cast.amina.auth
        ).get_json()
        assert proof["first_root"] == mth(leaves[:first]).hex() and proof["second_root"] == mth(leaves).hex()


def test_a_receipt_verifies_against_the_latest_signed_checkpoint(client, vault_, settings, cast, clock):
    """The full chain: receipt -> inclusion proof -> root in a checkpoint signed by the pinned node key."""
    from vault.keys import ledger_key  # only to have the node sign, as `civicvault checkpoint` does
    from vault.ledger import checkpoints

    ledger_key.create(settings.ledger_key_file)
    node_key = ledger_key.read(settings.ledger_key_file)
    pinned_public_key = node_key.public_key  # what `civicvault checkpoint --show-key` prints
    record = add_record(client, cast.amina, content={"x": 1})
    grant(client, cast.amina, cast.clinic, clock)
    receipt = client.get(f"/api/v1/records/{record}?purpose=treatment", headers=cast.clinic.auth).get_json()["receipt"]
    with vault_.transaction() as session:
        checkpoints.sign_now(session, key=node_key, origin="civicvault", now=clock.now)

    served = client.get("/api/v1/ledger/checkpoint", headers=cast.clinic.auth).get_json()
    body_text, _, signature_lines = served["note"].partition("\n\n")
    body = (body_text + "\n").encode("utf-8")
    origin, size_text, root_b64, end = body.decode().split("\n")
    assert end == "" and origin == "civicvault"
    size, root = int(size_text), base64.b64decode(root_b64)
    line = signature_lines.strip()
    dash, name, blob_b64 = line.split(" ")
    assert dash == "\u2014" and name == "civicvault"
    blob = base64.b64decode(blob_b64)
    key_id, signature = blob[:4], blob[4:]
    # signed-note key id: type 0xFF (no byte assigned to BLS12-381), then this format's identifier.
    signature_type = b"\xff" + b"civicvault-note-bls12381-pop/v1"
    assert key_id == sha256(name.encode() + b"\n" + signature_type + pinned_public_key)[:4]
    assert G2ProofOfPossession.Verify(pinned_public_key, body, signature)

    proof = client.get(
        f"/api/v1/ledger/proofs/inclusion?leaf_index={receipt['leaf_index']}&tree_size={size}", headers=cast.clinic.auth
    ).get_json()
    computed = root_from_path(
        receipt["leaf_index"],
        size,
        bytes.fromhex(receipt["leaf_hash"]),
        [bytes.fromhex(h) for h in proof["audit_path"]],
    )
    assert computed == root
    # A checkpoint body with another root does not carry the node's signature.
    forged = body.replace(root_b64.encode(), base64.b64encode(bytes(32)))
    assert not G2ProofOfPossession.Verify(pinned_public_key, forged, signature)
    # Nor does a witness's cosigned message (its header line, then the note text) carry it.
    assert not G2ProofOfPossession.Verify(pinned_public_key, b"civicvault-cosignature/v1\n" + body, signature)
