"""Contact-point queries: a customer's points with its data key, under row scope."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Row, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.customer.repository import filter_predicates
from server.data.models import ContactPoint, Customer, CustomerKey


class ContactPointRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def of_customers(
        self, customer_ids: Collection[uuid.UUID], scope: ColumnElement[bool]
    ) -> Sequence[Row[Any]]:
        """The points of live customers inside the scope predicate, each with its
        customer's data key, oldest first."""
        stmt: Any = (
            select(ContactPoint, CustomerKey.kek_version, CustomerKey.wrapped_dek)
            .join(Customer, Customer.id == ContactPoint.customer_id)
            .outerjoin(CustomerKey, CustomerKey.customer_id == Customer.id)
            .where(
                ContactPoint.customer_id.in_(list(customer_ids)),
                scope,
                Customer.erased_at.is_(None),
            )
            .order_by(ContactPoint.customer_id, ContactPoint.created_at, ContactPoint.id)
        )
        return (await self.session.execute(stmt)).all()

    async def customer_of(self, point_id: uuid.UUID) -> uuid.UUID | None:
        """The customer a point belongs to, whatever the caller's scope: the caller then
        checks that customer under its own scope before answering anything."""
        found = await self.session.scalar(
            select(ContactPoint.customer_id).where(ContactPoint.id == point_id)
        )
        return found if isinstance(found, uuid.UUID) else None

    async def get(self, point_id: uuid.UUID) -> ContactPoint | None:
        return await self.session.get(ContactPoint, point_id)

    async def count_of(self, customer_id: uuid.UUID) -> int:
        stmt = select(func.count()).where(ContactPoint.customer_id == customer_id)
        return int(await self.session.scalar(stmt) or 0)

    async def add(self, point: ContactPoint) -> None:
        self.session.add(point)
        await self.session.flush()

    async def add_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """Points of an import's batch, in one statement."""
        if rows:
            await self.session.execute(insert(ContactPoint), list(rows))

    async def flush(self) -> None:
        await self.session.flush()

    async def remove(self, point_id: uuid.UUID) -> None:
        await self.session.execute(delete(ContactPoint).where(ContactPoint.id == point_id))

    async def live(self, customer_id: uuid.UUID, scope: ColumnElement[bool]) -> bool:
        found = await self.session.scalar(
            select(Customer.id).where(Customer.id == customer_id, scope, *filter_predicates(None))
        )
        return found is not None
