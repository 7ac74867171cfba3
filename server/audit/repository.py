"""Audit rows: the chain-serialised append, and reads for verification."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.data.models import AuditAccess, AuditAccessRecord, AuditChainHead, AuditEvent


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

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
        await self.session.execute(insert(AuditEvent), [event])
        for access, record_ids in accesses:
            access_id = await self.session.scalar(
                insert(AuditAccess).values(event_id=event["id"], **access).returning(AuditAccess.id)
            )
            if record_ids:
                await self.session.execute(
                    insert(AuditAccessRecord),
                    [{"access_id": access_id, "record_id": rid} for rid in record_ids],
                )
        await self.session.execute(
            update(AuditChainHead)
            .where(AuditChainHead.id == 1)
            .values(seq=event["seq"], hash=event["hash"])
        )
