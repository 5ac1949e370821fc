"""Merkle trees over the audit log as RFC 9162 (Certificate Transparency v2) defines them, §2.1.

Pure functions over leaf hashes. The log's entry ``i`` (0-based) is event ``seq = i + 1``; its
leaf hash is ``SHA-256(0x00 || bytes.fromhex(event.hash))`` and an inner node is
``SHA-256(0x01 || left || right)``, so a leaf can never pass for a node. A tree of ``n`` leaves
splits at the largest power of two below ``n``; built level by level that is the same as
carrying an unpaired last node up unchanged, which is how :class:`Frontier` and
:func:`levels` work.

Why a Merkle tree beside the hash chain: a signed tree head commits to every event before it in
32 bytes, a single event's inclusion is shown by ⌈log₂ n⌉ hashes (so an export can be verified
without the database), and two heads are shown consistent (the later extends the earlier) the same
way — which a chain cannot do without replaying everything.
"""
from __future__ import annotations

import hashlib
from typing import Iterable, Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(entry: bytes) -> bytes:
    """RFC 9162 leaf hash of one entry (an event's chain hash, as 32 bytes)."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 inner node hash."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def event_leaf(event_hash_hex: str) -> bytes:
    """The leaf hash of an audit event, from its chain hash."""
    return leaf_hash(bytes.fromhex(event_hash_hex))


class Frontier:
    """The compact range of a growing tree: the roots of its perfect subtrees, largest first, with
    their sizes. Appending is amortised O(1) and :meth:`root` O(log n), so the roots of every
    prefix of a million-event log come out of one pass (verification checks each checkpoint so).
    :meth:`dump`/:meth:`load` keep it across a pruning of the oldest events."""

    def __init__(self, nodes: Iterable[tuple[int, bytes]] = ()) -> None:
        self.nodes: list[tuple[int, bytes]] = list(nodes)
        self.size = sum(n for n, _ in self.nodes)

    def append(self, leaf: bytes) -> None:
        size, node = 1, leaf
        while self.nodes and self.nodes[-1][0] == size:
            left_size, left = self.nodes.pop()
            node, size = node_hash(left, node), size + left_size
        self.nodes.append((size, node))
        self.size += 1

    def root(self) -> bytes:
        """The tree head's root hash over the leaves appended so far."""
        if not self.nodes:
            return EMPTY_ROOT
        root = self.nodes[-1][1]
        for _, node in reversed(self.nodes[:-1]):
            root = node_hash(node, root)
        return root

    def dump(self) -> list[list]:
        return [[n, h.hex()] for n, h in self.nodes]

    @classmethod
    def load(cls, nodes: Iterable[Sequence]) -> "Frontier":
        return cls((int(n), bytes.fromhex(h)) for n, h in nodes)


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of RFC 9162 §2.1.1 over leaf hashes."""
    frontier = Frontier()
    for leaf in leaves:
        frontier.append(leaf)
    return frontier.root()


def levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    """Every level of the tree, leaves first, the root last; an unpaired last node moves up as it is."""
    out = [list(leaves)]
    while len(out[-1]) > 1:
        below = out[-1]
        out.append([node_hash(below[i], below[i + 1]) if i + 1 < len(below) else below[i]
                    for i in range(0, len(below), 2)])
    return out


def inclusion_proof(tree: list[list[bytes]], index: int) -> list[bytes]:
    """PATH(index, D[n]) of RFC 9162 §2.1.3.1, from :func:`levels` of the tree."""
    if not 0 <= index < len(tree[0]):
        raise ValueError(f"leaf {index} is not in a tree of {len(tree[0])}")
    proof = []
    for level in tree[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        index //= 2
    return proof


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root_hash: bytes) -> bool:
    """RFC 9162 §2.1.3.2: does ``proof`` show leaf ``index`` in the tree of ``size`` with ``root_hash``?"""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root_hash


def _subtree_root(leaves: Sequence[bytes]) -> bytes:
    return root(leaves)


def consistency_proof(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 §2.1.4.1: that the tree of ``old_size`` leaves is a prefix of this one."""
    if not 0 < old_size <= len(leaves):
        raise ValueError(f"no consistency proof from {old_size} to {len(leaves)}")

    def subproof(m: int, d: Sequence[bytes], complete: bool) -> list[bytes]:
        n = len(d)
        if m == n:
            return [] if complete else [_subtree_root(d)]
        k = 1 << ((n - 1).bit_length() - 1)
        if m <= k:
            return subproof(m, d[:k], complete) + [_subtree_root(d[k:])]
        return subproof(m - k, d[k:], False) + [_subtree_root(d[:k])]

    return subproof(old_size, leaves, True)


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2: does ``proof`` show the tree of ``old_size`` is a prefix of ``new_size``?"""
    if old_size > new_size or old_size < 1:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    proof = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is the first node
        proof = [old_root, *proof]
    if not proof:
        return False
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root
