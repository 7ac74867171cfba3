"""SQL an import needs in bulk: lookups by id, blind index or order ref, and batch writes."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import Row, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.customer.repository import filter_predicates
from server.data.models import (
    Customer,
    CustomerKey,
    CustomerNameToken,
    Order,
    OrderItem,
    OrderStatusEvent,
)


class ImportRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def candidates(self, column: str, indexes: Collection[int]) -> Sequence[Row[Any]]:
        """Live customers whose blind index is one of `indexes`, with their sealed value
        and data key so the caller can confirm the match by decrypting."""
        if not indexes:
            return []
        field = column.removesuffix("_bidx")
        stmt = (
            select(
                Customer.id,
                getattr(Customer, column).label("bidx"),
                getattr(Customer, field).label("sealed"),
                CustomerKey.kek_version,
                CustomerKey.wrapped_dek,
            )
            .join(CustomerKey, CustomerKey.customer_id == Customer.id)
            .where(getattr(Customer, column).in_(list(indexes)), *filter_predicates(None))
        )
        return (await self.session.execute(stmt)).all()

    async def existing_ids(self, ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
        if not ids:
            return set()
        rows = await self.session.scalars(
            select(Customer.id).where(Customer.id.in_(list(ids)), *filter_predicates(None))
        )
        return set(rows)

    async def add_customers(
        self,
        customers: list[dict[str, Any]],
        keys: list[dict[str, Any]],
        name_tokens: list[dict[str, Any]],
    ) -> None:
        if customers:
            await self.session.execute(insert(Customer), customers)
            await self.session.execute(insert(CustomerKey), keys)
        if name_tokens:
            await self.session.execute(insert(CustomerNameToken), name_tokens)

    async def add_orders(
        self,
        orders: list[dict[str, Any]],
        items: list[dict[str, Any]],
        events: list[dict[str, Any]],
    ) -> None:
        """One batch of imported orders with their items and status events."""
        for model, rows in ((Order, orders), (OrderItem, items), (OrderStatusEvent, events)):
            if rows:
                await self.session.execute(insert(model), rows)
