"""Audit rows: the lock-free append, the sealer's queue and blocks, batched reads, search
and the guarded prune."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    LargeBinary,
    Row,
    Select,
    and_,
    bindparam,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from server.data.base import Base
from server.data.models import (
    AuditAccess,
    AuditBlock,
    AuditChainHead,
    AuditCheckpoint,
    AuditEvent,
    AuditRecordKey,
    AuditSealer,
)
from server.data.models.audit import RecordIds, record_key

# The append-only tables whose rows the guarded prune removes; `audit_record_keys`
# exists on SQLite only, the one database whose triggers the prune lifts by name.
AUDIT_TABLES = ("audit_events", "audit_accesses", "audit_record_keys")
# One sealer at a time on PostgreSQL: a transaction-scoped advisory lock on this key.
SEALER_LOCK_KEY = 0x637573746F73


@dataclass(frozen=True)
class PreparedEntry:
    """One entry ready to insert: the event's row (without `seq`) and its accesses with
    their record ids, in the order they were hashed."""

    event: dict[str, Any]
    accesses: list[tuple[dict[str, Any], list[uuid.UUID]]]

    @property
    def id(self) -> uuid.UUID:
        value: uuid.UUID = self.event["id"]
        return value


@dataclass(frozen=True)
class QueuedEntry:
    """An unsealed entry as the sealer sees it."""

    id: uuid.UUID
    seq: int
    hash: str
    prev_hash: str | None


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

    # -- the append (no lock: the sealer orders entries later) -------------------------

    async def append_entries(self, entries: Sequence[PreparedEntry]) -> None:
        """Insert whole entries, a group commit's worth in a few statements: one multi-row
        insert of events, one of accesses with their record ids packed (on SQLite one
        more, of the ids' keys).

        `seq` is the arrival order: a sequence default on PostgreSQL (no lock); on SQLite
        the transaction already holds the write lock, so the next numbers are free."""
        if not entries:
            return
        events = [dict(entry.event) for entry in entries]
        if self._dialect != "postgresql":
            top = int(await self.session.scalar(select(func.max(AuditEvent.seq))) or 0)
            for offset, event in enumerate(events, start=1):
                event["seq"] = top + offset
        await self.session.execute(insert(_EVENTS), events)
        accesses = [
            {"event_id": entry.id, **access, "record_ids": record_ids}
            for entry in entries
            for access, record_ids in entry.accesses
        ]
        if not accesses:
            return
        if self._dialect == "postgresql":
            # The GIN index on the packed ids is all "who saw X" needs here.
            await self.session.execute(insert(_ACCESSES), accesses)
            return
        access_ids = (
            await self.session.scalars(
                insert(_ACCESSES).returning(_ACCESSES.c.id, sort_by_parameter_order=True),
                accesses,
            )
        ).all()
        keys = [
            (record_key(record_id), access_id, ordinal)
            for access_id, access in zip(access_ids, accesses, strict=True)
            for ordinal, record_id in enumerate(access["record_ids"])
        ]
        if keys:
            await self._add_record_keys(keys)

    async def _add_record_keys(self, keys: Sequence[tuple[int, int, int]]) -> None:
        """SQLite: one statement for every record id's key of a batch (json_each unpacks
        the list in C; a 1,000-row read appends 1,000 keys)."""
        await self.session.execute(
            text(
                "INSERT INTO audit_record_keys (record_key, access_id, ordinal) "
                "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), "
                "json_extract(value, '$[2]') FROM json_each(:keys)"
            ),
            {"keys": orjson.dumps(keys).decode()},
        )

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

    # -- the sealer ---------------------------------------------------------------------

    async def take_sealer_lock(self) -> bool:
        """One sealer at a time across processes, until this transaction ends: a
        transaction-scoped advisory lock on PostgreSQL (False if another sealer holds it);
        on SQLite, writing the sealer's row takes the database's write lock (waits)."""
        if self._dialect == "postgresql":
            return bool(
                await self.session.scalar(
                    text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": SEALER_LOCK_KEY}
                )
            )
        await self.session.execute(
            update(AuditSealer).where(AuditSealer.id == 1).values(sealed_at=AuditSealer.sealed_at)
        )
        return True

    async def has_unsealed(self) -> bool:
        found = await self.session.scalar(
            select(AuditEvent.seq).where(AuditEvent.block.is_(None)).limit(1)
        )
        return found is not None

    async def unsealed(self, limit: int) -> list[QueuedEntry]:
        """Committed unsealed entries in a deterministic order (arrival, then id)."""
        rows = await self.session.execute(
            select(AuditEvent.id, AuditEvent.seq, AuditEvent.hash, AuditEvent.prev_hash)
            .where(AuditEvent.block.is_(None))
            .order_by(AuditEvent.seq, AuditEvent.id)
            .limit(limit)
        )
        return [QueuedEntry(r.id, int(r.seq), str(r.hash), r.prev_hash) for r in rows]

    async def last_block(self) -> AuditBlock | None:
        return await self.session.scalar(
            select(AuditBlock).order_by(AuditBlock.number.desc()).limit(1)
        )

    async def seal_entries(self, block: int, placed: Sequence[tuple[uuid.UUID, int]]) -> None:
        """Give each entry its block and position (the one update an entry allows)."""
        await self.session.execute(
            update(_EVENTS)
            .where(_EVENTS.c.id == bindparam("entry_id"))
            .values(block=bindparam("entry_block"), position=bindparam("entry_position")),
            [
                {"entry_id": entry_id, "entry_block": block, "entry_position": position}
                for entry_id, position in placed
            ],
        )

    async def add_block(self, values: dict[str, Any]) -> None:
        await self.session.execute(insert(AuditBlock).values(**values))

    async def mark_sealed(self, at: datetime) -> None:
        await self.session.execute(
            update(AuditSealer).where(AuditSealer.id == 1).values(sealed_at=at)
        )

    async def seal_status(self) -> tuple[int, datetime | None, datetime | None, int, int]:
        """(unsealed entries, oldest unsealed entry's time, last seal, blocks, last position)."""
        unsealed = int(
            await self.session.scalar(
                select(func.count()).select_from(AuditEvent).where(AuditEvent.block.is_(None))
            )
            or 0
        )
        oldest = await self.session.scalar(
            select(func.min(AuditEvent.occurred_at)).where(AuditEvent.block.is_(None))
        )
        sealed_at = await self.session.scalar(
            select(AuditSealer.sealed_at).where(AuditSealer.id == 1)
        )
        last = await self.last_block()
        blocks = last.number if last is not None else 0
        position = last.last_position if last is not None else 0
        return unsealed, oldest, sealed_at, blocks, position

    # -- blocks for verification and proofs ---------------------------------------------

    async def blocks_after(self, number: int, limit: int) -> Sequence[AuditBlock]:
        result = await self.session.scalars(
            select(AuditBlock)
            .where(AuditBlock.number > number)
            .order_by(AuditBlock.number)
            .limit(limit)
        )
        return result.all()

    async def block(self, number: int) -> AuditBlock | None:
        return await self.session.get(AuditBlock, number)

    async def block_entries(self, number: int) -> Sequence[AuditEvent]:
        """A block's entries in position order."""
        result = await self.session.scalars(
            select(AuditEvent).where(AuditEvent.block == number).order_by(AuditEvent.position)
        )
        return result.all()

    async def block_leaves(self, number: int) -> Sequence[Row[int | None, str]]:
        """(position, hash) of a block's entries in position order: what a proof needs."""
        result = await self.session.execute(
            select(AuditEvent.position, AuditEvent.hash)
            .where(AuditEvent.block == number)
            .order_by(AuditEvent.position)
        )
        return result.all()

    async def entries_past_blocks(self, number: int) -> int:
        """Entries that name a block past `number` (the last block there is)."""
        return int(
            await self.session.scalar(
                select(func.count()).select_from(AuditEvent).where(AuditEvent.block > number)
            )
            or 0
        )

    async def unsealed_after(self, seq: int, limit: int) -> Sequence[AuditEvent]:
        result = await self.session.scalars(
            select(AuditEvent)
            .where(AuditEvent.block.is_(None), AuditEvent.seq > seq)
            .order_by(AuditEvent.seq)
            .limit(limit)
        )
        return result.all()

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

    async def accesses_of(
        self, event_ids: Sequence[uuid.UUID], *, with_record_ids: bool = True
    ) -> Sequence[AuditAccess]:
        """Accesses in insertion order, the order they were hashed in; without their
        packed record ids (16 bytes an id) unless asked."""
        if not event_ids:
            return []
        query = select(AuditAccess).where(AuditAccess.event_id.in_(event_ids))
        if not with_record_ids:
            query = query.options(defer(AuditAccess.record_ids, raiseload=True))
        result = await self.session.scalars(query.order_by(AuditAccess.id))
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
        if flt.record_id is not None:
            # Driven from the record id's index: the few accesses that touched it, then
            # their events (a correlated EXISTS would test every event in turn).
            criteria.append(AuditEvent.id.in_(self._touching(flt.record_id, access)))
        elif access:
            criteria.append(exists().where(AuditAccess.event_id == AuditEvent.id, *access))
        return criteria

    def _touching(self, record_id: uuid.UUID, access: list[ColumnElement[bool]]) -> Select[Any]:
        """The events of the accesses that touched `record_id` (and meet `access`):
        `record_ids @> ARRAY[id]` through the GIN index on PostgreSQL; on SQLite the
        id's key in `audit_record_keys`, confirmed against the packed id at the place
        the key names (two ids may share a key)."""
        if self._dialect == "postgresql":
            touched = AuditAccess.record_ids.op("@>")(literal([record_id], RecordIds()))
            return select(AuditAccess.event_id).where(touched, *access)
        return (
            select(AuditAccess.event_id)
            .select_from(AuditRecordKey)
            .join(AuditAccess, AuditAccess.id == AuditRecordKey.access_id)
            .where(
                AuditRecordKey.record_key == record_key(record_id),
                func.substr(AuditAccess.record_ids, AuditRecordKey.ordinal * 16 + 1, 16)
                == literal(record_id.bytes, LargeBinary()),
                *access,
            )
        )

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

    async def last_block_before(self, cutoff: datetime) -> AuditBlock | None:
        """The newest block sealed before `cutoff` (its entries all happened before)."""
        return await self.session.scalar(
            select(AuditBlock)
            .where(AuditBlock.sealed_at < cutoff)
            .order_by(AuditBlock.number.desc())
            .limit(1)
        )

    async def delete_through(self, block: int) -> int:
        """Delete the entries of blocks up to `block` with their accesses, through the
        guarded prune path (block heads stay: the chain of blocks still verifies).

        PostgreSQL: the append-only trigger lets DELETE through only in a transaction that
        set `custos.audit_prune`; SQLite: the delete triggers are dropped and re-created
        inside this same transaction, so no other connection ever sees them missing.
        """
        if self._dialect == "postgresql":
            await self.session.execute(text("SELECT set_config('custos.audit_prune', 'on', true)"))
        else:
            for table in AUDIT_TABLES:
                await self.session.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_delete"))
        old_events = select(AuditEvent.id).where(AuditEvent.block <= block)
        if self._dialect != "postgresql":
            # Keys are found by id, not by access: this is one pass over them per prune.
            old_accesses = select(AuditAccess.id).where(AuditAccess.event_id.in_(old_events))
            await self.session.execute(
                delete(AuditRecordKey).where(AuditRecordKey.access_id.in_(old_accesses))
            )
        await self.session.execute(delete(AuditAccess).where(AuditAccess.event_id.in_(old_events)))
        removed = await self.session.execute(delete(AuditEvent).where(AuditEvent.block <= block))
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
