"""The audit log's Merkle trees are RFC 9162's (Certificate Transparency v2, §2.1).

Pure: :mod:`catalog.records.merkle` against a naive implementation of the RFC's recursive
definitions written here (MTH, PATH, PROOF/SUBPROOF, exactly as the RFC states them), for every
tree size up to 70 (every shape of the split at powers of two, odd tails, several levels of
unpaired nodes). Proofs from the module verify; every altered proof, leaf, index, size or root
fails; the frontier's roots of every prefix and its dump/load agree with the recursion.
"""
from __future__ import annotations

import hashlib

import pytest

from catalog.records import merkle

SIZES = range(1, 71)


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def entries(n: int) -> list[bytes]:
    return [sha(f"event {i}".encode()) for i in range(n)]


def leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(e) for e in entries(n)]


# -- RFC 9162 §2.1, written as the RFC reads, over the entries (not their leaf hashes) ---------

def k_of(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: list[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return sha(b"")
    if n == 1:
        return sha(b"\x00" + d[0])
    k = k_of(n)
    return sha(b"\x01" + mth(d[:k]) + mth(d[k:]))


def path(m: int, d: list[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = k_of(n)
    if m < k:
        return path(m, d[:k]) + [mth(d[k:])]
    return path(m - k, d[k:]) + [mth(d[:k])]


def proof(m: int, d: list[bytes]) -> list[bytes]:
    return subproof(m, d, True)


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = k_of(n)
    if m <= k:
        return subproof(m, d[:k], b) + [mth(d[k:])]
    return subproof(m - k, d[k:], False) + [mth(d[:k])]


# -- the module against the RFC ---------------------------------------------------------------

def test_the_empty_tree_and_the_leaf_and_node_prefixes():
    assert merkle.root([]) == sha(b"") == merkle.EMPTY_ROOT
    e = entries(2)
    assert merkle.leaf_hash(e[0]) == sha(b"\x00" + e[0])
    assert merkle.node_hash(e[0], e[1]) == sha(b"\x01" + e[0] + e[1])
    digest = hashlib.sha256(b"x").hexdigest()
    assert merkle.event_leaf(digest) == sha(b"\x00" + bytes.fromhex(digest))


@pytest.mark.parametrize("n", SIZES)
def test_roots_levels_and_frontier_match_the_rfc(n):
    e, lv = entries(n), leaves(n)
    expected = mth(e)
    assert merkle.root(lv) == expected
    assert merkle.levels(lv)[-1] == [expected]
    frontier = merkle.Frontier()
    for i, leaf in enumerate(lv):
        frontier.append(leaf)
        assert frontier.size == i + 1
        assert frontier.root() == mth(e[: i + 1])  # the root of every prefix, from one pass
    again = merkle.Frontier.load(frontier.dump())
    assert again.size == n and again.root() == expected
    again.append(merkle.leaf_hash(b"next"))
    assert again.root() == mth([*e, b"next"])


@pytest.mark.parametrize("n", SIZES)
def test_inclusion_proofs_are_the_rfc_paths_and_verify(n):
    e, lv = entries(n), leaves(n)
    tree, root = merkle.levels(lv), mth(e)
    for m in range(n):
        got = merkle.inclusion_proof(tree, m)
        assert got == path(m, e)
        assert merkle.verify_inclusion(lv[m], m, n, got, root)


@pytest.mark.parametrize("n", SIZES)
def test_consistency_proofs_are_the_rfc_proofs_and_verify(n):
    e, lv = entries(n), leaves(n)
    for m in range(1, n + 1):
        got = merkle.consistency_proof(lv, m)
        assert got == proof(m, e)
        assert merkle.verify_consistency(m, n, mth(e[:m]), mth(e), got)


def flip(b: bytes) -> bytes:
    return bytes([b[0] ^ 1]) + b[1:]


@pytest.mark.parametrize("n", [2, 3, 5, 8, 13, 31, 64, 70])
def test_altered_inclusion_proofs_fail(n):
    lv = leaves(n)
    tree, root = merkle.levels(lv), merkle.root(lv)
    for m in range(n):
        good = merkle.inclusion_proof(tree, m)
        assert not merkle.verify_inclusion(flip(lv[m]), m, n, good, root)  # another event
        assert not merkle.verify_inclusion(lv[m], m, n, good, flip(root))  # another head
        assert not merkle.verify_inclusion(lv[m], (m + 1) % n, n, good, root)  # another place
        assert not merkle.verify_inclusion(lv[m], m, n, good[:-1], root)  # a hash short
        assert not merkle.verify_inclusion(lv[m], m, n, [*good, root], root)  # a hash too many
        for i in range(len(good)):
            assert not merkle.verify_inclusion(lv[m], m, n, [*good[:i], flip(good[i]), *good[i + 1:]], root)
        assert not merkle.verify_inclusion(lv[m], n, n, good, root)  # outside the tree
        assert not merkle.verify_inclusion(lv[m], -1, n, good, root)
    # an entry made of two leaves' hashes is not their parent node (the 0x00/0x01 prefixes): no
    # second preimage passes a subtree off as one event
    parent = merkle.levels(lv)[1][0]
    assert merkle.leaf_hash(lv[0] + lv[1]) != parent


@pytest.mark.parametrize("n", [2, 3, 5, 8, 13, 31, 64, 70])
def test_altered_consistency_proofs_fail(n):
    lv = leaves(n)
    new_root = merkle.root(lv)
    for m in range(1, n):
        old_root, good = merkle.root(lv[:m]), merkle.consistency_proof(lv, m)
        assert not merkle.verify_consistency(m, n, flip(old_root), new_root, good)
        assert not merkle.verify_consistency(m, n, old_root, flip(new_root), good)
        for i in range(len(good)):
            assert not merkle.verify_consistency(m, n, old_root, new_root, [*good[:i], flip(good[i]), *good[i + 1:]])
        assert not merkle.verify_consistency(m, n, old_root, new_root, good[:-1])
        assert not merkle.verify_consistency(m, n, old_root, new_root, [*good, new_root])
        assert not merkle.verify_consistency(m + 1, n, old_root, new_root, good) or m + 1 == n
        # a rewritten old event: the old tree is not a prefix of the new one
        changed = [*lv[: m - 1], flip(lv[m - 1]), *lv[m:]]
        assert not merkle.verify_consistency(m, n, merkle.root(lv[:m]), merkle.root(changed),
                                             merkle.consistency_proof(changed, m))
    assert not merkle.verify_consistency(0, n, merkle.EMPTY_ROOT, new_root, [])
    assert not merkle.verify_consistency(n, n - 1, new_root, merkle.root(lv[:-1]), [])
    assert merkle.verify_consistency(n, n, new_root, new_root, [])
    assert not merkle.verify_consistency(n, n, new_root, new_root, [new_root])


def test_proofs_outside_the_tree_are_refused():
    lv = leaves(5)
    with pytest.raises(ValueError):
        merkle.inclusion_proof(merkle.levels(lv), 5)
    with pytest.raises(ValueError):
        merkle.consistency_proof(lv, 0)
    with pytest.raises(ValueError):
        merkle.consistency_proof(lv, 6)
