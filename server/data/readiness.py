"""What `/readyz` asks the database: can a transaction still commit, and at which
migration is the schema."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.data.models import ReadinessProbe


async def commit_probe(sessions: async_sessionmaker[AsyncSession], now: datetime) -> None:
    """Rewrite the probe row and commit: raises where a request's audit entry would fail
    to commit (a full disk, a read-only or unreachable database)."""
    async with sessions() as session, session.begin():
        insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else pg_insert
        statement = insert(ReadinessProbe).values(id=1, checked_at=now)
        await session.execute(
            statement.on_conflict_do_update(index_elements=["id"], set_={"checked_at": now})
        )


async def schema_revision(sessions: async_sessionmaker[AsyncSession]) -> str | None:
    """The Alembic revision the database is at (None: never migrated)."""
    async with sessions() as session:
        value = await session.scalar(text("SELECT version_num FROM alembic_version"))
    return str(value) if value is not None else None
