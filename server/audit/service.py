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
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from server.audit.checkpoints import CheckpointSigner
from server.audit.recorder import write_checkpoint
from server.audit.repository import AuditFilter, AuditRepository
from server.audit.verify import DEFAULT_BATCH, VerifyReport, query_matches, verify_chain
from server.caller import Caller
from server.data.models import AuditAccess, AuditEvent
from server.errors import NotFoundError, ValidationError
from server.paging import Page, page_of
from server.vault.signing import SigningKeys

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
    boundary_seq: int | None
    removed_events: int


class AuditService:
    def __init__(
        self, signer: CheckpointSigner, retention_days: int = DEFAULT_RETENTION_DAYS
    ) -> None:
        self.signer = signer
        self.retention_days = retention_days

    @classmethod
    def build(cls, keys: SigningKeys) -> AuditService:
        return cls(CheckpointSigner(keys))

    def configure(self, *, retention_days: int, checkpoint_every: int) -> None:
        """Apply the settings (`CUSTOS_AUDIT_RETENTION_DAYS`, `..._CHECKPOINT_EVERY`)."""
        self.retention_days = retention_days
        self.signer = CheckpointSigner(self.signer.keys, every=checkpoint_every)

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
        accesses = await repo.accesses_of([r.id for r in rows])
        records: dict[int, list[uuid.UUID]] = defaultdict(list)
        if with_record_ids:
            for rec in await repo.record_ids_of([a.id for a in accesses]):
                records[rec.access_id].append(rec.record_id)
        by_event: dict[uuid.UUID, list[AccessView]] = defaultdict(list)
        for access in accesses:
            by_event[access.event_id].append(
                _access_view(access, sorted(records[access.id]) if with_record_ids else None)
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
        from_checkpoint: int | None = None,
        batch_size: int = DEFAULT_BATCH,
        release_between_batches: bool = False,
        on_start: Callable[[int], None] | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> VerifyReport:
        return await verify_chain(
            session,
            self.signer,
            from_checkpoint=from_checkpoint,
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

    async def checkpoint(self, session: AsyncSession, *, at: datetime | None = None) -> int:
        """Sign the current chain tip now (no-op if it is already checkpointed); `at` is
        the caller's clock."""
        repo = AuditRepository(session)
        seq, chain_hash = await repo.lock_chain_head()
        if seq and await repo.checkpoint_at(seq) is None:
            detail: dict[str, object] = {"reason": "on demand"}
            await write_checkpoint(repo, self.signer, seq, chain_hash, detail, created_at=at)
        return seq

    def retention_cutoff(self, now: datetime) -> datetime:
        return now - timedelta(days=self.retention_days)

    async def prune(
        self, session: AsyncSession, *, cutoff: datetime, at: datetime | None = None
    ) -> PruneResult:
        """Delete events older than `cutoff`, after signing a checkpoint at the boundary.

        The boundary checkpoint carries the last pruned entry's hash, so the remaining
        chain verifies from it. Runs under the chain-head lock: no append interleaves.
        """
        repo = AuditRepository(session)
        await repo.lock_chain_head()
        boundary = await repo.last_seq_before(cutoff)
        if boundary is None:
            return PruneResult(None, 0)
        boundary_hash = await repo.event_hash_at(boundary)
        assert boundary_hash is not None
        if await repo.checkpoint_at(boundary) is None:
            await write_checkpoint(
                repo,
                self.signer,
                boundary,
                boundary_hash,
                {"reason": "prune boundary"},
                created_at=at,
            )
        removed = await repo.delete_through(boundary)
        return PruneResult(boundary, removed)


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
