"""Small factories for analytics tests: plain inserts into the real tables."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from server.app import AppState
from server.data.models import Complaint, Interaction, Order, OrderItem, OrderStatusEvent, Product


def at(text: str) -> datetime:
    """`2026-03-02 09:00` (or a bare date) as a UTC instant."""
    fmt = "%Y-%m-%d %H:%M" if " " in text else "%Y-%m-%d"
    return datetime.strptime(text, fmt).replace(tzinfo=UTC)


async def make_product(
    state: AppState,
    sku: str,
    price: str,
    cost: str,
    *,
    is_new: bool = False,
    category: str = "general",
) -> uuid.UUID:
    async with state.sessions() as session, session.begin():
        product = Product(
            sku=sku,
            name=f"product {sku}",
            category=category,
            unit_price=Decimal(price),
            unit_cost=Decimal(cost),
            is_new=is_new,
        )
        session.add(product)
        await session.flush()
        return product.id


async def make_order(
    state: AppState,
    customer_id: uuid.UUID,
    when: str,
    lines: list[tuple[uuid.UUID, int, str, str]],
    *,
    status: str = "delivered",
    channel: str | None = None,
    amount: str | None = None,
    promised: str | None = None,
    delivered: str | None = None,
) -> uuid.UUID:
    """An order of (product, quantity, unit price, unit cost) lines; totals are summed.
    Without lines, an order of `amount` and cost 0 (the minimal import format). With
    `delivered`, a `delivered` status event at that time."""
    total = sum((Decimal(p) * q for _, q, p, _ in lines), Decimal(0))
    cost = sum((Decimal(c) * q for _, q, _, c in lines), Decimal(0))
    if amount is not None:
        total = Decimal(amount)
    async with state.sessions() as session, session.begin():
        order = Order(
            customer_id=customer_id,
            ordered_at=at(when),
            status=status,
            channel=channel,
            total=total,
            cost_total=cost,
            promised_at=at(promised) if promised else None,
        )
        session.add(order)
        await session.flush()
        if delivered is not None:
            session.add(
                OrderStatusEvent(
                    order_id=order.id,
                    customer_id=customer_id,
                    status="delivered",
                    at=at(delivered),
                    actor="test",
                )
            )
        for product_id, quantity, price, unit_cost in lines:
            session.add(
                OrderItem(
                    order_id=order.id,
                    customer_id=customer_id,
                    product_id=product_id,
                    quantity=quantity,
                    unit_price=Decimal(price),
                    unit_cost=Decimal(unit_cost),
                    line_total=Decimal(price) * quantity,
                )
            )
        return order.id


async def make_complaint(
    state: AppState,
    customer_id: uuid.UUID,
    opened: str,
    *,
    acknowledged: str | None = None,
    resolved: str | None = None,
    rating: int | None = None,
) -> None:
    """A complaint with the 2-hour acknowledgement and 24-hour resolution deadlines."""
    opened_at = at(opened)
    values: dict[str, Any] = {
        "customer_id": customer_id,
        "opened_at": opened_at,
        "category": "product",
        "severity": "normal",
        "status": "resolved" if resolved else "open",
        "acknowledge_due_at": opened_at + timedelta(hours=2),
        "resolve_due_at": opened_at + timedelta(hours=24),
        "acknowledged_at": at(acknowledged) if acknowledged else None,
        "resolved_at": at(resolved) if resolved else None,
        "rating": rating,
    }
    async with state.sessions() as session, session.begin():
        session.add(Complaint(**values))


async def make_interaction(
    state: AppState,
    customer_id: uuid.UUID,
    when: str,
    *,
    direction: str = "inbound",
    responded: str | None = None,
) -> None:
    async with state.sessions() as session, session.begin():
        session.add(
            Interaction(
                customer_id=customer_id,
                occurred_at=at(when),
                channel="phone",
                direction=direction,
                kind="consultation",
                first_responded_at=at(responded) if responded else None,
            )
        )
