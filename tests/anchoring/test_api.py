"""GET /api/v1/ledger/anchors and proofs against the latest anchored size."""

from crypto import merkle
from tests.anchoring.helpers import add_events, sign
from tests.api.helpers import assert_problem
from vault.anchoring import service


def _anchor(vault_, settings, chain, owner, n):
    add_events(vault_, n)
    sign(vault_, settings)
    return service.anchor_latest(vault_, chain=chain, signer=owner).anchor


def test_anchors_are_listed_with_chain_transaction_and_block(client, vault_, settings, chain, owner, make_actor):
    reader = make_actor("resident")
    assert client.get("/api/v1/ledger/anchors", headers=reader.auth).get_json() == {"anchors": []}
    first = _anchor(vault_, settings, chain, owner, 3)
    second = _anchor(vault_, settings, chain, owner, 2)
    body = client.get("/api/v1/ledger/anchors", headers=reader.auth).get_json()
    assert [a["tree_size"] for a in body["anchors"]] == [second.tree_size, first.tree_size]
    shown = body["anchors"][1]
    assert shown == {
        "origin": "civicvault",
        "tree_size": first.tree_size,
        "root_hash": first.root_hash,
        "chain_id": 1337,
        "contract": chain.address,
        "transaction_hash": "0x" + first.transaction_hash,
        "block_number": first.block_number,
        "block_hash": "0x" + first.block_hash,
        "gas_used": first.gas_used,
        "anchored_at": shown["anchored_at"],
    }
    assert chain.anchor_of("civicvault", first.tree_size).root.hex() == shown["root_hash"]
    assert chain.receipt(bytes.fromhex(first.transaction_hash))["blockNumber"] == shown["block_number"]
    page = client.get(f"/api/v1/ledger/anchors?limit=1&before={second.tree_size}", headers=reader.auth).get_json()
    assert [a["tree_size"] for a in page["anchors"]] == [first.tree_size]


def test_the_anchor_list_refuses_strangers_and_bad_queries(client, make_actor):
    assert_problem(client.get("/api/v1/ledger/anchors"), 401)
    reader = make_actor("clinic")
    for query in ("limit=0", "limit=1001", "limit=x", "before=0", "colour=red", "limit=" + "9" * 400):
        assert_problem(client.get(f"/api/v1/ledger/anchors?{query}", headers=reader.auth), 400)


def test_inclusion_and_consistency_proofs_against_the_latest_anchor(client, vault_, settings, chain, owner, make_actor):
    reader = make_actor("resident")
    nothing = assert_problem(
        client.get("/api/v1/ledger/proofs/inclusion?leaf_index=0&anchored=true", headers=reader.auth), 404
    )
    assert "anchored" in nothing["detail"]
    anchor = _anchor(vault_, settings, chain, owner, 6)
    add_events(vault_, 4)  # newer entries, not anchored yet
    response = client.get("/api/v1/ledger/proofs/inclusion?leaf_index=2&anchored=true", headers=reader.auth)
    assert response.status_code == 200, response.get_json()
    proof = response.get_json()
    assert (
        proof["tree_size"] == anchor.tree_size and proof["anchor"]["transaction_hash"] == "0x" + anchor.transaction_hash
    )
    on_chain = chain.anchor_of("civicvault", proof["tree_size"]).root  # the root, taken from the chain itself
    merkle.verify_inclusion(
        2,
        proof["tree_size"],
        bytes.fromhex(proof["leaf_hash"]),
        [bytes.fromhex(h) for h in proof["audit_path"]],
        on_chain,
    )
    late = assert_problem(
        client.get(f"/api/v1/ledger/proofs/inclusion?leaf_index={anchor.tree_size}&anchored=true", headers=reader.auth),
        400,
    )
    assert "not covered by the latest anchor" in late["detail"]
    assert_problem(
        client.get("/api/v1/ledger/proofs/inclusion?leaf_index=1&tree_size=3&anchored=true", headers=reader.auth), 400
    )
    assert_problem(client.get("/api/v1/ledger/proofs/inclusion?leaf_index=1&anchored=maybe", headers=reader.auth), 400)
    assert "anchor" not in client.get("/api/v1/ledger/proofs/inclusion?leaf_index=1", headers=reader.auth).get_json()

    consistency = client.get("/api/v1/ledger/proofs/consistency?first=3&anchored=true", headers=reader.auth).get_json()
    assert consistency["second"] == anchor.tree_size and consistency["second_root"] == on_chain.hex()
    merkle.verify_consistency(
        3,
        anchor.tree_size,
        bytes.fromhex(consistency["first_root"]),
        on_chain,
        [bytes.fromhex(h) for h in consistency["consistency_path"]],
    )
    assert_problem(
        client.get(
            f"/api/v1/ledger/proofs/consistency?first={anchor.tree_size + 1}&anchored=true", headers=reader.auth
        ),
        400,
    )
    assert_problem(
        client.get("/api/v1/ledger/proofs/consistency?first=1&second=2&anchored=true", headers=reader.auth), 400
    )


def test_the_openapi_document_lists_the_anchor_endpoint(client):
    spec = client.get("/openapi.json").get_json()
    assert "/api/v1/ledger/anchors" in spec["paths"]
    params = {p["name"] for p in spec["paths"]["/api/v1/ledger/proofs/inclusion"]["get"]["parameters"]}
    assert {"leaf_index", "tree_size", "anchored"} <= params
