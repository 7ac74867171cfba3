"""Global object lookup: the kind of record an id names, so the caller's request can go
through that kind's own service (its gate, row scope and audit)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from server.records.repository import KINDS, RecordRepository

RECORD_KINDS = tuple(KINDS)


class RecordService:
    async def kind_of(self, session: AsyncSession, record_id: uuid.UUID) -> str | None:
        """Never an answer to a client by itself: the kind only picks the service whose
        read then decides, exactly as a lookup by that kind's own root field would."""
        return await RecordRepository(session).kind_of(record_id)
