"""Property-based and exhaustive tests of ``crypto.merkle`` (Hypothesis).

Trees of 1 to 300 random leaves, backed by a naive in-memory store of every
perfect subtree (``Store``), which counts its reads and refuses any subtree
that is not complete within the tree. Proofs made by our generation verify
against the reference root ``root_from_leaves``; the streaming root equals it;
a flipped bit, a wrong index, an extra or a missing hash, a wrong or swapped
root is refused with ``ProofError``; a wrong size is refused whenever it
changes the proof's shape (when it does not, RFC 9162 computes the same root:
see the module docstring). Proof lengths and store reads stay within the
bounds proved in ``crypto/merkle.py``, and those bounds are reached.

Hypothesis's example database is disabled so no failing examples are saved.
"""

import hashlib
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crypto import merkle
from crypto.errors import CryptoError
from crypto.merkle import EMPTY_ROOT, HASH_SIZE, ProofError

FAST = settings(max_examples=120, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
MAX_SIZE = 300


class Store:
    """Every perfect subtree of a tree, computed level by level, as a database would hold them."""

    def __init__(self, leaf_hashes: list[bytes]) -> None:
        self.size = len(leaf_hashes)
        self.levels = [list(leaf_hashes)]
        while len(self.levels[-1]) > 1:
            below = self.levels[-1]
            self.levels.append([merkle.node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)])
        self.reads = 0
        self.requested: list[tuple[int, int]] = []

    def perfect_subtree_hash(self, level: int, index: int) -> bytes:
        if not (0 <= level < len(self.levels) and 0 <= index < len(self.levels[level])):
            raise LookupError(f"no complete subtree at level {level}, index {index} in a tree of {self.size}")
        self.reads += 1
        return self.levels[level][index]

    def subtree_hash(self, start: int, end: int) -> bytes:
        self.requested.append((start, end))
        return merkle.range_hash(start, end, self.perfect_subtree_hash)

    def reset(self) -> None:
        self.reads = 0
        self.requested = []


def make_leaves(seed: bytes, size: int) -> list[bytes]:
    return [merkle.leaf_hash(hashlib.sha256(seed + i.to_bytes(4, "big")).digest()) for i in range(size)]


@st.composite
def trees(draw, min_size=1, max_size=MAX_SIZE):
    leaves = make_leaves(draw(st.binary(min_size=8, max_size=8)), draw(st.integers(min_size, max_size)))
    return leaves, Store(leaves)


@st.composite
def inclusion_cases(draw):
    leaves, store = draw(trees())
    index = draw(st.integers(0, len(leaves) - 1))
    proof = merkle.inclusion_proof(index, len(leaves), store.subtree_hash)
    return leaves, store, index, proof


@st.composite
def consistency_cases(draw):
    leaves, store = draw(trees(min_size=2))
    first = draw(st.integers(1, len(leaves) - 1))
    proof = merkle.consistency_proof(first, len(leaves), store.subtree_hash)
    return leaves, store, first, proof


def ceil_log2(n: int) -> int:
    return (n - 1).bit_length()


def floor_log2(n: int) -> int:
    return n.bit_length() - 1


def flip(data: bytes, bit: int) -> bytes:
    changed = bytearray(data)
    changed[bit // 8] ^= 1 << (bit % 8)
    return bytes(changed)


def inclusion_shape(index: int, size: int) -> tuple[str, ...]:
    """Left or right, for each proof hash: all that RFC 9162 verification takes from the size."""
    return tuple("L" if end <= index else "R" for _, end in merkle.inclusion_proof_ranges(index, size))


def consistency_shape(first: int, second: int) -> tuple[str, ...]:
    return tuple(
        "T" if end == first else "L" if end < first else "R"
        for _, end in merkle.consistency_proof_ranges(first, second)
    )


def refused_inclusion(index, size, leaf, proof, root) -> bool:
    try:
        merkle.verify_inclusion(index, size, leaf, proof, root)
    except ProofError:
        return True
    return False


def refused_consistency(first, second, first_root, second_root, proof) -> bool:
    try:
        merkle.verify_consistency(first, second, first_root, second_root, proof)
    except ProofError:
        return True
    return False


# --- Roots --------------------------------------------------------------------


@FAST
@given(st.binary(min_size=8, max_size=8), st.integers(0, MAX_SIZE))
def test_streaming_root_and_stored_subtrees_give_the_reference_root(seed, size):
    leaves = make_leaves(seed, size)
    root = merkle.root_from_leaves(leaves)
    assert merkle.root_of_stream(iter(leaves)) == (size, root)
    store = Store(leaves)
    assert merkle.range_hash(0, size, store.perfect_subtree_hash) == root
    assert store.reads == bin(size).count("1")


def test_streaming_root_takes_a_generator_once():
    leaves = make_leaves(b"stream!!", 1000)
    assert merkle.root_of_stream(h for h in leaves) == (1000, merkle.root_from_leaves(leaves))
    assert merkle.root_of_stream([]) == (0, EMPTY_ROOT)


@FAST
@given(trees(), st.data())
def test_range_hash_of_any_subtree_range_is_the_reference_hash(tree, data):
    leaves, store = tree
    height = data.draw(st.integers(0, ceil_log2(len(leaves))))
    start = data.draw(st.integers(0, (len(leaves) - 1) >> height)) << height
    end = data.draw(st.integers(start + 1, min(start + (1 << height), len(leaves))))
    assert merkle.range_hash(start, end, store.perfect_subtree_hash) == merkle.root_from_leaves(leaves[start:end])


@pytest.mark.parametrize(("start", "end"), [(1, 3), (2, 5), (4, 9), (3, 3), (5, 4), (-1, 1), (0, True)])
def test_range_hash_refuses_ranges_that_are_not_subtrees(start, end):
    store = Store(make_leaves(b"ranges!!", 16))
    with pytest.raises(ValueError):
        merkle.range_hash(start, end, store.perfect_subtree_hash)
    assert store.reads == 0


# --- Inclusion ----------------------------------------------------------------


@FAST
@given(inclusion_cases())
def test_generated_inclusion_proofs_verify_within_the_bounds(case):
    leaves, store, index, proof = case
    size = len(leaves)
    root = merkle.root_from_leaves(leaves)
    assert merkle.verify_inclusion(index, size, leaves[index], proof, root) is None
    assert merkle.root_from_inclusion_proof(index, size, leaves[index], proof) == root
    assert len(proof) <= ceil_log2(size)
    assert store.reads <= 2 * floor_log2(size)
    assert len(store.requested) == len(proof)


@FAST
@given(inclusion_cases(), st.data())
def test_a_flipped_bit_in_any_inclusion_proof_hash_is_refused(case, data):
    leaves, _, index, proof = case
    if not proof:
        return
    position = data.draw(st.integers(0, len(proof) - 1))
    bit = data.draw(st.integers(0, 8 * HASH_SIZE - 1))
    proof[position] = flip(proof[position], bit)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(index, len(leaves), leaves[index], proof, merkle.root_from_leaves(leaves))


@FAST
@given(inclusion_cases(), st.data())
def test_an_extra_or_missing_inclusion_proof_hash_is_refused(case, data):
    leaves, _, index, proof = case
    root, size = merkle.root_from_leaves(leaves), len(leaves)
    extra = data.draw(st.sampled_from([root, leaves[index], bytes(HASH_SIZE), b"", b"\x00" * 33]))
    at = data.draw(st.integers(0, len(proof)))
    assert refused_inclusion(index, size, leaves[index], proof[:at] + [extra] + proof[at:], root)
    if proof:
        at = data.draw(st.integers(0, len(proof) - 1))
        assert refused_inclusion(index, size, leaves[index], proof[:at] + proof[at + 1 :], root)


@FAST
@given(inclusion_cases(), st.data())
def test_a_wrong_index_or_leaf_or_root_is_refused(case, data):
    leaves, _, index, proof = case
    root, size = merkle.root_from_leaves(leaves), len(leaves)
    other = data.draw(st.integers(-2, size + 2).filter(lambda i: i != index))
    assert refused_inclusion(other, size, leaves[index], proof, root)
    if size > 1:
        assert refused_inclusion(index, size, leaves[(index + 1) % size], proof, root)
    assert refused_inclusion(index, size, leaves[index], proof, flip(root, data.draw(st.integers(0, 255))))


@FAST
@given(inclusion_cases(), st.integers(0, 2 * MAX_SIZE + 2))
def test_a_wrong_size_is_refused_unless_it_gives_the_same_proof_shape(case, other):
    leaves, _, index, proof = case
    root, size = merkle.root_from_leaves(leaves), len(leaves)
    if other == size:
        return
    if other <= index or inclusion_shape(index, other) != inclusion_shape(index, size):
        assert refused_inclusion(index, other, leaves[index], proof, root)
    else:  # RFC 9162 takes nothing else from the size: the same root comes out (module docstring)
        assert merkle.root_from_inclusion_proof(index, other, leaves[index], proof) == root


def test_inclusion_proof_lengths_reads_and_ranges_for_every_leaf_of_every_size():
    """Exhaustive up to 300 leaves: length <= ceil(log2 n), store reads <= 2 floor(log2 n), reached."""
    store = Store(make_leaves(b"exhaust!", MAX_SIZE))
    for size in range(1, MAX_SIZE + 1):
        worst = 0
        for index in range(size):
            store.reset()
            proof = merkle.inclusion_proof(index, size, store.subtree_hash)
            assert len(proof) == len(store.requested) <= ceil_log2(size)
            worst = max(worst, store.reads)
            ragged = 0
            for start, end in store.requested:
                width = end - start
                assert 0 <= start < end <= size and start % (1 << ceil_log2(width)) == 0
                ragged += width & (width - 1) != 0
            assert ragged <= 1
        assert worst <= 2 * floor_log2(size)
        if size & (size + 1) == 0 and size >= 3:  # 2^a - 1 leaves: every peak present
            assert worst == 2 * floor_log2(size)


# --- Consistency --------------------------------------------------------------


@FAST
@given(consistency_cases())
def test_generated_consistency_proofs_verify_within_the_bounds(case):
    leaves, store, first, proof = case
    second = len(leaves)
    first_root, second_root = merkle.root_from_leaves(leaves[:first]), merkle.root_from_leaves(leaves)
    assert merkle.verify_consistency(first, second, first_root, second_root, proof) is None
    assert merkle.roots_from_consistency_proof(first, second, first_root, proof) == (first_root, second_root)
    assert len(proof) <= ceil_log2(second) + 1
    assert store.reads <= 2 * floor_log2(second) + 1
    assert len(store.requested) == len(proof)


@FAST
@given(consistency_cases(), st.data())
def test_tampered_consistency_proofs_are_refused(case, data):
    leaves, _, first, proof = case
    second = len(leaves)
    first_root, second_root = merkle.root_from_leaves(leaves[:first]), merkle.root_from_leaves(leaves)
    position = data.draw(st.integers(0, len(proof) - 1))
    bit = data.draw(st.integers(0, 8 * HASH_SIZE - 1))
    flipped = proof[:position] + [flip(proof[position], bit)] + proof[position + 1 :]
    assert refused_consistency(first, second, first_root, second_root, flipped)
    at = data.draw(st.integers(0, len(proof)))
    extra = data.draw(st.sampled_from([first_root, second_root, bytes(HASH_SIZE), b""]))
    assert refused_consistency(first, second, first_root, second_root, proof[:at] + [extra] + proof[at:])
    at = data.draw(st.integers(0, len(proof) - 1))
    assert refused_consistency(first, second, first_root, second_root, proof[:at] + proof[at + 1 :])
    assert refused_consistency(first, second, second_root, first_root, proof)
    assert refused_consistency(first, second, flip(first_root, bit), second_root, proof)
    assert refused_consistency(first, second, first_root, flip(second_root, bit), proof)


@FAST
@given(consistency_cases(), st.integers(0, 2 * MAX_SIZE + 2), st.integers(0, 2 * MAX_SIZE + 2))
def test_wrong_sizes_are_refused_unless_they_give_the_same_proof_shape(case, other_first, other_second):
    leaves, _, first, proof = case
    second = len(leaves)
    first_root, second_root = merkle.root_from_leaves(leaves[:first]), merkle.root_from_leaves(leaves)
    for f, s in [(other_first, second), (first, other_second)]:
        if (f, s) == (first, second):
            continue
        if f == 0 or f > s or consistency_shape(f, s) != consistency_shape(first, second):
            assert refused_consistency(f, s, first_root, second_root, proof), (f, s)
        else:  # same shape: RFC 9162 computes the same roots (module docstring)
            assert merkle.roots_from_consistency_proof(f, s, first_root, proof) == (first_root, second_root)


def test_consistency_between_every_pair_of_small_trees():
    """Every 0 <= first <= second <= 40: the proof verifies; each flipped bit, dropped or added hash is refused."""
    leaves = make_leaves(b"pairs!!!", 40)
    store = Store(leaves)
    roots = [merkle.root_from_leaves(leaves[:n]) for n in range(41)]
    for second in range(41):
        for first in range(second + 1):
            proof = merkle.consistency_proof(first, second, store.subtree_hash)
            merkle.verify_consistency(first, second, roots[first], roots[second], proof)
            for position in range(len(proof)):
                for bit in (0, 7, 100, 255):
                    tampered = proof[:position] + [flip(proof[position], bit)] + proof[position + 1 :]
                    assert refused_consistency(first, second, roots[first], roots[second], tampered)
                dropped = proof[:position] + proof[position + 1 :]
                assert refused_consistency(first, second, roots[first], roots[second], dropped)
            assert refused_consistency(first, second, roots[first], roots[second], proof + [roots[second]])
            assert refused_consistency(first, second, roots[first], roots[second], [roots[first]] + proof)
            if first != second:
                assert refused_consistency(first, second, roots[second], roots[first], proof)


def test_consistency_proof_lengths_reads_and_ranges_for_every_pair():
    """Exhaustive up to 300 leaves: length <= ceil(log2 n) + 1, reads <= 2 floor(log2 n) + 1, reached."""
    store = Store(make_leaves(b"exhaust!", MAX_SIZE))
    for second in range(2, MAX_SIZE + 1):
        worst = 0
        for first in range(1, second):
            store.reset()
            proof = merkle.consistency_proof(first, second, store.subtree_hash)
            assert 1 <= len(proof) == len(store.requested) <= ceil_log2(second) + 1
            worst = max(worst, store.reads)
            ragged = 0
            for start, end in store.requested:
                width = end - start
                assert 0 <= start < end <= second and start % (1 << ceil_log2(width)) == 0
                ragged += width & (width - 1) != 0
            assert ragged <= 1
        assert worst <= 2 * floor_log2(second) + 1
        if second & (second + 1) == 0 and second >= 7:
            assert worst == 2 * floor_log2(second) + 1


# --- Huge trees ---------------------------------------------------------------


class UniformTree:
    """A tree whose leaves are all equal: its perfect subtrees depend only on their level, so any size is cheap."""

    def __init__(self) -> None:
        self.by_level = [merkle.leaf_hash(b"same")]
        for _ in range(64):
            self.by_level.append(merkle.node_hash(self.by_level[-1], self.by_level[-1]))
        self.reads = 0

    def perfect_subtree_hash(self, level: int, index: int) -> bytes:
        self.reads += 1
        return self.by_level[level]

    def subtree_hash(self, start: int, end: int) -> bytes:
        return merkle.range_hash(start, end, self.perfect_subtree_hash)


@FAST
@given(st.integers(2, merkle.MAX_TREE_SIZE), st.data())
def test_proofs_in_trees_of_up_to_2_to_the_64_leaves(size, data):
    tree = UniformTree()
    index = data.draw(st.integers(0, size - 1))
    first = data.draw(st.integers(1, size - 1))
    root = tree.subtree_hash(0, size)
    tree.reads = 0
    proof = merkle.inclusion_proof(index, size, tree.subtree_hash)
    assert tree.reads <= 2 * floor_log2(size) and len(proof) <= ceil_log2(size)
    merkle.verify_inclusion(index, size, tree.by_level[0], proof, root)
    tree.reads = 0
    proof = merkle.consistency_proof(first, size, tree.subtree_hash)
    assert tree.reads <= 2 * floor_log2(size) + 1 and len(proof) <= ceil_log2(size) + 1
    merkle.verify_consistency(first, size, tree.subtree_hash(0, first), root, proof)


# --- Every precondition, by example -------------------------------------------

H = bytes(range(HASH_SIZE))


@pytest.mark.parametrize(
    ("index", "size"),
    [(0, 0), (1, 1), (-1, 4), (4, 4), (True, 4), (1.0, 4), ("1", 4), (None, 4), (0, 2**64), (0, -1), (0, 2.0)],
)
def test_inclusion_positions_outside_the_tree_are_proof_errors(index, size):
    with pytest.raises(ProofError):
        merkle.root_from_inclusion_proof(index, size, H, [])
    with pytest.raises(ProofError):
        merkle.verify_inclusion(index, size, H, [], H)
    with pytest.raises(ValueError):
        merkle.inclusion_proof(index, size, lambda s, e: H)


@pytest.mark.parametrize("proof", [None, b"", H, H.hex(), (h for h in [H]), {0: H}])
def test_a_proof_must_be_a_list_of_hashes(proof):
    with pytest.raises(ProofError):
        merkle.verify_inclusion(0, 2, H, proof, H)
    with pytest.raises(ProofError):
        merkle.verify_consistency(1, 2, H, H, proof)


@pytest.mark.parametrize("bad", [b"", H[:-1], H + b"\x00", H.hex(), None, 0, list(H)])
def test_hashes_must_be_32_bytes(bad):
    leaves = make_leaves(b"badhash!", 3)
    store = Store(leaves)
    root = merkle.root_from_leaves(leaves)
    proof = merkle.inclusion_proof(2, 3, store.subtree_hash)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(2, 3, bad, proof, root)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(2, 3, leaves[2], proof, bad)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(2, 3, leaves[2], [bad], root)
    with pytest.raises(ProofError):
        merkle.verify_consistency(2, 3, bad, root, [leaves[2]])
    with pytest.raises(ProofError):
        merkle.verify_consistency(2, 3, root, bad, [leaves[2]])
    with pytest.raises(ValueError):
        merkle.node_hash(bad, H)
    with pytest.raises(ValueError):
        merkle.root_from_leaves([H, bad])
    with pytest.raises(ValueError):
        merkle.root_of_stream([H, bad])
    with pytest.raises(ValueError):
        merkle.inclusion_proof(2, 3, lambda s, e: bad)
    with pytest.raises(ValueError):
        merkle.range_hash(0, 3, lambda level, index: bad)


def test_bytearray_and_memoryview_hashes_are_accepted():
    leaves = make_leaves(b"byteslik", 5)
    root = merkle.root_from_leaves(leaves)
    proof = merkle.inclusion_proof(3, 5, Store(leaves).subtree_hash)
    merkle.verify_inclusion(3, 5, bytearray(leaves[3]), [memoryview(p) for p in proof], bytearray(root))
    assert merkle.leaf_hash(memoryview(b"x")) == merkle.leaf_hash(b"x")
    with pytest.raises(ValueError):
        merkle.leaf_hash("x")


def test_equal_sizes_need_an_empty_proof_and_equal_roots():
    leaves = make_leaves(b"equal!!!", 5)
    root, other = merkle.root_from_leaves(leaves), merkle.root_from_leaves(leaves[:4])
    merkle.verify_consistency(5, 5, root, root, [])
    assert merkle.roots_from_consistency_proof(5, 5, root, []) == (root, root)
    assert merkle.consistency_proof(5, 5, Store(leaves).subtree_hash) == []
    with pytest.raises(ProofError, match="exactly 0 hashes"):
        merkle.verify_consistency(5, 5, root, root, [root])
    with pytest.raises(ProofError, match=f"expected {other.hex()}, computed {root.hex()}"):
        merkle.verify_consistency(5, 5, root, other, [])


def test_from_the_empty_tree_the_proof_is_empty_and_the_first_root_is_the_empty_root():
    leaves = make_leaves(b"empty!!!", 3)
    root = merkle.root_from_leaves(leaves)
    merkle.verify_consistency(0, 3, EMPTY_ROOT, root, [])
    merkle.verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert merkle.consistency_proof(0, 3, Store(leaves).subtree_hash) == []
    with pytest.raises(ProofError, match="exactly 0 hashes"):
        merkle.verify_consistency(0, 3, EMPTY_ROOT, root, [leaves[0]])
    with pytest.raises(ProofError, match=f"expected {root.hex()}, computed {EMPTY_ROOT.hex()}"):
        merkle.verify_consistency(0, 3, root, root, [])
    with pytest.raises(ProofError, match="second root"):
        merkle.verify_consistency(0, 0, EMPTY_ROOT, root, [])
    with pytest.raises(ProofError, match="empty tree"):
        merkle.roots_from_consistency_proof(0, 3, EMPTY_ROOT, [])


@pytest.mark.parametrize(("first", "second"), [(3, 2), (1, 0), (-1, 2), (1, 2**64), (True, 2), (1, 2.0), (None, 1)])
def test_consistency_sizes_out_of_order_or_range_are_proof_errors(first, second):
    with pytest.raises(ProofError):
        merkle.verify_consistency(first, second, H, H, [H])
    with pytest.raises(ProofError):
        merkle.roots_from_consistency_proof(first, second, H, [H])
    with pytest.raises(ValueError):
        merkle.consistency_proof(first, second, lambda s, e: H)


def test_errors_name_the_expected_and_computed_roots():
    leaves = make_leaves(b"messages", 6)
    root = merkle.root_from_leaves(leaves)
    proof = merkle.inclusion_proof(4, 6, Store(leaves).subtree_hash)
    computed = merkle.root_from_inclusion_proof(4, 6, leaves[5], proof)
    with pytest.raises(ProofError, match=f"expected {root.hex()}, computed {computed.hex()}"):
        merkle.verify_inclusion(4, 6, leaves[5], proof, root)
    with pytest.raises(ProofError, match="exactly 2 hashes, got 3"):
        merkle.verify_inclusion(4, 6, leaves[4], proof + [root], root)
    assert issubclass(ProofError, CryptoError)


def test_proof_lengths_match_ceil_log2_on_perfect_trees():
    for height in range(1, 12):
        size = 1 << height
        assert len(merkle.inclusion_proof_ranges(size - 1, size)) == height == math.ceil(math.log2(size))
