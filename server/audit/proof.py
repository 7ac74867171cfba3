"""Inclusion proofs: an entry, the path to its block's Merkle root, the signed block head.

A proof is a JSON document anyone can check without the database or any secret
(`check_proof`; the README gives the same recipe with only `cryptography`):
1. SHA-256 of the entry's document is the entry's hash, and the document is that entry's;
2. the leaf SHA-256(0x00 || position as 8 bytes big-endian || entry hash) climbs the
   path (RFC 9162, 2.1.3.2) to the Merkle root the block head names;
3. the head's range holds the position at the proof's leaf index;
4. the head's Ed25519 signature verifies under the public key (which the checker should
   compare with the one the operator publishes: `custos audit public-key`).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from typing import Any

import orjson

from server.audit.merkle import block_hash, leaf_hash, root_from_path
from server.vault.signing import block_signature_valid

FORMAT = "custos-audit-proof/1"


def build_proof(
    *,
    event_id: str,
    block: int,
    position: int,
    entry_hash: str,
    document: bytes,
    leaf_index: int,
    tree_size: int,
    path: Sequence[bytes],
    head: bytes,
    signature: bytes,
    public_key: bytes,
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "entry": {
            "id": event_id,
            "block": block,
            "position": position,
            "hash": entry_hash,
            "document": base64.b64encode(document).decode(),
        },
        "leaf_index": leaf_index,
        "tree_size": tree_size,
        "path": [node.hex() for node in path],
        "block_head": head.decode(),
        "block_hash": block_hash(head),
        "signature": base64.b64encode(signature).decode(),
        "public_key": base64.b64encode(public_key).decode(),
    }


def check_proof(proof: Any, *, public_key: bytes | None = None) -> list[str]:
    """What is wrong with `proof` (empty: it holds). `public_key` pins the expected key;
    without it the proof's own key is used (and only says the block was signed by it)."""
    try:
        return _check(proof, public_key)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return [f"the proof is malformed ({type(exc).__name__})"]


def _check(proof: Any, pinned: bytes | None) -> list[str]:
    problems: list[str] = []
    if proof.get("format") != FORMAT:
        return [f"not a {FORMAT} document"]
    entry = proof["entry"]
    document = _b64(entry["document"])
    if hashlib.sha256(document).hexdigest() != entry["hash"]:
        problems.append("the entry's document does not match its hash")
    if f'"id":"{entry["id"]}"'.encode() not in document:
        problems.append("the entry's document is not the entry the proof names")
    head_bytes = str(proof["block_head"]).encode()
    head = orjson.loads(head_bytes)
    index, size = int(proof["leaf_index"]), int(proof["tree_size"])
    position = int(entry["position"])
    if int(head["block"]) != int(entry["block"]):
        problems.append("the block head is not the entry's block")
    if head["first_position"] + index != position:
        problems.append("the entry's position is not at the proof's leaf index")
    if head["last_position"] - head["first_position"] + 1 != size:
        problems.append("the tree size does not match the block's range")
    path = [bytes.fromhex(node) for node in proof["path"]]
    root = root_from_path(leaf_hash(position, entry["hash"]), index, size, path)
    if root is None or root.hex() != head["merkle_root"]:
        problems.append("the inclusion path does not lead to the block's Merkle root")
    if block_hash(head_bytes) != proof["block_hash"]:
        problems.append("the block head does not match the block hash")
    key = _b64(proof["public_key"])
    if pinned is not None and key != pinned:
        problems.append("the proof is signed with another key than the one given")
    signature = _b64(proof["signature"])
    if not block_signature_valid(key, head_bytes, signature):
        problems.append("the block head's signature does not verify")
    return problems


def _b64(text: str) -> bytes:
    """Strict base64: a text whose unused bits differ from the canonical encoding's is
    refused, so no two proof files decode to the same proof."""
    raw = base64.b64decode(text, validate=True)
    if base64.b64encode(raw).decode() != text:
        raise ValueError("non-canonical base64")
    return raw
