"""The ledger's hashing: RFC 6962 Merkle trees over a block's entries and block heads.

Pure functions of bytes (no key, no database), shared by the sealer, `verify`, the proofs
and their offline check. A leaf is SHA-256(0x00 || position (8 bytes, big-endian) ||
entry hash (32 bytes)); an inner node SHA-256(0x01 || left || right); a tree of n leaves
splits at the largest power of two below n (RFC 6962, section 2.1).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
GENESIS_BLOCK_HASH = "0" * 64


def leaf_hash(position: int, entry_hash: str) -> bytes:
    return hashlib.sha256(
        LEAF_PREFIX + position.to_bytes(8, "big") + bytes.fromhex(entry_hash)
    ).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below n (n >= 2)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of RFC 6962; the hash of the empty string for no leaves."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = list(leaves)
    # Bottom-up pairing gives the same tree as the recursive split: an odd node at the
    # end of a level is carried up unchanged.
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def inclusion_path(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(m, D[n]) of RFC 6962: the siblings from the leaf up to the root."""
    if len(leaves) <= 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*inclusion_path(leaves[:k], index), merkle_root(leaves[k:])]
    return [*inclusion_path(leaves[k:], index - k), merkle_root(leaves[:k])]


def root_from_path(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes | None:
    """The root a leaf at `index` of a tree of `size` leaves reaches through `path` (RFC 9162,
    section 2.1.3.2); None when the path's length does not fit the tree."""
    if index >= size:
        return None
    fn, sn = index, size - 1
    node = leaf
    for sibling in path:
        if sn == 0:
            return None
        if fn % 2 == 1 or fn == sn:
            node = node_hash(sibling, node)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            node = node_hash(node, sibling)
        fn >>= 1
        sn >>= 1
    return node if sn == 0 else None


def block_head(
    *,
    number: int,
    first_position: int,
    last_position: int,
    merkle_root_hex: str,
    prev_hash: str,
    sealed_at: str,
    key_version: int,
) -> bytes:
    """The signed bytes of a block head (canonical JSON: sorted keys, no spaces)."""
    head: Mapping[str, Any] = {
        "block": number,
        "first_position": first_position,
        "last_position": last_position,
        "merkle_root": merkle_root_hex,
        "prev_block_hash": prev_hash,
        "sealed_at": sealed_at,
        "key_version": key_version,
    }
    return orjson.dumps(head, option=orjson.OPT_SORT_KEYS)


def block_hash(head: bytes) -> str:
    """A block's hash, which the next block's head names as `prev_block_hash`."""
    return hashlib.sha256(head).hexdigest()
