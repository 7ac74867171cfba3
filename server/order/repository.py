"""Products, orders, items and status events. Customer-owned rows are filtered by the
caller's customer scope, joined in SQL so pages and counts agree."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.customer.repository import filter_predicates
from server.data.models import Customer, Order, OrderItem, OrderStatusEvent, Product


@dataclass(frozen=True, slots=True)
class OrderFilter:
    customer_id: uuid.UUID | None = None
    status: str | None = None
    ordered_from: datetime | None = None
    ordered_to: datetime | None = None


def visible_customer_ids(scope: ColumnElement[bool]) -> ColumnElement[bool]:
    """Orders whose customer is live (not erased or merged) and inside the scope."""
    return Order.customer_id.in_(select(Customer.id).where(scope, *filter_predicates(None)))


class ProductRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def page(
        self, *, after: uuid.UUID | None, limit: int, category: str | None
    ) -> Sequence[Product]:
        stmt = select(Product)
        if category is not None:
            stmt = stmt.where(Product.category == category)
        if after is not None:
            stmt = stmt.where(Product.id > after)
        stmt = stmt.order_by(Product.id).limit(limit + 1)
        return (await self.session.scalars(stmt)).all()

    async def by_ids(self, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, Product]:
        if not ids:
            return {}
        rows = await self.session.scalars(select(Product).where(Product.id.in_(list(ids))))
        return {p.id: p for p in rows}

    async def by_skus(self, skus: Collection[str]) -> dict[str, Product]:
        if not skus:
            return {}
        rows = await self.session.scalars(select(Product).where(Product.sku.in_(list(skus))))
        return {p.sku: p for p in rows}

    async def sku_exists(self, sku: str) -> bool:
        found = await self.session.scalar(select(Product.id).where(Product.sku == sku))
        return found is not None

    async def add(self, product: Product) -> None:
        self.session.add(product)
        await self.session.flush()

    async def flush(self) -> None:
        await self.session.flush()

    async def add_many(self, products: Sequence[Mapping[str, Any]]) -> None:
        if products:
            await self.session.execute(insert(Product), list(products))

    async def change(self, product_id: uuid.UUID, values: Mapping[str, Any]) -> None:
        await self.session.execute(update(Product).where(Product.id == product_id).values(**values))


class OrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, order: Order, items: Sequence[OrderItem], event: OrderStatusEvent) -> None:
        self.session.add(order)
        await self.session.flush()
        self.session.add_all([*items, event])
        await self.session.flush()

    async def get(self, order_id: uuid.UUID, scope: ColumnElement[bool]) -> Order | None:
        return await self.session.scalar(
            select(Order).where(Order.id == order_id, visible_customer_ids(scope))
        )

    def _matching(self, scope: ColumnElement[bool], flt: OrderFilter) -> list[ColumnElement[bool]]:
        conditions = [visible_customer_ids(scope)]
        if flt.customer_id is not None:
            conditions.append(Order.customer_id == flt.customer_id)
        if flt.status is not None:
            conditions.append(Order.status == flt.status)
        if flt.ordered_from is not None:
            conditions.append(Order.ordered_at >= flt.ordered_from)
        if flt.ordered_to is not None:
            conditions.append(Order.ordered_at < flt.ordered_to)
        return conditions

    async def page(
        self,
        *,
        scope: ColumnElement[bool],
        flt: OrderFilter,
        after: uuid.UUID | None,
        limit: int,
    ) -> Sequence[Order]:
        stmt = select(Order).where(*self._matching(scope, flt))
        if after is not None:
            stmt = stmt.where(Order.id > after)
        stmt = stmt.order_by(Order.id).limit(limit + 1)
        return (await self.session.scalars(stmt)).all()

    async def pages_for_customers(
        self,
        customer_ids: Collection[uuid.UUID],
        *,
        scope: ColumnElement[bool],
        after: uuid.UUID | None,
        limit: int,
    ) -> Sequence[Order]:
        """Up to `limit + 1` orders per customer, oldest first, for many customers at once."""
        rank = (
            func.row_number().over(partition_by=Order.customer_id, order_by=Order.id).label("rank")
        )
        conditions = [
            *self._matching(scope, OrderFilter()),
            Order.customer_id.in_(list(customer_ids)),
        ]
        if after is not None:
            conditions.append(Order.id > after)
        ranked = select(Order.id.label("order_id"), rank).where(*conditions).subquery()
        stmt = (
            select(Order)
            .join(ranked, ranked.c.order_id == Order.id)
            .where(ranked.c.rank <= limit + 1)
            .order_by(Order.customer_id, Order.id)
        )
        return (await self.session.scalars(stmt)).all()

    async def counts_for_customers(
        self, customer_ids: Collection[uuid.UUID], *, scope: ColumnElement[bool]
    ) -> dict[uuid.UUID, int]:
        stmt = (
            select(Order.customer_id, func.count())
            .where(*self._matching(scope, OrderFilter()), Order.customer_id.in_(list(customer_ids)))
            .group_by(Order.customer_id)
        )
        return {cid: int(n) for cid, n in (await self.session.execute(stmt)).all()}

    async def count(self, *, scope: ColumnElement[bool], flt: OrderFilter) -> int:
        stmt = select(func.count()).select_from(Order).where(*self._matching(scope, flt))
        return int(await self.session.scalar(stmt) or 0)

    async def items_for(self, order_ids: Collection[uuid.UUID]) -> Sequence[OrderItem]:
        if not order_ids:
            return []
        stmt = (
            select(OrderItem).where(OrderItem.order_id.in_(list(order_ids))).order_by(OrderItem.id)
        )
        return (await self.session.scalars(stmt)).all()

    async def events_for(self, order_ids: Collection[uuid.UUID]) -> Sequence[OrderStatusEvent]:
        if not order_ids:
            return []
        stmt = (
            select(OrderStatusEvent)
            .where(OrderStatusEvent.order_id.in_(list(order_ids)))
            .order_by(OrderStatusEvent.at, OrderStatusEvent.id)
        )
        return (await self.session.scalars(stmt)).all()

    async def set_promise(
        self, order_id: uuid.UUID, promised_at: datetime | None, open_statuses: Sequence[str]
    ) -> bool:
        """Compare-and-set: only while the order is still in one of `open_statuses`."""
        result = await self.session.execute(
            update(Order)
            .where(Order.id == order_id, Order.status.in_(list(open_statuses)))
            .values(promised_at=promised_at)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def move_status(self, order_id: uuid.UUID, from_status: str, to_status: str) -> bool:
        """Compare-and-set: a concurrent move of the same order makes this one fail."""
        result = await self.session.execute(
            update(Order)
            .where(Order.id == order_id, Order.status == from_status)
            .values(status=to_status)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def add_event(self, event: OrderStatusEvent) -> None:
        self.session.add(event)
        await self.session.flush()

    async def external_refs_taken(self, refs: Collection[str]) -> set[str]:
        if not refs:
            return set()
        rows = await self.session.scalars(
            select(Order.external_ref).where(Order.external_ref.in_(list(refs)))
        )
        return {r for r in rows if r is not None}
