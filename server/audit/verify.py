"""Walk the audit chain and name the first entry that was altered, removed or reordered.

The walk reads in keyset batches on `seq`, so memory holds one batch however long the
chain is. It may start at the genesis or at a signed checkpoint; every checkpoint's
signature is checked, and every checkpoint inside the walked range must agree with the
chain (a chain rewritten from scratch without the signing key disagrees with them).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from server.audit.chain import GENESIS_HASH, access_content, entry_hash, event_content
from server.audit.checkpoints import CheckpointSigner
from server.audit.repository import AuditRepository
from server.data.models import AuditCheckpoint, AuditEvent
from server.vault.signing import SigningKeys, query_hash_matches

DEFAULT_BATCH = 500


@dataclass(frozen=True)
class ChainBreak:
    """The first problem found: `kind` is altered | removed | reordered | checkpoint."""

    kind: str
    seq: int
    event_id: uuid.UUID | None
    detail: str

    def describe(self) -> str:
        where = f"seq {self.seq}" + (f" id {self.event_id}" if self.event_id else "")
        return f"{self.kind} entry at {where}: {self.detail}"


@dataclass(frozen=True)
class VerifyReport:
    start_seq: int
    last_seq: int
    checked: int
    checkpoints_checked: int
    problem: ChainBreak | None

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass(frozen=True)
class _Checkpoint:
    """A checkpoint as plain values, so it survives the walk ending its transactions."""

    seq: int
    hash: str


class _Stop(Exception):
    def __init__(self, problem: ChainBreak) -> None:
        self.problem = problem


def _checkpoint_valid(signer: CheckpointSigner, cp: AuditCheckpoint) -> bool:
    return signer.is_valid(
        cp.seq, cp.hash, cp.created_at, cp.key_version, dict(cp.detail or {}), cp.signature
    )


async def verify_chain(
    session: AsyncSession,
    signer: CheckpointSigner,
    *,
    from_checkpoint: int | None = None,
    batch_size: int = DEFAULT_BATCH,
    release_between_batches: bool = False,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Verify the chain up to the head read at the start (later appends are not walked).

    `from_checkpoint` is a checkpoint's seq (or -1 for the latest, the genesis while there
    is none). With `release_between_batches` each batch is read in its own short
    transaction, so a long walk never holds SQLite's write lock against the API.
    """
    repo = AuditRepository(session)
    head_seq, head_hash = await repo.chain_head()
    stored = await repo.checkpoints()
    checkpoints = [_Checkpoint(cp.seq, cp.hash) for cp in stored]
    try:
        for cp in stored:
            if not _checkpoint_valid(signer, cp):
                raise _Stop(
                    ChainBreak("checkpoint", cp.seq, None, "checkpoint signature does not verify")
                )
        start_seq, prev_hash = await _start(repo, checkpoints, from_checkpoint)
        if on_start is not None:
            on_start(max(head_seq - start_seq, 0))
        if release_between_batches:
            await session.rollback()
        by_seq = {cp.seq: cp for cp in checkpoints if cp.seq > start_seq}
        last_seq, last_hash, checked = await _walk(
            repo,
            start_seq,
            prev_hash,
            head_seq,
            by_seq,
            batch_size,
            on_progress,
            release_between_batches,
        )
        if head_seq > last_seq:
            raise _Stop(
                ChainBreak(
                    "removed",
                    last_seq + 1,
                    None,
                    f"the chain head is at seq {head_seq} but the last entry is seq {last_seq}",
                )
            )
        if head_hash != last_hash:
            raise _Stop(
                ChainBreak(
                    "altered", head_seq, None, "the chain head does not match the last entry"
                )
            )
        await _no_entries_past_the_head(repo)
    except _Stop as stop:
        return VerifyReport(0, 0, 0, len(checkpoints), stop.problem)
    return VerifyReport(start_seq, last_seq, checked, len(checkpoints), None)


async def _no_entries_past_the_head(repo: AuditRepository) -> None:
    """Rows past the head were never appended through the chain (read the head again
    last, so an append that committed during the walk is not mistaken for one)."""
    tail = await repo.last_seq()
    head_seq, _ = await repo.chain_head()
    if tail > head_seq:
        raise _Stop(
            ChainBreak(
                "altered",
                head_seq + 1,
                None,
                f"entries up to seq {tail} lie past the chain head (seq {head_seq})",
            )
        )


async def _start(
    repo: AuditRepository, checkpoints: Sequence[_Checkpoint], from_checkpoint: int | None
) -> tuple[int, str]:
    """Where the walk starts: a chosen checkpoint, the pruning boundary, or the genesis."""
    if from_checkpoint is not None and from_checkpoint < 0 and not checkpoints:
        # "The latest checkpoint" before any was signed: the whole chain, a stricter walk
        # than from any checkpoint (a pruned start still needs its signed boundary).
        from_checkpoint = None
    if from_checkpoint is not None:
        if not checkpoints:
            raise _Stop(ChainBreak("checkpoint", 0, None, "there is no checkpoint to start from"))
        if from_checkpoint < 0:
            chosen = checkpoints[-1]
        else:
            match = [cp for cp in checkpoints if cp.seq == from_checkpoint]
            if not match:
                raise _Stop(
                    ChainBreak("checkpoint", from_checkpoint, None, "no checkpoint at this seq")
                )
            chosen = match[0]
        return chosen.seq, chosen.hash
    first = await repo.first_seq()
    if first is None:
        # Everything was pruned: the walk starts (and ends) at the newest checkpoint.
        head_seq, _ = await repo.chain_head()
        first = head_seq + 1
    if first == 1:
        return 0, GENESIS_HASH
    # Entries before `first` were pruned; pruning leaves a signed checkpoint at the boundary.
    boundary = [cp for cp in checkpoints if cp.seq == first - 1]
    if not boundary:
        raise _Stop(
            ChainBreak(
                "removed",
                1,
                None,
                f"entries 1..{first - 1} are missing and no checkpoint covers them",
            )
        )
    return boundary[0].seq, boundary[0].hash


async def _walk(
    repo: AuditRepository,
    start_seq: int,
    prev_hash: str,
    through_seq: int,
    checkpoints: dict[int, _Checkpoint],
    batch_size: int,
    on_progress: Callable[[int], None] | None,
    release_between_batches: bool,
) -> tuple[int, str, int]:
    """Returns the last seq walked, its hash, and how many entries were checked."""
    expected = start_seq + 1
    cursor = start_seq
    checked = 0
    while True:
        events = await repo.events_after(cursor, batch_size, through_seq=through_seq)
        if not events:
            return expected - 1, prev_hash, checked
        hashed, miscounted = await _hashed_accesses(repo, events)
        for event in events:
            if event.seq != expected:
                raise _Stop(
                    ChainBreak(
                        "removed",
                        expected,
                        None,
                        f"entries {expected}..{event.seq - 1} are missing "
                        f"(next present: seq {event.seq} id {event.id})",
                    )
                )
            if event.prev_hash != prev_hash:
                raise _Stop(
                    ChainBreak(
                        "reordered",
                        event.seq,
                        event.id,
                        "the entry does not link to the entry before it",
                    )
                )
            computed = entry_hash(event.prev_hash, event_content(event), hashed[event.id])
            if computed != event.hash or event.id in miscounted:
                raise _Stop(
                    ChainBreak(
                        "altered",
                        event.seq,
                        event.id,
                        "the entry or its accesses do not match its hash",
                    )
                )
            checkpoint = checkpoints.get(event.seq)
            if checkpoint is not None and checkpoint.hash != event.hash:
                raise _Stop(
                    ChainBreak(
                        "altered",
                        event.seq,
                        event.id,
                        "the entry disagrees with the signed checkpoint at this seq",
                    )
                )
            prev_hash = event.hash
            expected += 1
            checked += 1
        cursor = events[-1].seq
        if release_between_batches:
            await repo.session.rollback()
        if on_progress is not None:
            on_progress(len(events))


async def _hashed_accesses(
    repo: AuditRepository, events: Sequence[AuditEvent]
) -> tuple[dict[uuid.UUID, list[dict[str, object]]], set[uuid.UUID]]:
    """Each event's accesses as hashed, and the events whose stored record counts lie."""
    accesses = await repo.accesses_of([e.id for e in events])
    records: dict[int, list[str]] = defaultdict(list)
    for row in await repo.record_ids_of([a.id for a in accesses]):
        records[row.access_id].append(str(row.record_id))
    hashed: dict[uuid.UUID, list[dict[str, object]]] = defaultdict(list)
    miscounted: set[uuid.UUID] = set()
    for access in accesses:
        if access.record_count != len(records.get(access.id, [])):
            miscounted.add(access.event_id)
        hashed[access.event_id].append(
            access_content(
                access.object_type,
                access.action,
                access.fields,
                access.denied_fields,
                access.changed_fields,
                records.get(access.id, []),
            )
        )
    return hashed, miscounted


def query_matches(keys: SigningKeys, event: AuditEvent, query: str) -> bool:
    """Whether `query` is the text whose keyed hash `event` carries. The hash is an HMAC
    under a key derived from the keyring's signing key (`server.vault.signing`): only a
    holder of the keyring can check a text against it, and nobody can test guesses
    against it without one."""
    return event.query_hash is not None and query_hash_matches(keys, event.query_hash, query)
