"""RFC 9162 Merkle trees: leaf and node hashes, roots, proofs and their checks.

The ledger commits to its entries with the Merkle Tree Hash of RFC 9162
(Certificate Transparency v2), section 2.1, with SHA-256:

* ``leaf_hash(d) = SHA-256(0x00 || d)`` and ``node_hash(l, r) =
  SHA-256(0x01 || l || r)`` (section 2.1.1). The prefixes keep a leaf from
  ever being taken for an interior node; they cannot be switched off.
* The tree over ``n >= 2`` leaves ``D[0:n]`` is ``node_hash(MTH(D[0:k]),
  MTH(D[k:n]))`` where ``k`` is the largest power of two smaller than ``n``;
  one leaf is its own leaf hash; the empty tree hashes to ``EMPTY_ROOT =
  SHA-256("")``. Leaves are counted from 0.

Layout. Writing ``n = 2^b1 + 2^b2 + ... (b1 > b2 > ...)``, the tree is a
row of *perfect* subtrees ("peaks") of ``2^b1, 2^b2, ...`` leaves, left to
right, folded from the right: ``root = node(P1, node(P2, ... node(Pr-1, Pr)))``.
A perfect subtree at ``level`` ``h`` and ``index`` ``i`` covers leaves
``[i * 2^h, (i + 1) * 2^h)``; level 0 holds the leaf hashes. Such a subtree
never changes once its last leaf is appended, so the database stores it once
and never rewrites it. Every node of every tree is a *subtree range*
``[start, end)`` whose ``start`` is a multiple of ``2^ceil(log2(end - start))``,
and it is either a perfect subtree or the ragged right edge ``[start, size)``.

Proof generation asks a caller-supplied ``subtree_hash(start, end)`` only for
nodes of the tree of the requested size, so only for subtree ranges: every
range is a perfect aligned subtree except at most one per proof, which ends at
the tree size. ``range_hash(start, end, perfect_subtree_hash)`` composes any
subtree range from ``popcount(end - start)`` perfect subtrees, so a database
holding perfect subtrees backs ``subtree_hash`` with
``lambda s, e: range_hash(s, e, perfect_subtree_hash)`` and serves

* an inclusion proof in a tree of ``n`` leaves with at most ``2 * floor(log2 n)``
  reads: the leaf's peak of height ``h`` gives ``h`` perfect siblings; the
  node covering all the peaks to its right costs one read per such peak; each
  peak to its left is one read. That is ``h + (r - 1)`` reads for ``r`` peaks,
  and the ``r - 1`` other peaks have distinct heights in ``0..floor(log2 n)``
  other than ``h``;
* a consistency proof from ``m`` to ``n`` leaves with at most
  ``2 * floor(log2 n) + 1`` reads: it is the inclusion path of leaf ``m - 1``
  cut off at the node that ends at ``m`` (whose siblings below are dropped),
  plus that node itself unless ``m`` is a power of two.

A proof has at most ``ceil(log2 n)`` hashes (inclusion) or ``ceil(log2 n) + 1``
(consistency): one per level of the path, plus the node ending at ``m``.

Verification follows RFC 9162 sections 2.1.3.2 (inclusion) and 2.1.4.2
(consistency) and is split as *compute, then compare*: ``root_from_inclusion_proof``
and ``roots_from_consistency_proof`` return what the proof implies, and
``verify_inclusion`` / ``verify_consistency`` compare it with what the caller
expects. Verification returns ``None`` or raises ``ProofError`` (never
``False``), naming what was expected and what was computed. Generation and
root computation raise ``ValueError`` for arguments outside their contract.

What a proof does not bind: the tree size. RFC 9162 verification uses the
size only to decide, level by level, whether a proof hash goes on the left or
on the right, so sizes that give the same sequence (leaf 0 in trees of 5 to 8
leaves, say) accept the same proof and compute the same root. A root is only
meaningful with the size it was signed with: take both from one signed
checkpoint, never the size from whoever sent the proof.

Nothing here does I/O, reads the clock or keeps state between calls.
"""

import hashlib
from collections.abc import Callable, Iterable, Sequence

from crypto.errors import ProofError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
# RFC 9162 carries tree sizes and leaf indices as uint64.
MAX_TREE_SIZE = 2**64 - 1

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_BYTES_LIKE = (bytes, bytearray, memoryview)

SubtreeHash = Callable[[int, int], bytes]
"""``subtree_hash(start, end)``: the hash of the subtree range ``[start, end)``."""

PerfectSubtreeHash = Callable[[int, int], bytes]
"""``perfect_subtree_hash(level, index)``: the hash of leaves ``[index * 2^level, (index + 1) * 2^level)``."""


# ProofError lives in crypto.errors with the rest of the family.


# --- Hashes (RFC 9162 section 2.1.1) ------------------------------------------


def leaf_hash(entry: bytes) -> bytes:
    """``SHA-256(0x00 || entry)``: the hash of one leaf."""
    if not isinstance(entry, _BYTES_LIKE):
        raise ValueError(f"a leaf entry must be bytes, not {type(entry).__name__}")
    return hashlib.sha256(_LEAF_PREFIX + bytes(entry)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``: the hash of an interior node."""
    return _node(_arg_hash(left, "left child hash"), _arg_hash(right, "right child hash"))


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _split(width: int) -> int:
    """The largest power of two strictly smaller than ``width`` (``width >= 2``)."""
    return 1 << ((width - 1).bit_length() - 1)


def _as_hash(value: object) -> bytes | None:
    """``value`` as bytes if it is a bytes-like object of exactly ``HASH_SIZE`` bytes, else ``None``."""
    if not isinstance(value, _BYTES_LIKE):
        return None
    data = bytes(value)  # len() of a memoryview counts items, not bytes
    return data if len(data) == HASH_SIZE else None


def _arg_hash(value: object, what: str) -> bytes:
    data = _as_hash(value)
    if data is None:
        raise ValueError(f"{what} must be {HASH_SIZE} bytes, got {_describe(value)}")
    return data


def _describe(value: object) -> str:
    if isinstance(value, _BYTES_LIKE):
        data = bytes(value)
        shown = data[: HASH_SIZE + 8].hex() + ("..." if len(data) > HASH_SIZE + 8 else "")
        return f"{len(data)} bytes ({shown or 'empty'})"
    return type(value).__name__


def _check_count(value: object, what: str) -> int:
    if type(value) is not int or not 0 <= value <= MAX_TREE_SIZE:
        raise ValueError(f"{what} must be an integer from 0 to 2^64-1, not {value!r}")
    return value


# --- Roots --------------------------------------------------------------------


def root_from_leaves(leaf_hashes: Sequence[bytes]) -> bytes:
    """The RFC 9162 root of a list of leaf hashes, straight from the definition.

    The reference implementation, for tests and small trees; it holds every
    hash in memory. ``root_of_stream`` computes the same root in constant memory.
    """
    hashes = [_arg_hash(h, f"leaf hash {i}") for i, h in enumerate(leaf_hashes)]
    if not hashes:
        return EMPTY_ROOT
    return _mth(hashes, 0, len(hashes))


def _mth(hashes: list[bytes], start: int, end: int) -> bytes:
    if end - start == 1:
        return hashes[start]
    mid = start + _split(end - start)
    return _node(_mth(hashes, start, mid), _mth(hashes, mid, end))


def root_of_stream(leaf_hashes: Iterable[bytes]) -> tuple[int, bytes]:
    """``(size, root)`` of the tree over an iterable of leaf hashes, in O(log n) memory.

    Keeps only the peaks: the hashes of the perfect subtrees that the leaves
    seen so far form, one per set bit of the count. Appending leaf number
    ``size`` merges as many peaks as ``size + 1`` has trailing zero bits; at
    the end the peaks are folded from the right, which is the RFC 9162 tree.
    """
    peaks: list[bytes] = []
    size = 0
    for item in leaf_hashes:
        merged = _arg_hash(item, f"leaf hash {size}")
        size += 1
        carry = size
        while carry & 1 == 0:
            merged = _node(peaks.pop(), merged)
            carry >>= 1
        peaks.append(merged)
    if not peaks:
        return 0, EMPTY_ROOT
    return size, _fold_right(peaks)


def _fold_right(hashes: list[bytes]) -> bytes:
    root = hashes[-1]
    for left in reversed(hashes[:-1]):
        root = _node(left, root)
    return root


def perfect_subtrees(start: int, end: int) -> list[tuple[int, int]]:
    """The ``(level, index)`` perfect subtrees that make up the subtree range ``[start, end)``.

    Largest first; ``range_hash`` folds their hashes from the right. Raises
    ``ValueError`` if ``[start, end)`` is not a subtree range (its start must be
    a multiple of ``2^ceil(log2(end - start))``), since the RFC 9162 hash of any
    other range is not built from aligned subtrees.
    """
    _check_count(start, "range start")
    _check_count(end, "range end")
    if start >= end:
        raise ValueError(f"a subtree range needs start < end, got [{start}, {end})")
    width = end - start
    alignment = 1 << (width - 1).bit_length()
    if start % alignment:
        raise ValueError(
            f"[{start}, {end}) is not a subtree range: "
            f"a range of {width} leaves must start at a multiple of {alignment}"
        )
    pieces = []
    offset = start
    for level in range(width.bit_length() - 1, -1, -1):
        if width >> level & 1:
            pieces.append((level, offset >> level))
            offset += 1 << level
    return pieces


def range_hash(start: int, end: int, perfect_subtree_hash: PerfectSubtreeHash) -> bytes:
    """The hash of the subtree range ``[start, end)`` from ``popcount(end - start)`` perfect subtrees.

    ``perfect_subtree_hash(level, index)`` must return the hash of leaves
    ``[index * 2^level, (index + 1) * 2^level)``. ``range_hash(0, size, ...)`` is
    the root of the tree of ``size`` leaves; ``(0, 0)`` gives ``EMPTY_ROOT``.
    """
    if _check_count(start, "range start") == 0 and _check_count(end, "range end") == 0:
        return EMPTY_ROOT
    hashes = [
        _arg_hash(perfect_subtree_hash(level, index), f"perfect subtree (level {level}, index {index})")
        for level, index in perfect_subtrees(start, end)
    ]
    return _fold_right(hashes)


# --- Proof generation (RFC 9162 sections 2.1.3.1 and 2.1.4.1) ------------------


def inclusion_proof_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The subtree ranges whose hashes form the inclusion proof of leaf ``index``, in proof order.

    RFC 9162 ``PATH(m, D[n])``, walked from the root down and then reversed so
    that the sibling nearest the leaf comes first.
    """
    _check_count(size, "tree size")
    if type(index) is not int or not 0 <= index < size:
        raise ValueError(f"leaf index must be an integer with 0 <= index < {size}, not {index!r}")
    siblings = []
    start, end = 0, size
    while end - start > 1:
        mid = start + _split(end - start)
        if index < mid:
            siblings.append((mid, end))
            end = mid
        else:
            siblings.append((start, mid))
            start = mid
    siblings.reverse()
    return siblings


def consistency_proof_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """The subtree ranges whose hashes form the consistency proof from ``first`` to ``second`` leaves.

    RFC 9162 ``SUBPROOF(m, D[n], b)``, walked from the root down and reversed.
    Empty when ``first == second`` and when ``first == 0`` (RFC 9162 defines
    proofs for ``0 < first < second``; the empty tree is a prefix of any tree).
    """
    _check_count(first, "first tree size")
    _check_count(second, "second tree size")
    if first > second:
        raise ValueError(f"first tree size {first} is larger than second tree size {second}")
    if first == 0 or first == second:
        return []
    nodes = []
    start, end = 0, second
    only_left_turns = True  # the RFC's flag b: the node [0, first) is then the first root itself
    while end != first:
        mid = start + _split(end - start)
        if first <= mid:
            nodes.append((mid, end))
            end = mid
        else:
            nodes.append((start, mid))
            start = mid
            only_left_turns = False
    if not only_left_turns:
        nodes.append((start, end))
    nodes.reverse()
    return nodes


def inclusion_proof(index: int, size: int, subtree_hash: SubtreeHash) -> list[bytes]:
    """The inclusion proof of leaf ``index`` in the tree of ``size`` leaves.

    Calls ``subtree_hash(start, end)`` once per proof hash, only for the ranges
    of ``inclusion_proof_ranges``: nodes of this tree, all perfect aligned
    subtrees except at most one that ends at ``size``.
    """
    return [_fetched(subtree_hash, start, end) for start, end in inclusion_proof_ranges(index, size)]


def consistency_proof(first: int, second: int, subtree_hash: SubtreeHash) -> list[bytes]:
    """The proof that the tree of ``first`` leaves is a prefix of the tree of ``second`` leaves.

    Calls ``subtree_hash(start, end)`` once per proof hash, only for the ranges
    of ``consistency_proof_ranges``: nodes of the second tree, all perfect
    aligned subtrees except at most one that ends at ``second``.
    """
    return [_fetched(subtree_hash, start, end) for start, end in consistency_proof_ranges(first, second)]


def _fetched(subtree_hash: SubtreeHash, start: int, end: int) -> bytes:
    return _arg_hash(subtree_hash(start, end), f"subtree_hash({start}, {end})")


# --- Verification (RFC 9162 sections 2.1.3.2 and 2.1.4.2) ----------------------


def _proof_count(value: object, what: str) -> int:
    if type(value) is not int or not 0 <= value <= MAX_TREE_SIZE:
        raise ProofError(f"{what} must be an integer from 0 to 2^64-1, got {value!r}")
    return value


def _proof_hash(value: object, what: str) -> bytes:
    data = _as_hash(value)
    if data is None:
        raise ProofError(f"{what} must be {HASH_SIZE} bytes, got {_describe(value)}")
    return data


def _proof_path(proof: object, expected_length: int, what: str) -> list[bytes]:
    if not isinstance(proof, (list, tuple)):
        raise ProofError(f"a proof must be a list of hashes, not {type(proof).__name__}")
    if len(proof) != expected_length:
        raise ProofError(f"{what} must have exactly {_hashes(expected_length)}, got {len(proof)}")
    return [_proof_hash(p, f"proof hash {i}") for i, p in enumerate(proof)]


def _hashes(count: int) -> str:
    return "1 hash" if count == 1 else f"{count} hashes"


def root_from_inclusion_proof(index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` implies for leaf ``index`` of a tree of ``size`` leaves (RFC 9162 2.1.3.2).

    Raises ``ProofError`` if the proof cannot be an inclusion proof for that
    position (index out of range, wrong number of hashes, malformed hashes).
    """
    _proof_count(size, "tree size")
    if type(index) is not int or not 0 <= index < size:  # step 1
        raise ProofError(f"leaf index must satisfy 0 <= index < tree size {size}, got {index!r}")
    what = f"an inclusion proof for leaf {index} of {size}"
    hashes = _proof_path(proof, len(inclusion_proof_ranges(index, size)), what)
    fn, sn = index, size - 1  # step 2
    r = _proof_hash(leaf_hash, "leaf hash")  # step 3
    for p in hashes:  # step 4
        if sn == 0:  # 4a; unreachable after the length check, kept as the RFC states it
            raise ProofError(f"{what} is too long")
        if fn & 1 or fn == sn:  # 4b
            r = _node(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1  # 4c
        sn >>= 1
    if sn != 0:  # step 5
        raise ProofError(f"{what} is too short")
    return r


def verify_inclusion(index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` leaves with root ``root``.

    Returns ``None`` or raises ``ProofError`` naming the expected and computed roots.
    """
    expected = _proof_hash(root, "expected root")
    computed = root_from_inclusion_proof(index, size, leaf_hash, proof)
    if computed != expected:  # roots are public: no constant-time comparison needed
        raise ProofError(
            f"inclusion proof for leaf {index} of {size} does not match the root: "
            f"expected {expected.hex()}, computed {computed.hex()}"
        )


def _is_power_of_two(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


def roots_from_consistency_proof(
    first: int, second: int, first_root: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes]:
    """The ``(first_root, second_root)`` that ``proof`` implies (RFC 9162 2.1.4.2).

    Needs ``0 < first <= second``; for ``first == second`` the proof must be
    empty and both roots are ``first_root``. A proof from the empty tree
    (``first == 0``) has no hashes and implies no second root, so it raises
    ``ProofError`` here; ``verify_consistency`` handles it.
    """
    _proof_count(first, "first tree size")
    _proof_count(second, "second tree size")
    if first > second:
        raise ProofError(f"first tree size {first} is larger than second tree size {second}")
    if first == 0:
        raise ProofError("a proof from the empty tree implies no second root; use verify_consistency")
    given_root = _proof_hash(first_root, "first root")
    what = f"a consistency proof from {first} to {second}"
    hashes = _proof_path(proof, len(consistency_proof_ranges(first, second)), what)
    if first == second:
        return given_root, given_root
    if _is_power_of_two(first):  # step 2
        hashes.insert(0, given_root)
    fn, sn = first - 1, second - 1  # step 3
    while fn & 1:  # step 4
        fn >>= 1
        sn >>= 1
    fr = sr = hashes[0]  # step 5
    for c in hashes[1:]:  # step 6
        if sn == 0:  # 6a; unreachable after the length check, kept as the RFC states it
            raise ProofError(f"{what} is too long")
        if fn & 1 or fn == sn:  # 6b
            fr = _node(c, fr)
            sr = _node(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _node(sr, c)
        fn >>= 1  # 6c
        sn >>= 1
    if sn != 0:  # step 7
        raise ProofError(f"{what} is too short")
    return fr, sr


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]) -> None:
    """Check that the tree of ``first`` leaves with ``first_root`` is a prefix of the one of
    ``second`` leaves with ``second_root``.

    Equal sizes need an empty proof and equal roots. From the empty tree
    (``first == 0``) the proof must be empty and ``first_root`` must be
    ``EMPTY_ROOT``; any ``second_root`` extends it. Returns ``None`` or raises
    ``ProofError`` naming what was expected and what was computed.
    """
    _proof_count(first, "first tree size")
    _proof_count(second, "second tree size")
    expected_first = _proof_hash(first_root, "first root")
    expected_second = _proof_hash(second_root, "second root")
    if first == 0:
        _proof_path(proof, 0, f"a consistency proof from the empty tree to {second}")
        # The empty tree is a prefix of every tree: nothing constrains a non-empty second root.
        computed_first, computed_second = EMPTY_ROOT, EMPTY_ROOT if second == 0 else expected_second
    else:
        computed_first, computed_second = roots_from_consistency_proof(first, second, first_root, proof)
    # Roots are public: no constant-time comparison needed.
    if computed_first != expected_first:
        raise ProofError(
            f"consistency proof from {first} to {second} does not match the first root: "
            f"expected {expected_first.hex()}, computed {computed_first.hex()}"
        )
    if computed_second != expected_second:
        raise ProofError(
            f"consistency proof from {first} to {second} does not match the second root: "
            f"expected {expected_second.hex()}, computed {computed_second.hex()}"
        )
