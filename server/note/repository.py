"""Note queries: a customer's note versions with its data key, under row scope."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Row, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.data.models import Customer, CustomerKey, CustomerNote


class NoteRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def of_customers(
        self, customer_ids: Collection[uuid.UUID], scope: ColumnElement[bool]
    ) -> Sequence[Row[Any]]:
        """Every version of the notes of live customers inside the scope predicate, each
        with its customer's data key; notes oldest first, versions in order."""
        stmt: Any = (
            select(CustomerNote, CustomerKey.kek_version, CustomerKey.wrapped_dek)
            .join(Customer, Customer.id == CustomerNote.customer_id)
            .outerjoin(CustomerKey, CustomerKey.customer_id == Customer.id)
            .where(
                CustomerNote.customer_id.in_(list(customer_ids)),
                scope,
                Customer.erased_at.is_(None),
            )
            .order_by(CustomerNote.customer_id, CustomerNote.note_id, CustomerNote.version)
        )
        return (await self.session.execute(stmt)).all()

    async def latest(self, note_id: uuid.UUID) -> CustomerNote | None:
        stmt = (
            select(CustomerNote)
            .where(CustomerNote.note_id == note_id)
            .order_by(CustomerNote.version.desc())
            .limit(1)
        )
        return (await self.session.scalars(stmt)).first()

    async def count_of(self, customer_id: uuid.UUID) -> int:
        stmt = select(func.count(func.distinct(CustomerNote.note_id))).where(
            CustomerNote.customer_id == customer_id
        )
        return int(await self.session.scalar(stmt) or 0)

    async def add(self, version: CustomerNote) -> None:
        self.session.add(version)
        await self.session.flush()

    async def add_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """Note versions of an import's batch, in one statement."""
        if rows:
            await self.session.execute(insert(CustomerNote), list(rows))
