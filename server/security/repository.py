"""The security stream's one table: a counter per (minute, client address, code)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from server.data.models import SecurityEvent


class SecurityRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def count(
        self, *, minute: datetime, client_addr: str, code: str, at: datetime, request_id: str
    ) -> None:
        """One more refusal in this bucket: an upsert, so a flood adds no rows."""
        insert = (
            pg_insert if self.session.get_bind().dialect.name == "postgresql" else sqlite_insert
        )
        stmt = insert(SecurityEvent).values(
            minute=minute,
            client_addr=client_addr,
            code=code,
            count=1,
            last_at=at,
            last_request_id=request_id,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["minute", "client_addr", "code"],
            set_={
                "count": SecurityEvent.count + 1,
                "last_at": stmt.excluded.last_at,
                "last_request_id": stmt.excluded.last_request_id,
            },
        )
        await self.session.execute(stmt)

    async def since(self, start: datetime) -> Sequence[SecurityEvent]:
        stmt = (
            select(SecurityEvent)
            .where(SecurityEvent.minute >= start)
            .order_by(SecurityEvent.minute, SecurityEvent.client_addr, SecurityEvent.code)
        )
        return (await self.session.scalars(stmt)).all()
