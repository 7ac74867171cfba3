"""The audit trail as a service: compliance search, export, checkpoints, retention.

Reading the trail is itself an access: `events` and `event` record which audit events
the caller saw on the caller's own recorder, which the edge appends as the request's
one event (after the search ran, so it never finds or recurses into itself).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from server.audit.chain import stored_bytes
from server.audit.checkpoints import CheckpointSigner
from server.audit.merkle import block_head, inclusion_path, leaf_hash
from server.audit.proof import build_proof
from server.audit.repository import AuditFilter, AuditRepository
from server.audit.sealer import iso_utc
from server.audit.verify import (
    DEFAULT_BATCH,
    VerifyReport,
    hashed_accesses,
    query_matches,
    verify_ledger,
)
from server.caller import Caller
from server.data.base import utcnow
from server.data.models import AuditAccess, AuditEvent
from server.errors import ConflictError, NotFoundError, ValidationError
from server.paging import Page, page_of
from server.vault.signing import SigningKeys, block_public_key

OBJECT = "audit"
AUDITED_AS = "audit_event"
DEFAULT_RETENTION_DAYS = 365
OUTCOMES = ("ok", "partial", "denied", "error")

EVENT_FIELDS = (
    "id",
    "seq",
    "occurred_at",
    "subject",
    "roles",
    "api_key_id",
    "purpose",
    "operation_type",
    "operation_name",
    "query_hash",
    "client_addr",
    "user_agent",
    "request_id",
    "outcome",
    "block",
    "position",
    "prev_hash",
    "hash",
)


@dataclass(frozen=True)
class AccessView:
    object_type: str
    action: str
    fields: dict[str, str]
    denied_fields: list[str]
    changed_fields: list[str]
    record_count: int
    record_ids: list[uuid.UUID] | None


@dataclass(frozen=True)
class EventView:
    event: AuditEvent
    accesses: list[AccessView] = field(default_factory=list)


@dataclass(frozen=True)
class PruneResult:
    boundary_block: int | None
    removed_events: int


@dataclass(frozen=True)
class SealStatus:
    """Unsealed entries, how long the oldest has waited (the seal lag, seconds), when the
    ledger was last sealed, and how far: the last block and position."""

    unsealed: int
    lag_seconds: float
    sealed_at: datetime | None
    blocks: int
    last_position: int


@dataclass(frozen=True)
class Proof:
    """An inclusion proof (see `server.audit.proof`) as a JSON-ready document."""

    document: dict[str, Any]


class AuditService:
    def __init__(
        self, signer: CheckpointSigner, retention_days: int = DEFAULT_RETENTION_DAYS
    ) -> None:
        self.signer = signer
        self.retention_days = retention_days

    @classmethod
    def build(cls, keys: SigningKeys) -> AuditService:
        return cls(CheckpointSigner(keys))

    @property
    def keys(self) -> SigningKeys:
        return self.signer.keys

    def configure(self, *, retention_days: int) -> None:
        """Apply the settings (`CUSTOS_AUDIT_RETENTION_DAYS`)."""
        self.retention_days = retention_days

    # -- compliance reads ---------------------------------------------------------------

    async def events(
        self,
        session: AsyncSession,
        caller: Caller,
        *,
        flt: AuditFilter,
        first: int,
        before_seq: int | None,
        with_total: bool,
        with_accesses: bool,
        with_record_ids: bool,
    ) -> Page[EventView]:
        """Events matching the filter, newest first, for a caller allowed `audit`/`read`."""
        caller.gate.require(OBJECT, "read")
        if flt.outcome is not None and flt.outcome not in OUTCOMES:
            raise ValidationError(f"outcome must be one of {', '.join(OUTCOMES)}")
        repo = AuditRepository(session)
        rows = await repo.search(flt, before_seq=before_seq, limit=first + 1)
        total = await repo.count(flt) if with_total else None
        page = page_of(rows, first, total)
        views = await self._views(repo, page.items, with_accesses, with_record_ids)
        caller.audit.read(AUDITED_AS, (v.event.id for v in views), _modes())
        return page.with_items(views)

    async def event(
        self,
        session: AsyncSession,
        caller: Caller,
        event_id: uuid.UUID,
        *,
        with_accesses: bool,
        with_record_ids: bool,
    ) -> EventView:
        caller.gate.require(OBJECT, "read")
        repo = AuditRepository(session)
        row = await repo.by_id(event_id)
        if row is None:
            raise NotFoundError("audit event not found")
        view = (await self._views(repo, [row], with_accesses, with_record_ids))[0]
        caller.audit.read(AUDITED_AS, [row.id], _modes())
        return view

    async def _views(
        self,
        repo: AuditRepository,
        rows: Sequence[AuditEvent],
        with_accesses: bool,
        with_record_ids: bool,
    ) -> list[EventView]:
        if not with_accesses:
            return [EventView(row) for row in rows]
        accesses = await repo.accesses_of([r.id for r in rows], with_record_ids=with_record_ids)
        by_event: dict[uuid.UUID, list[AccessView]] = defaultdict(list)
        for access in accesses:
            by_event[access.event_id].append(
                _access_view(access, sorted(access.record_ids) if with_record_ids else None)
            )
        return [EventView(row, by_event.get(row.id, [])) for row in rows]

    # -- export -------------------------------------------------------------------------

    async def stream(
        self,
        session: AsyncSession,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        batch_size: int = DEFAULT_BATCH,
        release_between_batches: bool = False,
    ) -> AsyncIterator[dict[str, Any]]:
        """Events with their accesses as plain dicts, in chain order, one batch in memory."""
        repo = AuditRepository(session)
        cursor = 0
        while True:
            rows = await repo.events_after(cursor, batch_size, since=since, until=until)
            if not rows:
                return
            records = [export_record(view) for view in await self._views(repo, rows, True, True)]
            cursor = rows[-1].seq
            if release_between_batches:
                await session.rollback()
            for record in records:
                yield record

    # -- integrity and retention ----------------------------------------------------------

    async def verify(
        self,
        session: AsyncSession,
        *,
        from_block: int | None = None,
        batch_size: int = DEFAULT_BATCH,
        release_between_batches: bool = False,
        on_start: Callable[[int], None] | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> VerifyReport:
        return await verify_ledger(
            session,
            self.signer,
            from_block=from_block,
            batch_size=batch_size,
            release_between_batches=release_between_batches,
            on_start=on_start,
            on_progress=on_progress,
        )

    async def query_matches(
        self, session: AsyncSession, event_id: uuid.UUID, query: str
    ) -> bool | None:
        """Whether `query` is the text event `event_id` hashed (None: no such event)."""
        row = await AuditRepository(session).by_id(event_id)
        return None if row is None else query_matches(self.signer.keys, row, query)

    async def status(self, session: AsyncSession, now: datetime) -> SealStatus:
        """How far sealing has come: unsealed entries and how long the oldest has waited."""
        unsealed, oldest, sealed_at, blocks, position = await AuditRepository(session).seal_status()
        oldest = _aware(oldest)
        lag = (now - oldest).total_seconds() if oldest is not None else 0.0
        return SealStatus(unsealed, max(lag, 0.0), _aware(sealed_at), blocks, position)

    def public_key(self, version: int | None = None) -> tuple[int, bytes]:
        """The Ed25519 public key block heads are signed with (newest version by default)."""
        if version is None:
            version, _ = self.keys.signing_key()
        return version, block_public_key(self.keys, version)

    async def proof(self, session: AsyncSession, caller: Caller, event_id: uuid.UUID) -> Proof:
        """An inclusion proof of one entry in its signed block, for a caller allowed
        `audit`/`read` (recorded as a read of the entry, like `event`)."""
        caller.gate.require(OBJECT, "read")
        repo = AuditRepository(session)
        row = await repo.by_id(event_id)
        if row is None:
            raise NotFoundError("audit event not found")
        if row.block is None or row.position is None:
            raise ConflictError(
                "the audit event is not sealed into a block yet; ask again in a moment",
                code="AUDIT_NOT_SEALED",
            )
        block = await repo.block(row.block)
        if block is None:
            raise NotFoundError("audit event not found")
        leaves = [leaf_hash(int(p or 0), str(h)) for p, h in await repo.block_leaves(block.number)]
        index = row.position - block.first_position
        hashed, _ = await hashed_accesses(repo, [row])
        head = block_head(
            number=block.number,
            first_position=block.first_position,
            last_position=block.last_position,
            merkle_root_hex=block.merkle_root,
            prev_hash=block.prev_hash,
            sealed_at=iso_utc(block.sealed_at),
            key_version=block.key_version,
        )
        _, public = self.public_key(block.key_version)
        caller.audit.read(AUDITED_AS, [row.id], _modes())
        return Proof(
            build_proof(
                event_id=str(row.id),
                block=block.number,
                position=row.position,
                entry_hash=row.hash,
                document=stored_bytes(row, hashed[row.id]),
                leaf_index=index,
                tree_size=len(leaves),
                path=inclusion_path(leaves, index),
                head=head,
                signature=bytes(block.signature),
                public_key=public,
            )
        )

    def retention_cutoff(self, now: datetime) -> datetime:
        return now - timedelta(days=self.retention_days)

    async def prune(
        self, session: AsyncSession, *, cutoff: datetime, at: datetime | None = None
    ) -> PruneResult:
        """Delete the entries of blocks sealed before `cutoff`, after signing a prune
        boundary naming the last such block. Block heads stay, so the chain of blocks and
        its signatures still verify; unsealed entries are never pruned."""
        repo = AuditRepository(session)
        if not await repo.take_sealer_lock():
            raise ConflictError("the sealer is running; try again", code="AUDIT_BUSY")
        block = await repo.last_block_before(cutoff)
        if block is None:
            return PruneResult(None, 0)
        if await repo.checkpoint_at(block.last_position) is None:
            created_at = at or utcnow()
            detail: dict[str, Any] = {"reason": "prune boundary", "block": block.number}
            key_version, signature = self.signer.sign(
                block.last_position, block.hash, created_at, detail
            )
            await repo.add_checkpoint(
                seq=block.last_position,
                chain_hash=block.hash,
                created_at=created_at,
                key_version=key_version,
                signature=signature,
                detail=detail,
            )
        removed = await repo.delete_through(block.number)
        return PruneResult(block.number, removed)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _modes() -> dict[str, str]:
    return {name: "clear" for name in EVENT_FIELDS}


def _access_view(access: AuditAccess, record_ids: list[uuid.UUID] | None) -> AccessView:
    return AccessView(
        object_type=access.object_type,
        action=access.action,
        fields=dict(access.fields),
        denied_fields=list(access.denied_fields),
        changed_fields=list(access.changed_fields),
        record_count=access.record_count,
        record_ids=record_ids,
    )


def export_record(view: EventView) -> dict[str, Any]:
    """The SIEM shape of one event: flat event fields plus a list of accesses."""
    event = view.event
    record: dict[str, Any] = {name: getattr(event, name) for name in EVENT_FIELDS}
    record["id"] = str(event.id)
    record["api_key_id"] = str(event.api_key_id) if event.api_key_id else None
    occurred = event.occurred_at
    record["occurred_at"] = (
        occurred.isoformat() if occurred.tzinfo else occurred.isoformat() + "+00:00"
    )
    record["accesses"] = [
        {
            "object_type": a.object_type,
            "action": a.action,
            "fields": a.fields,
            "denied_fields": a.denied_fields,
            "changed_fields": a.changed_fields,
            "record_count": a.record_count,
            "record_ids": [str(r) for r in a.record_ids or []],
        }
        for a in view.accesses
    ]
    return record
