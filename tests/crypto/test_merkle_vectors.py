"""Known-answer tests of ``crypto.merkle``: published vectors, good and bad.

``tests/vectors/merkle/`` holds 112 inclusion and consistency vectors from
transparency-dev/merkle's ``testdata/`` (Apache-2.0; files, commits and
hashes in ``SOURCES.json``, attribution in ``LICENSE``). In each directory the
``happy-path.json`` proof must verify and every other file, a systematic
corruption of it (flipped bit, index or size off by one, roots swapped or
wrong, hashes inserted, removed or appended...), must be refused with
``ProofError`` and nothing else.

The trees behind those vectors are built from the eight leaf inputs of
transparency-dev/merkle ``testonly/constants.go`` (also RFC 6962's test
data), so the vectors' roots and proofs are also checked against our own root
computation and proof generation, as are that file's published roots.
"""

import base64
import hashlib
import json
from pathlib import Path

import pytest

from crypto import merkle
from crypto.merkle import ProofError

VECTOR_DIR = Path(__file__).resolve().parents[1] / "vectors" / "merkle"
SOURCES = json.loads((VECTOR_DIR / "SOURCES.json").read_text(encoding="utf-8"))
FILES = [entry["path"] for entry in SOURCES["files"]]
INCLUSION = sorted(p for p in FILES if p.startswith("inclusion/"))
CONSISTENCY = sorted(p for p in FILES if p.startswith("consistency/"))

# transparency-dev/merkle testonly/constants.go, LeafInputs() and RootHashes()
# (RootHashes()[n] is the root of the tree over the first n inputs).
LEAF_INPUTS = [
    bytes.fromhex(h)
    for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
]
ROOT_HASHES = [
    bytes.fromhex(h)
    for h in [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
]
LEAF_HASHES = [merkle.leaf_hash(entry) for entry in LEAF_INPUTS]


def _load(path: str) -> dict:
    return json.loads((VECTOR_DIR / path).read_text(encoding="utf-8"))


def _b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def _proof(vector: dict) -> list[bytes]:
    # Go marshals an empty slice as null.
    return [_b64(p) for p in vector["proof"] or []]


def _subtree_hash(start: int, end: int) -> bytes:
    return merkle.root_from_leaves(LEAF_HASHES[start:end])


# --- The vendored files -------------------------------------------------------


def test_vendored_files_are_unchanged_and_all_listed():
    on_disk = sorted(str(p.relative_to(VECTOR_DIR)) for p in VECTOR_DIR.rglob("*.json") if p.name != "SOURCES.json")
    assert on_disk == sorted(FILES)
    for entry in SOURCES["files"]:
        assert entry["upstream_path"] == "testdata/" + entry["path"]
        assert len(entry["commit"]) == 40
        assert hashlib.sha256((VECTOR_DIR / entry["path"]).read_bytes()).hexdigest() == entry["sha256"], entry["path"]


def test_each_directory_has_one_happy_path_and_only_corruptions_besides():
    assert len(FILES) == 112
    directories = sorted({path.rsplit("/", 1)[0] for path in FILES})
    assert directories == [
        "consistency/1", "consistency/2", "consistency/4", "inclusion/0", "inclusion/1", "inclusion/2",
    ]  # fmt: skip
    for directory in directories:
        names = [p for p in FILES if p.rsplit("/", 1)[0] == directory]
        happy = [p for p in names if not _load(p)["wantErr"]]
        assert happy == [f"{directory}/happy-path.json"]
        for path in names:
            if path not in happy:
                assert _load(path) != _load(happy[0]), path


# --- Inclusion ----------------------------------------------------------------


@pytest.mark.parametrize("path", INCLUSION)
def test_inclusion_vector(path):
    v = _load(path)
    args = (v["leafIdx"], v["treeSize"], _b64(v["leafHash"]), _proof(v))
    root = _b64(v["root"])
    if v["wantErr"]:
        with pytest.raises(ProofError):
            merkle.verify_inclusion(*args, root)
    else:
        assert merkle.verify_inclusion(*args, root) is None
        assert merkle.root_from_inclusion_proof(*args) == root


@pytest.mark.parametrize("path", [p for p in INCLUSION if p.endswith("happy-path.json")])
def test_inclusion_vector_matches_our_tree_and_our_proof(path):
    v = _load(path)
    index, size = v["leafIdx"], v["treeSize"]
    assert _b64(v["leafHash"]) == LEAF_HASHES[index]
    assert _b64(v["root"]) == merkle.root_from_leaves(LEAF_HASHES[:size]) == ROOT_HASHES[size]
    assert merkle.inclusion_proof(index, size, _subtree_hash) == _proof(v)


# --- Consistency --------------------------------------------------------------


@pytest.mark.parametrize("path", CONSISTENCY)
def test_consistency_vector(path):
    v = _load(path)
    first, second = v["size1"], v["size2"]
    first_root, second_root, proof = _b64(v["root1"]), _b64(v["root2"]), _proof(v)
    if v["wantErr"]:
        with pytest.raises(ProofError):
            merkle.verify_consistency(first, second, first_root, second_root, proof)
    else:
        assert merkle.verify_consistency(first, second, first_root, second_root, proof) is None
        assert merkle.roots_from_consistency_proof(first, second, first_root, proof) == (first_root, second_root)


@pytest.mark.parametrize("path", [p for p in CONSISTENCY if p.endswith("happy-path.json")])
def test_consistency_vector_matches_our_trees_and_our_proof(path):
    v = _load(path)
    first, second = v["size1"], v["size2"]
    assert _b64(v["root1"]) == merkle.root_from_leaves(LEAF_HASHES[:first]) == ROOT_HASHES[first]
    assert _b64(v["root2"]) == merkle.root_from_leaves(LEAF_HASHES[:second]) == ROOT_HASHES[second]
    assert merkle.consistency_proof(first, second, _subtree_hash) == _proof(v)


# --- Published roots and the RFC 9162 structure, by hand ----------------------


def test_published_roots_for_sizes_0_to_8():
    for size, expected in enumerate(ROOT_HASHES):
        assert merkle.root_from_leaves(LEAF_HASHES[:size]) == expected
        assert merkle.root_of_stream(iter(LEAF_HASHES[:size])) == (size, expected)


def test_hashes_are_prefixed_sha256():
    assert hashlib.sha256(b"").digest() == merkle.EMPTY_ROOT
    assert merkle.leaf_hash(b"") == hashlib.sha256(b"\x00").digest() == ROOT_HASHES[1]
    a, b = LEAF_HASHES[0], LEAF_HASHES[1]
    assert merkle.node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest() == ROOT_HASHES[2]


def test_small_trees_have_the_rfc_9162_shape():
    """MTH(D[n]) = H(MTH(D[0:k]), MTH(D[k:n])), k the largest power of two < n, spelled out for 1..8."""
    n, d = merkle.node_hash, LEAF_HASHES
    d01, d23, d45, d67 = n(d[0], d[1]), n(d[2], d[3]), n(d[4], d[5]), n(d[6], d[7])
    d0123 = n(d01, d23)
    by_hand = {
        1: d[0],
        2: d01,
        3: n(d01, d[2]),
        4: d0123,
        5: n(d0123, d[4]),
        6: n(d0123, d45),
        7: n(d0123, n(d45, d[6])),
        8: n(d0123, n(d45, d67)),
    }
    for size, root in by_hand.items():
        assert merkle.root_from_leaves(d[:size]) == root == ROOT_HASHES[size], size
