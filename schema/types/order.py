"""Products, orders, their items and tracking timeline. Money is a Decimal scalar,
rendered as a string so no client ever sees a float."""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import Any

import strawberry
from strawberry import UNSET
from strawberry.types import Info

from schema.cost import assumed, cost
from schema.loaders import request_loader
from schema.paging import Connection, check_page_size, connection, id_cursor
from schema.selection import selected_names, top_level_names
from server.data.models import OrderItem as OrderItemRow
from server.data.models import OrderStatusEvent as OrderStatusEventRow
from server.data.models import Product as ProductRow
from server.order.service import OrderView
from server.paging import Page

# Root `orders` and `Customer.orders` page through one list of orders.
ORDER_CURSORS = id_cursor("order")


@strawberry.type(description="A product; prices and costs are exact decimals.")
class Product:
    id: strawberry.ID
    sku: str
    name: str
    category: str
    unit_price: decimal.Decimal
    unit_cost: decimal.Decimal
    is_new: bool
    launched_at: datetime.datetime | None
    active: bool = strawberry.field(
        description="False once deactivated: on past orders, refused by createOrder."
    )

    @classmethod
    def from_row(cls, row: ProductRow) -> Product:
        return cls(
            id=strawberry.ID(str(row.id)),
            sku=row.sku,
            name=row.name,
            category=row.category,
            unit_price=row.unit_price,
            unit_cost=row.unit_cost,
            is_new=row.is_new,
            launched_at=row.launched_at,
            active=row.active,
        )


@strawberry.type
class OrderItem:
    id: strawberry.ID
    product_id: strawberry.ID
    quantity: int
    unit_price: decimal.Decimal
    unit_cost: decimal.Decimal
    line_total: decimal.Decimal

    @classmethod
    def from_row(cls, row: OrderItemRow) -> OrderItem:
        return cls(
            id=strawberry.ID(str(row.id)),
            product_id=strawberry.ID(str(row.product_id)),
            quantity=row.quantity,
            unit_price=row.unit_price,
            unit_cost=row.unit_cost,
            line_total=row.line_total,
        )


@strawberry.type(description="One step of an order's tracking timeline.")
class OrderStatusEvent:
    status: str
    at: datetime.datetime
    actor: str
    tracking_note: str | None

    @classmethod
    def from_row(cls, row: OrderStatusEventRow) -> OrderStatusEvent:
        return cls(status=row.status, at=row.at, actor=row.actor, tracking_note=row.tracking_note)


@strawberry.type(description="An order; totals are computed by the server from its items.")
class Order:
    id: strawberry.ID
    customer_id: strawberry.ID
    ordered_at: datetime.datetime
    status: str = strawberry.field(
        description="created, paid, shipped, delivered, cancelled or returned."
    )
    channel: str | None
    currency: str
    total: decimal.Decimal
    cost_total: decimal.Decimal
    external_ref: str | None
    items: list[OrderItem] = strawberry.field(metadata=cost(size=assumed(5)))
    timeline: list[OrderStatusEvent] = strawberry.field(metadata=cost(size=assumed(6)))

    @classmethod
    def from_view(cls, view: OrderView) -> Order:
        o = view.order
        return cls(
            id=strawberry.ID(str(o.id)),
            customer_id=strawberry.ID(str(o.customer_id)),
            ordered_at=o.ordered_at,
            status=o.status,
            channel=o.channel,
            currency=o.currency,
            total=o.total,
            cost_total=o.cost_total,
            external_ref=o.external_ref,
            items=[OrderItem.from_row(i) for i in view.items],
            timeline=[OrderStatusEvent.from_row(e) for e in view.timeline],
        )


@strawberry.type
class OrderConnection(Connection[Order]):
    total_count: int = strawberry.field(description="Orders matching the filter in scope.")


@strawberry.input
class OrderFilterInput:
    customer_id: strawberry.ID | None = None
    status: str | None = None
    ordered_from: datetime.datetime | None = None
    ordered_to: datetime.datetime | None = None


@strawberry.input
class CreateProductInput:
    sku: str
    name: str
    category: str
    unit_price: decimal.Decimal
    unit_cost: decimal.Decimal
    is_new: bool = False


@strawberry.input(description="The fields to change; omitted ones stay as they are.")
class UpdateProductInput:
    name: str | None = UNSET
    category: str | None = UNSET
    unit_price: decimal.Decimal | None = UNSET
    unit_cost: decimal.Decimal | None = UNSET
    is_new: bool | None = UNSET
    active: bool | None = UNSET

    def changes(self) -> dict[str, object]:
        given = {
            "name": self.name,
            "category": self.category,
            "unit_price": self.unit_price,
            "unit_cost": self.unit_cost,
            "is_new": self.is_new,
            "active": self.active,
        }
        return {k: v for k, v in given.items() if v is not UNSET}


@strawberry.input
class OrderItemInput:
    product_id: strawberry.ID
    quantity: int
    unit_price: decimal.Decimal | None = strawberry.field(
        default=None, description="Defaults to the product's unit price."
    )


@strawberry.type
class ProductCreated:
    product: Product


@strawberry.type
class OrderSaved:
    order: Order


def orders_page_connection(page: Page[OrderView], after: str | None) -> OrderConnection:
    return connection(
        OrderConnection,
        page,
        after=after,
        cursor=lambda view: ORDER_CURSORS.encode(view.order.id),
        node=Order.from_view,
    )


async def customer_orders(
    info: Info[Any, None], customer_id: uuid.UUID, first: int, after: str | None
) -> OrderConnection:
    """`Customer.orders`: one batch for every customer of the page (no query per row)."""
    ctx = info.context
    check_page_size(first, ctx.max_page_size)
    selected = selected_names(info, ("edges", "node"), ("nodes",))
    with_items = "items" in selected
    with_timeline = "timeline" in selected
    with_total = "totalCount" in top_level_names(info)
    cursor = ORDER_CURSORS.decode(after)

    async def load(ids: list[uuid.UUID]) -> list[Page[OrderView]]:
        pages = await ctx.services.orders.pages_for_customers(
            ctx.session,
            ctx.caller,
            ids,
            first=first,
            after=cursor,
            with_items=with_items,
            with_timeline=with_timeline,
            with_total=with_total,
        )
        return [pages[i] for i in ids]

    name = f"customer-orders:{first}:{after}:{with_items}:{with_timeline}:{with_total}"
    page = await request_loader(ctx, name, load).load(customer_id)
    return orders_page_connection(page, after)
