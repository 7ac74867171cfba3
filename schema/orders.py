"""Product and order root fields. Resolvers translate arguments and call the order service."""

from __future__ import annotations

import datetime
import uuid
from typing import Annotated

import strawberry
from strawberry.types import Info

from schema.context import GraphQLContext
from schema.cost import paged
from schema.mutations import run_mutation
from schema.paging import Connection, check_page_size, connection, id_cursor
from schema.selection import selected_names, top_level_names
from schema.types.common import UserError, parse_id
from schema.types.enums import OrderStatus, domain_value
from schema.types.order import (
    ORDER_CURSORS,
    CreateProductInput,
    Order,
    OrderConnection,
    OrderFilterInput,
    OrderItemInput,
    OrderSaved,
    Product,
    ProductCreated,
    UpdateProductInput,
    orders_page_connection,
)
from server.order.repository import OrderFilter
from server.order.service import NewOrderItem, NewProduct

Ctx = Info[GraphQLContext, None]
# Root `orders` and `Customer.orders` share the order (by id), so they share cursors.
PRODUCT_CURSORS = id_cursor("product")


def _order_filter(value: OrderFilterInput | None) -> OrderFilter:
    if value is None:
        return OrderFilter()
    return OrderFilter(
        customer_id=parse_id(value.customer_id, "customerId") if value.customer_id else None,
        status=domain_value(value.status),
        ordered_from=value.ordered_from,
        ordered_to=value.ordered_to,
    )


async def order_connection(
    info: Ctx, flt: OrderFilter, first: int, after: str | None
) -> OrderConnection:
    """Shared by `orders` and `Customer.orders`: items and timeline only when selected."""
    ctx = info.context
    check_page_size(first, ctx.max_page_size)
    selected = selected_names(info, ("edges", "node"), ("nodes",))
    page = await ctx.services.orders.page(
        ctx.session,
        ctx.caller,
        flt=flt,
        first=first,
        after=ORDER_CURSORS.decode(after),
        with_items="items" in selected,
        with_timeline="timeline" in selected,
        with_total="totalCount" in top_level_names(info),
    )
    return orders_page_connection(page, after)


async def _saved(info: Ctx, order_id: uuid.UUID) -> OrderSaved:
    ctx = info.context
    view = await ctx.services.orders.get(ctx.session, ctx.caller, order_id)
    return OrderSaved(order=Order.from_view(view))


async def order_by_id(info: Ctx, order_id: uuid.UUID) -> Order:
    """One order (by `order` and `node`)."""
    ctx = info.context
    return Order.from_view(await ctx.services.orders.get(ctx.session, ctx.caller, order_id))


@strawberry.type
class OrderQuery:
    @strawberry.field(
        metadata=paged(), description="The product catalogue, optionally one category."
    )
    async def products(
        self, info: Ctx, first: int = 20, after: str | None = None, category: str | None = None
    ) -> Connection[Product]:
        ctx = info.context
        check_page_size(first, ctx.max_page_size)
        page = await ctx.services.orders.products(
            ctx.session,
            ctx.caller,
            first=first,
            after=PRODUCT_CURSORS.decode(after),
            category=category,
        )
        return connection(
            Connection[Product],
            page,
            after=after,
            cursor=lambda product: PRODUCT_CURSORS.encode(product.id),
            node=Product.from_row,
        )

    @strawberry.field(description="One order; unknown and out-of-scope ids are NOT_FOUND.")
    async def order(self, info: Ctx, id: strawberry.ID) -> Order | None:
        return await order_by_id(info, parse_id(id))

    @strawberry.field(
        metadata=paged(), description="Orders of customers under the caller's row scope."
    )
    async def orders(
        self,
        info: Ctx,
        filter: OrderFilterInput | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> OrderConnection:
        return await order_connection(info, _order_filter(filter), first, after)


CreateProductResult = Annotated[ProductCreated | UserError, strawberry.union("CreateProductResult")]
ProductResult = Annotated[ProductCreated | UserError, strawberry.union("ProductResult")]
OrderResult = Annotated[OrderSaved | UserError, strawberry.union("OrderResult")]


@strawberry.type
class OrderMutation:
    @strawberry.mutation(description="Add a product to the catalogue (needs product/manage).")
    async def create_product(self, info: Ctx, input: CreateProductInput) -> CreateProductResult:
        ctx = info.context
        data = NewProduct(
            sku=input.sku,
            name=input.name,
            category=input.category,
            unit_price=input.unit_price,
            unit_cost=input.unit_cost,
            is_new=input.is_new,
        )
        product = await run_mutation(
            ctx, lambda: ctx.services.orders.create_product(ctx.session, ctx.caller, data)
        )
        if isinstance(product, UserError):
            return product
        return ProductCreated(product=Product.from_row(product))

    @strawberry.mutation(
        description="Change a product of the catalogue (needs product/manage); `active: "
        "false` takes it off sale."
    )
    async def update_product(
        self, info: Ctx, id: strawberry.ID, input: UpdateProductInput
    ) -> ProductResult:
        ctx = info.context
        product_id = parse_id(id)
        product = await run_mutation(
            ctx,
            lambda: ctx.services.orders.update_product(
                ctx.session, ctx.caller, product_id, input.changes()
            ),
        )
        if isinstance(product, UserError):
            return product
        return ProductCreated(product=Product.from_row(product))

    @strawberry.mutation(
        description="Take a product off sale (needs product/manage): it stays on past "
        "orders, createOrder refuses it."
    )
    async def deactivate_product(self, info: Ctx, id: strawberry.ID) -> ProductResult:
        ctx = info.context
        product_id = parse_id(id)
        product = await run_mutation(
            ctx,
            lambda: ctx.services.orders.update_product(
                ctx.session, ctx.caller, product_id, {"active": False}
            ),
        )
        if isinstance(product, UserError):
            return product
        return ProductCreated(product=Product.from_row(product))

    @strawberry.mutation(description="Create an order; totals are computed from the items.")
    async def create_order(
        self,
        info: Ctx,
        customer_id: strawberry.ID,
        items: list[OrderItemInput],
        channel: str | None = None,
        promised_at: Annotated[
            datetime.datetime | None,
            strawberry.argument(description="When delivery is promised (not before now)."),
        ] = None,
    ) -> OrderResult:
        ctx = info.context

        async def create() -> uuid.UUID:
            lines = [
                NewOrderItem(
                    product_id=parse_id(i.product_id, f"items.{n}.productId"),
                    quantity=i.quantity,
                    unit_price=i.unit_price,
                )
                for n, i in enumerate(items)
            ]
            return await ctx.services.orders.create_order(
                ctx.session,
                ctx.caller,
                parse_id(customer_id, "customerId"),
                lines,
                channel=channel,
                promised_at=promised_at,
            )

        order_id = await run_mutation(ctx, create)
        if isinstance(order_id, UserError):
            return order_id
        return await _saved(info, order_id)

    @strawberry.mutation(
        description="Set or (null) withdraw when delivery is promised, until the order is "
        "delivered, cancelled or returned (then PROMISE_CLOSED)."
    )
    async def set_order_promise(
        self, info: Ctx, order_id: strawberry.ID, promised_at: datetime.datetime | None
    ) -> OrderResult:
        ctx = info.context
        saved = await run_mutation(
            ctx,
            lambda: ctx.services.orders.set_promise(
                ctx.session, ctx.caller, parse_id(order_id, "orderId"), promised_at
            ),
        )
        if isinstance(saved, UserError):
            return saved
        return await _saved(info, saved)

    @strawberry.mutation(
        description="Move an order along created → paid → shipped → delivered, or to "
        "cancelled (from created or paid) or returned (from delivered)."
    )
    async def update_order_status(
        self,
        info: Ctx,
        order_id: strawberry.ID,
        status: OrderStatus,
        tracking_note: str | None = None,
    ) -> OrderResult:
        ctx = info.context
        moved = await run_mutation(
            ctx,
            lambda: ctx.services.orders.update_status(
                ctx.session,
                ctx.caller,
                parse_id(order_id, "orderId"),
                status.value,
                tracking_note,
            ),
        )
        if isinstance(moved, UserError):
            return moved
        return await _saved(info, moved)
