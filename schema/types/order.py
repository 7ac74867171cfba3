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
from schema.types.enums import OrderStatus
from schema.types.node import Node
from server.data.models import OrderItem as OrderItemRow
from server.data.models import OrderStatusEvent as OrderStatusEventRow
from server.data.models import Product as ProductRow
from server.order.service import OrderView
from server.paging import Page

# Root `orders` and `Customer.orders` page through one list of orders.
ORDER_CURSORS = id_cursor("order")


@strawberry.type(description="A product; prices and costs are exact decimals.")
class Product:
    id: strawberry.ID = strawberry.field(description="The product's id.")
    sku: str = strawberry.field(description="Stock-keeping unit, unique.")
    name: str = strawberry.field(description="The product's name.")
    category: str = strawberry.field(description="Its category.")
    unit_price: decimal.Decimal = strawberry.field(description="List price of one unit.")
    unit_cost: decimal.Decimal = strawberry.field(description="Cost of one unit.")
    is_new: bool = strawberry.field(description="A new product (for new-product sales).")
    launched_at: datetime.datetime | None = strawberry.field(description="When it was launched.")
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


@strawberry.type(description="One line of an order.")
class OrderItem:
    id: strawberry.ID = strawberry.field(description="The line's id.")
    product_id: strawberry.ID = strawberry.field(description="The product.")
    quantity: int = strawberry.field(description="Units.")
    unit_price: decimal.Decimal = strawberry.field(description="Price of one unit on this order.")
    unit_cost: decimal.Decimal = strawberry.field(description="Cost of one unit on this order.")
    line_total: decimal.Decimal = strawberry.field(description="quantity x unitPrice.")

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
    status: OrderStatus = strawberry.field(description="The status the order moved to.")
    at: datetime.datetime = strawberry.field(description="When.")
    actor: str = strawberry.field(description="Who moved it.")
    tracking_note: str | None = strawberry.field(description="A tracking note given with the move.")

    @classmethod
    def from_row(cls, row: OrderStatusEventRow) -> OrderStatusEvent:
        return cls(
            status=OrderStatus(row.status),
            at=row.at,
            actor=row.actor,
            tracking_note=row.tracking_note,
        )


@strawberry.type(description="An order; totals are computed by the server from its items.")
class Order(Node):
    id: strawberry.ID
    customer_id: strawberry.ID = strawberry.field(description="The customer who ordered.")
    ordered_at: datetime.datetime = strawberry.field(description="When it was ordered.")
    status: OrderStatus = strawberry.field(description="Where the order stands now.")
    channel: str | None = strawberry.field(description="Where it was ordered (free text).")
    currency: str = strawberry.field(description="ISO 4217 currency of its amounts.")
    total: decimal.Decimal = strawberry.field(description="Sum of the line totals.")
    cost_total: decimal.Decimal = strawberry.field(description="Sum of the line costs.")
    external_ref: str | None = strawberry.field(
        description="The source system's reference (imports)."
    )
    promised_at: datetime.datetime | None = strawberry.field(
        description="When delivery was promised; on-time delivery is measured against it."
    )
    items: list[OrderItem] = strawberry.field(
        metadata=cost(size=assumed(5)), description="Its lines."
    )
    timeline: list[OrderStatusEvent] = strawberry.field(
        metadata=cost(size=assumed(6)), description="Every status move, oldest first."
    )

    @classmethod
    def from_view(cls, view: OrderView) -> Order:
        o = view.order
        return cls(
            id=strawberry.ID(str(o.id)),
            customer_id=strawberry.ID(str(o.customer_id)),
            ordered_at=o.ordered_at,
            status=OrderStatus(o.status),
            channel=o.channel,
            currency=o.currency,
            total=o.total,
            cost_total=o.cost_total,
            external_ref=o.external_ref,
            promised_at=o.promised_at,
            items=[OrderItem.from_row(i) for i in view.items],
            timeline=[OrderStatusEvent.from_row(e) for e in view.timeline],
        )


@strawberry.type(description="Orders under the caller's row scope.")
class OrderConnection(Connection[Order]):
    total_count: int = strawberry.field(description="Orders matching the filter in scope.")


@strawberry.input(description="Filters on the order list; all given ones must match.")
class OrderFilterInput:
    customer_id: strawberry.ID | None = strawberry.field(
        default=None, description="Only this customer's orders."
    )
    status: OrderStatus | None = strawberry.field(
        default=None, description="Only orders in this status."
    )
    ordered_from: datetime.datetime | None = strawberry.field(
        default=None, description="Only orders placed at or after this instant."
    )
    ordered_to: datetime.datetime | None = strawberry.field(
        default=None, description="Only orders placed before this instant."
    )


@strawberry.input(description="A product for the catalogue.")
class CreateProductInput:
    sku: str = strawberry.field(description="Stock-keeping unit, unique.")
    name: str = strawberry.field(description="The product's name.")
    category: str = strawberry.field(description="Its category.")
    unit_price: decimal.Decimal = strawberry.field(description="List price of one unit.")
    unit_cost: decimal.Decimal = strawberry.field(description="Cost of one unit.")
    is_new: bool = strawberry.field(
        default=False, description="A new product (for new-product sales)."
    )


@strawberry.input(description="The fields to change; omitted ones stay as they are.")
class UpdateProductInput:
    name: str | None = strawberry.field(default=UNSET, description="The product's name.")
    category: str | None = strawberry.field(default=UNSET, description="Its category.")
    unit_price: decimal.Decimal | None = strawberry.field(
        default=UNSET, description="List price of one unit (past orders keep theirs)."
    )
    unit_cost: decimal.Decimal | None = strawberry.field(
        default=UNSET, description="Cost of one unit."
    )
    is_new: bool | None = strawberry.field(
        default=UNSET, description="A new product (for new-product sales)."
    )
    active: bool | None = strawberry.field(
        default=UNSET, description="False deactivates it: createOrder refuses it from then on."
    )

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


@strawberry.input(description="One line of a new order.")
class OrderItemInput:
    product_id: strawberry.ID = strawberry.field(description="The product.")
    quantity: int = strawberry.field(description="Units, at least 1.")
    unit_price: decimal.Decimal | None = strawberry.field(
        default=None, description="Defaults to the product's unit price."
    )


@strawberry.type(description="A product was added to the catalogue.")
class ProductCreated:
    product: Product = strawberry.field(description="The new product.")


@strawberry.type(description="An order was created or moved.")
class OrderSaved:
    order: Order = strawberry.field(description="The order as it now stands.")


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
