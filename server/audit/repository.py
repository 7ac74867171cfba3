"""Audit rows: the chain-serialised append, batched reads, search and the guarded prune."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Row,
    and_,
    cast,
    delete,
    exists,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from server.data.base import Base
from server.data.models import (
    AuditAccess,
    AuditAccessRecord,
    AuditChainHead,
    AuditCheckpoint,
    AuditEvent,
)

AUDIT_TABLES = ("audit_events", "audit_accesses", "audit_access_records")
_EVENTS = Base.metadata.tables["audit_events"]
_ACCESSES = Base.metadata.tables["audit_accesses"]


@dataclass(frozen=True)
class AuditFilter:
    """Event-level and access-level criteria; access-level ones must hold on one access."""

    subject: str | None = None
    role: str | None = None
    purpose: str | None = None
    outcome: str | None = None
    operation_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    record_id: uuid.UUID | None = None
    object_type: str | None = None
    field: str | None = None


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def _dialect(self) -> str:
        return self.session.get_bind().dialect.name

    async def freshness(self) -> tuple[datetime | None, int, int]:
        """The newest entry's time, the newest entry's sequence number and the newest
        signed checkpoint's (0 when none): what the operations metrics report."""
        latest = (
            await self.session.execute(
                select(func.max(AuditEvent.occurred_at), func.max(AuditEvent.seq))
            )
        ).one()
        checkpoint = await self.session.scalar(select(func.max(AuditCheckpoint.seq)))
        return latest[0], int(latest[1] or 0), int(checkpoint or 0)

    # -- the append ------------------------------------------------------------------

    async def lock_chain_head(self) -> tuple[int, str]:
        """Take the chain tip under a row lock (PostgreSQL) / the write lock (SQLite)."""
        row = (
            await self.session.execute(
                select(AuditChainHead.seq, AuditChainHead.hash)
                .where(AuditChainHead.id == 1)
                .with_for_update()
            )
        ).one()
        return int(row.seq), str(row.hash)

    async def append(
        self,
        event: dict[str, Any],
        accesses: Sequence[tuple[dict[str, Any], Sequence[uuid.UUID]]],
    ) -> None:
        # Core inserts on the tables, not ORM bulk inserts: a 1,000-row read appends 1,000
        # record ids, and the ORM bookkeeping would cost more than the rows themselves.
        await self.session.execute(insert(_EVENTS).values(**event))
        for access, record_ids in accesses:
            access_id = await self.session.scalar(
                insert(_ACCESSES).values(event_id=event["id"], **access).returning(_ACCESSES.c.id)
            )
            if record_ids:
                await self._add_record_ids(access_id, record_ids)
        await self.session.execute(
            update(AuditChainHead)
            .where(AuditChainHead.id == 1)
            .values(seq=event["seq"], hash=event["hash"])
        )

    async def _add_record_ids(self, access_id: object, record_ids: Sequence[uuid.UUID]) -> None:
        """One statement for a whole page of ids: a 1,000-row read appends 1,000 of them."""
        if self._dialect == "postgresql":
            statement = (
                "INSERT INTO audit_access_records (access_id, record_id) "
                "SELECT :access_id, unnest(CAST(:record_ids AS uuid[]))"
            )
            ids: object = list(record_ids)
        else:
            # SQLite stores a Uuid as 32 hex digits; json_each unpacks the list in C.
            statement = (
                "INSERT INTO audit_access_records (access_id, record_id) "
                "SELECT :access_id, value FROM json_each(:record_ids)"
            )
            ids = orjson.dumps([rid.hex for rid in record_ids]).decode()
        await self.session.execute(text(statement), {"access_id": access_id, "record_ids": ids})

    async def add_checkpoint(
        self,
        *,
        seq: int,
        chain_hash: str,
        created_at: datetime,
        key_version: int,
        signature: bytes,
        detail: dict[str, Any],
    ) -> None:
        await self.session.execute(
            insert(AuditCheckpoint).values(
                seq=seq,
                hash=chain_hash,
                created_at=created_at,
                key_version=key_version,
                signature=signature,
                detail=detail,
            )
        )

    # -- reads for verification and export -------------------------------------------

    async def chain_head(self) -> tuple[int, str]:
        row = (
            await self.session.execute(
                select(AuditChainHead.seq, AuditChainHead.hash).where(AuditChainHead.id == 1)
            )
        ).one()
        return int(row.seq), str(row.hash)

    async def first_seq(self) -> int | None:
        value = await self.session.scalar(select(func.min(AuditEvent.seq)))
        return int(value) if value is not None else None

    async def last_seq(self) -> int:
        return int(await self.session.scalar(select(func.max(AuditEvent.seq))) or 0)

    async def event_hash_at(self, seq: int) -> str | None:
        return await self.session.scalar(select(AuditEvent.hash).where(AuditEvent.seq == seq))

    async def checkpoints(self) -> Sequence[AuditCheckpoint]:
        result = await self.session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq))
        return result.all()

    async def checkpoint_at(self, seq: int) -> AuditCheckpoint | None:
        return await self.session.scalar(select(AuditCheckpoint).where(AuditCheckpoint.seq == seq))

    async def events_after(
        self,
        seq: int,
        limit: int,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        through_seq: int | None = None,
    ) -> Sequence[AuditEvent]:
        """The next batch in chain order (keyset on seq, so memory stays one batch)."""
        query = select(AuditEvent).where(AuditEvent.seq > seq)
        if through_seq is not None:
            query = query.where(AuditEvent.seq <= through_seq)
        if since is not None:
            query = query.where(AuditEvent.occurred_at >= since)
        if until is not None:
            query = query.where(AuditEvent.occurred_at < until)
        result = await self.session.scalars(query.order_by(AuditEvent.seq).limit(limit))
        return result.all()

    async def accesses_of(self, event_ids: Sequence[uuid.UUID]) -> Sequence[AuditAccess]:
        """Accesses in insertion order, the order they were hashed in."""
        if not event_ids:
            return []
        result = await self.session.scalars(
            select(AuditAccess).where(AuditAccess.event_id.in_(event_ids)).order_by(AuditAccess.id)
        )
        return result.all()

    async def record_ids_of(self, access_ids: Sequence[int]) -> Sequence[Row[int, uuid.UUID]]:
        if not access_ids:
            return []
        result = await self.session.execute(
            select(AuditAccessRecord.access_id, AuditAccessRecord.record_id).where(
                AuditAccessRecord.access_id.in_(access_ids)
            )
        )
        return result.all()

    # -- compliance search ------------------------------------------------------------

    def _criteria(self, flt: AuditFilter) -> list[ColumnElement[bool]]:
        criteria: list[ColumnElement[bool]] = []
        if flt.subject is not None:
            criteria.append(AuditEvent.subject == flt.subject)
        if flt.purpose is not None:
            criteria.append(AuditEvent.purpose == flt.purpose)
        if flt.outcome is not None:
            criteria.append(AuditEvent.outcome == flt.outcome)
        if flt.operation_type is not None:
            criteria.append(AuditEvent.operation_type == flt.operation_type)
        if flt.since is not None:
            criteria.append(AuditEvent.occurred_at >= flt.since)
        if flt.until is not None:
            criteria.append(AuditEvent.occurred_at < flt.until)
        if flt.role is not None:
            criteria.append(self._has_role(flt.role))
        access = self._access_criteria(flt)
        if access:
            criteria.append(exists().where(AuditAccess.event_id == AuditEvent.id, *access))
        return criteria

    def _has_role(self, role: str) -> ColumnElement[bool]:
        if self._dialect == "postgresql":
            has_role: ColumnElement[bool] = cast(AuditEvent.roles, JSONB).has_key(role)
            return has_role
        each = func.json_each(AuditEvent.roles).table_valued("value").alias("role_each")
        return exists(select(1).select_from(each).where(each.c.value == role))

    def _access_criteria(self, flt: AuditFilter) -> list[ColumnElement[bool]]:
        criteria: list[ColumnElement[bool]] = []
        if flt.object_type is not None:
            criteria.append(AuditAccess.object_type == flt.object_type)
        if flt.field is not None:
            # A field was revealed (in any mode) by this access.
            criteria.append(AuditAccess.fields[flt.field].as_string().is_not(None))
        if flt.record_id is not None:
            criteria.append(
                exists().where(
                    AuditAccessRecord.access_id == AuditAccess.id,
                    AuditAccessRecord.record_id == flt.record_id,
                )
            )
        return criteria

    async def search(
        self, flt: AuditFilter, *, before_seq: int | None, limit: int
    ) -> Sequence[AuditEvent]:
        """Newest first; `before_seq` is the keyset cursor."""
        criteria = self._criteria(flt)
        if before_seq is not None:
            criteria.append(AuditEvent.seq < before_seq)
        query = select(AuditEvent).where(and_(True, *criteria))
        result = await self.session.scalars(query.order_by(AuditEvent.seq.desc()).limit(limit))
        return result.all()

    async def count(self, flt: AuditFilter) -> int:
        query = select(func.count()).select_from(AuditEvent).where(and_(True, *self._criteria(flt)))
        return int(await self.session.scalar(query) or 0)

    async def by_id(self, event_id: uuid.UUID) -> AuditEvent | None:
        return await self.session.get(AuditEvent, event_id)

    # -- retention ----------------------------------------------------------------------

    async def last_seq_before(self, cutoff: datetime) -> int | None:
        value = await self.session.scalar(
            select(func.max(AuditEvent.seq)).where(AuditEvent.occurred_at < cutoff)
        )
        return int(value) if value is not None else None

    async def delete_through(self, seq: int) -> int:
        """Delete events up to `seq` with their accesses, through the guarded prune path.

        PostgreSQL: the append-only trigger lets DELETE through only in a transaction that
        set `custos.audit_prune`; SQLite: the delete triggers are dropped and re-created
        inside this same transaction, so no other connection ever sees them missing.
        """
        if self._dialect == "postgresql":
            await self.session.execute(text("SELECT set_config('custos.audit_prune', 'on', true)"))
        else:
            for table in AUDIT_TABLES:
                await self.session.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_delete"))
        old_events = select(AuditEvent.id).where(AuditEvent.seq <= seq)
        old_accesses = select(AuditAccess.id).where(AuditAccess.event_id.in_(old_events))
        await self.session.execute(
            delete(AuditAccessRecord).where(AuditAccessRecord.access_id.in_(old_accesses))
        )
        await self.session.execute(delete(AuditAccess).where(AuditAccess.event_id.in_(old_events)))
        removed = await self.session.execute(delete(AuditEvent).where(AuditEvent.seq <= seq))
        if self._dialect == "postgresql":
            await self.session.execute(text("SELECT set_config('custos.audit_prune', 'off', true)"))
        else:
            for table in AUDIT_TABLES:
                await self.session.execute(
                    text(
                        f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
                        "BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END"
                    )
                )
        return int(removed.rowcount)  # type: ignore[attr-defined]
