"""Verify the ledger: entries → blocks → chain → signatures; name the first bad one.

The walk reads block by block (memory holds one block), in block order:
- each entry of the block: present at every position of the block's range, its stored
  hash equal to the hash of its content and accesses, and, for entries written in the old
  hash chain, linked to the entry before it;
- the block: the Merkle root of its leaves and its head hash as stored;
- the chain: each block names the previous block's hash and continues its range;
- the signature: Ed25519 over the head, under the public key of its version.
Then the entries not sealed yet are checked one by one (they are in no block yet: their
content hashes are all that holds them). Blocks whose entries were pruned are covered by
the signed prune boundary (an HMAC checkpoint naming the last pruned block).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from server.audit.chain import GENESIS_HASH, access_content, document_hash, stored_bytes
from server.audit.checkpoints import CheckpointSigner
from server.audit.merkle import (
    GENESIS_BLOCK_HASH,
    block_hash,
    block_head,
    leaf_hash,
    merkle_root,
)
from server.audit.repository import AuditRepository
from server.audit.sealer import iso_utc
from server.data.models import AuditBlock, AuditCheckpoint, AuditEvent
from server.vault.signing import (
    SigningKeys,
    block_public_key,
    block_signature_valid,
    query_hash_matches,
)

DEFAULT_BATCH = 500


@dataclass(frozen=True)
class LedgerProblem:
    """The first problem found: `kind` is entry | removed | block | chain | signature |
    checkpoint; `block` and `position` say where (0 when not in a block)."""

    kind: str
    block: int
    position: int
    event_id: uuid.UUID | None
    detail: str
    seq: int = 0

    def describe(self) -> str:
        if self.kind in ("entry", "removed"):
            where = f"position {self.position}" if self.position else f"seq {self.seq}"
            if self.event_id:
                where += f" (id {self.event_id})"
            if self.block:
                where += f" in block {self.block}"
            else:
                where += " (not sealed yet)"
            noun = "altered entry" if self.kind == "entry" else "missing entry"
            return f"{noun} at {where}: {self.detail}"
        if self.kind == "checkpoint":
            return f"bad prune boundary: {self.detail}"
        return f"{self.kind} problem at block {self.block}: {self.detail}"


@dataclass(frozen=True)
class VerifyReport:
    start_block: int
    last_block: int
    last_position: int
    checked: int
    blocks_checked: int
    unsealed_checked: int
    problem: LedgerProblem | None

    @property
    def ok(self) -> bool:
        return self.problem is None


class _Stop(Exception):
    def __init__(self, problem: LedgerProblem) -> None:
        self.problem = problem


@dataclass
class _Walk:
    prev_hash: str = GENESIS_BLOCK_HASH
    number: int = 0
    position: int = 0
    checked: int = 0
    blocks: int = 0
    unsealed: int = 0
    legacy_prev: str | None = None
    # Started past the first block: the first pre-block entry met links to what it says.
    legacy_trusted: bool = False


def _checkpoint_valid(signer: CheckpointSigner, cp: AuditCheckpoint) -> bool:
    return signer.is_valid(
        cp.seq, cp.hash, cp.created_at, cp.key_version, dict(cp.detail or {}), cp.signature
    )


async def verify_ledger(
    session: AsyncSession,
    signer: CheckpointSigner,
    *,
    from_block: int | None = None,
    batch_size: int = DEFAULT_BATCH,
    release_between_batches: bool = False,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Verify every block (from block `from_block`, trusting nothing before it but its own
    signature), then the unsealed entries. With `release_between_batches` each batch is
    read in its own short transaction, so a long walk never holds a snapshot for long."""
    repo = AuditRepository(session)
    walk = _Walk()
    start = 1
    try:
        pruned_through, legacy_boundaries = await _prune_boundaries(repo, signer)
        last = await repo.last_block()
        if on_start is not None:
            on_start(last.last_position if last is not None else 0)
        if from_block is not None:
            first = await repo.block(from_block)
            if first is None:
                raise _Stop(LedgerProblem("block", from_block, 0, None, "no such block"))
            start = from_block
            walk.prev_hash, walk.number = first.prev_hash, from_block - 1
            walk.position = first.first_position - 1
            walk.legacy_trusted = True
        legacy_head = await repo.chain_head()
        while True:
            blocks = await repo.blocks_after(walk.number, batch_size)
            if not blocks:
                break
            for block in blocks:
                _check_link(block, walk)
                entries = 0
                if block.number > pruned_through:
                    entries = await _check_entries(repo, block, walk, legacy_boundaries)
                _check_block(signer.keys, block, walk)
                if on_progress is not None and entries:
                    on_progress(entries)
            if release_between_batches:
                await session.rollback()
        stray = await repo.entries_past_blocks(walk.number)
        if stray:
            raise _Stop(
                LedgerProblem(
                    "block",
                    walk.number + 1,
                    0,
                    None,
                    f"{stray} entries name a block past the last one (block {walk.number})",
                )
            )
        await _check_unsealed(repo, walk, legacy_boundaries, batch_size)
        head_seq, head_hash = legacy_head
        if head_seq and walk.legacy_prev is not None and walk.legacy_prev != head_hash:
            raise _Stop(
                LedgerProblem(
                    "removed",
                    0,
                    0,
                    None,
                    f"the pre-block chain does not reach its recorded tip (seq {head_seq})",
                    seq=head_seq,
                )
            )
    except _Stop as stop:
        return VerifyReport(
            start,
            walk.number,
            walk.position,
            walk.checked,
            walk.blocks,
            walk.unsealed,
            stop.problem,
        )
    return VerifyReport(
        start, walk.number, walk.position, walk.checked, walk.blocks, walk.unsealed, None
    )


async def _prune_boundaries(
    repo: AuditRepository, signer: CheckpointSigner
) -> tuple[int, dict[int, str]]:
    """The last block whose entries were pruned (0: none), from signed prune boundaries,
    and the signed checkpoints of the pre-block chain (seq → hash) its walk may start at."""
    pruned = 0
    legacy: dict[int, str] = {}
    for cp in await repo.checkpoints():
        if not _checkpoint_valid(signer, cp):
            raise _Stop(
                LedgerProblem(
                    "checkpoint", 0, 0, None, f"the checkpoint at {cp.seq} does not verify"
                )
            )
        detail = dict(cp.detail or {})
        block = detail.get("block")
        if isinstance(block, int):
            pruned = max(pruned, block)
        else:
            legacy[cp.seq] = cp.hash
    return pruned, legacy


async def _check_entries(
    repo: AuditRepository, block: AuditBlock, walk: _Walk, legacy: dict[int, str]
) -> int:
    entries = await repo.block_entries(block.number)
    hashed, miscounted = await hashed_accesses(repo, entries)
    expected = block.first_position
    leaves = []
    for entry in entries:
        position = int(entry.position or 0)
        if position > block.last_position:
            raise _Stop(
                LedgerProblem(
                    "block",
                    block.number,
                    0,
                    None,
                    f"it holds position {position}, past its range's end ({block.last_position})",
                )
            )
        if position != expected:
            raise _Stop(
                LedgerProblem(
                    "removed",
                    block.number,
                    expected,
                    None,
                    f"positions {expected}..{position - 1} are missing "
                    f"(next present: position {position} id {entry.id})",
                )
            )
        _check_entry(entry, hashed[entry.id], entry.id in miscounted, walk, legacy, block.number)
        leaves.append(leaf_hash(position, entry.hash))
        walk.checked += 1
        expected += 1
    if expected != block.last_position + 1:
        raise _Stop(
            LedgerProblem(
                "removed",
                block.number,
                expected,
                None,
                f"positions {expected}..{block.last_position} of the block are missing",
            )
        )
    if merkle_root(leaves).hex() != block.merkle_root:
        raise _Stop(
            LedgerProblem("block", block.number, 0, None, "its entries do not give its Merkle root")
        )
    return len(entries)


def _check_entry(
    entry: AuditEvent,
    accesses: list[dict[str, object]],
    miscounted: bool,
    walk: _Walk,
    legacy: dict[int, str],
    block: int,
) -> None:
    if document_hash(stored_bytes(entry, accesses)) != entry.hash or miscounted:
        raise _Stop(
            LedgerProblem(
                "entry",
                block,
                int(entry.position or 0),
                entry.id,
                "the entry or its accesses do not match its hash",
                seq=entry.seq,
            )
        )
    if entry.prev_hash is not None:
        # An entry of the pre-block chain: it must link to the one before it.
        if walk.legacy_prev is None:
            links = (
                walk.legacy_trusted
                or entry.prev_hash == GENESIS_HASH
                or legacy.get(entry.seq - 1) == entry.prev_hash
            )
        else:
            links = entry.prev_hash == walk.legacy_prev
        if not links:
            raise _Stop(
                LedgerProblem(
                    "entry",
                    block,
                    int(entry.position or 0),
                    entry.id,
                    "the entry does not link to the entry before it in the pre-block chain",
                    seq=entry.seq,
                )
            )
        walk.legacy_prev = entry.hash


def _check_link(block: AuditBlock, walk: _Walk) -> None:
    """The block continues the chain: next number, next range, previous block's hash."""
    if block.number != walk.number + 1:
        raise _Stop(LedgerProblem("removed", walk.number + 1, 0, None, "the block is missing"))
    if block.first_position != walk.position + 1 or block.last_position < block.first_position:
        raise _Stop(
            LedgerProblem(
                "chain",
                block.number,
                0,
                None,
                f"its range {block.first_position}..{block.last_position} does not continue "
                f"the ledger at position {walk.position + 1}",
            )
        )
    if block.prev_hash != walk.prev_hash:
        raise _Stop(
            LedgerProblem(
                "chain", block.number, 0, None, "it does not name the previous block's hash"
            )
        )


def _check_block(keys: SigningKeys, block: AuditBlock, walk: _Walk) -> None:
    """The block's head is as hashed and signed."""
    head = block_head(
        number=block.number,
        first_position=block.first_position,
        last_position=block.last_position,
        merkle_root_hex=block.merkle_root,
        prev_hash=block.prev_hash,
        sealed_at=iso_utc(block.sealed_at),
        key_version=block.key_version,
    )
    if block_hash(head) != block.hash:
        raise _Stop(
            LedgerProblem("block", block.number, 0, None, "its head does not match its hash")
        )
    try:
        public_key = block_public_key(keys, block.key_version)
    except KeyError:
        public_key = b""
    if not public_key or not block_signature_valid(public_key, head, block.signature):
        raise _Stop(
            LedgerProblem(
                "signature", block.number, 0, None, "the block head's signature does not verify"
            )
        )
    walk.prev_hash = block.hash
    walk.number = block.number
    walk.position = block.last_position
    walk.blocks += 1


async def _check_unsealed(
    repo: AuditRepository, walk: _Walk, legacy: dict[int, str], batch_size: int
) -> None:
    cursor = 0
    while True:
        entries = await repo.unsealed_after(cursor, batch_size)
        if not entries:
            return
        hashed, miscounted = await hashed_accesses(repo, entries)
        for entry in entries:
            if entry.position is not None:
                raise _Stop(
                    LedgerProblem(
                        "entry",
                        0,
                        int(entry.position),
                        entry.id,
                        "the entry has a position but no block: its block was removed",
                        seq=entry.seq,
                    )
                )
            _check_entry(entry, hashed[entry.id], entry.id in miscounted, walk, legacy, 0)
            walk.unsealed += 1
        cursor = entries[-1].seq


async def hashed_accesses(
    repo: AuditRepository, events: Sequence[AuditEvent]
) -> tuple[dict[uuid.UUID, list[dict[str, object]]], set[uuid.UUID]]:
    """Each event's accesses as hashed, and the events whose stored record counts lie."""
    accesses = await repo.accesses_of([e.id for e in events])
    hashed: dict[uuid.UUID, list[dict[str, object]]] = defaultdict(list)
    miscounted: set[uuid.UUID] = set()
    for access in accesses:
        # The hash covers the ids as a sorted list of strings: how they are packed is
        # storage, not content (an id packed twice is hashed twice, and so caught).
        records = [str(r) for r in access.record_ids]
        if access.record_count != len(records):
            miscounted.add(access.event_id)
        hashed[access.event_id].append(
            access_content(
                access.object_type,
                access.action,
                access.fields,
                access.denied_fields,
                access.changed_fields,
                records,
            )
        )
    return hashed, miscounted


def query_matches(keys: SigningKeys, event: AuditEvent, query: str) -> bool:
    """Whether `query` is the text whose keyed hash `event` carries. The hash is an HMAC
    under a key derived from the keyring's signing key (`server.vault.signing`): only a
    holder of the keyring can check a text against it, and nobody can test guesses
    against it without one."""
    return event.query_hash is not None and query_hash_matches(keys, event.query_hash, query)
