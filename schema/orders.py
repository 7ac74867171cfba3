"""Product and order root fields. Resolvers translate arguments and call the order service."""

from __future__ import annotations

import uuid
from typing import Annotated

import strawberry
from strawberry.types import Info

from schema.context import GraphQLContext
from schema.selection import selected_names, top_level_names
from schema.types.common import (
    PageInfo,
    UserError,
    check_page_size,
    decode_cursor,
    encode_cursor,
    parse_id,
)
from schema.types.order import (
    CreateProductInput,
    Order,
    OrderConnection,
    OrderFilterInput,
    OrderItemInput,
    OrderSaved,
    Product,
    ProductConnection,
    ProductCreated,
    ProductEdge,
)
from server.errors import ConflictError, NotFoundError, ValidationError
from server.order.repository import OrderFilter
from server.order.service import NewOrderItem, NewProduct

Ctx = Info[GraphQLContext, None]
EXPECTED = (ValidationError, ConflictError, NotFoundError)


def _order_filter(value: OrderFilterInput | None) -> OrderFilter:
    if value is None:
        return OrderFilter()
    return OrderFilter(
        customer_id=parse_id(value.customer_id, "customerId") if value.customer_id else None,
        status=value.status,
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
        after=decode_cursor(after),
        with_items="items" in selected,
        with_timeline="timeline" in selected,
        with_total="totalCount" in top_level_names(info),
    )
    return OrderConnection.build(page.views, page.has_next_page, after, page.total_count)


async def _saved(info: Ctx, order_id: uuid.UUID) -> OrderSaved:
    ctx = info.context
    view = await ctx.services.orders.get(ctx.session, ctx.caller, order_id)
    return OrderSaved(order=Order.from_view(view))


@strawberry.type
class OrderQuery:
    @strawberry.field(description="The product catalogue, optionally one category.")
    async def products(
        self, info: Ctx, first: int = 20, after: str | None = None, category: str | None = None
    ) -> ProductConnection:
        ctx = info.context
        check_page_size(first, ctx.max_page_size)
        page = await ctx.services.orders.products(
            ctx.session, ctx.caller, first=first, after=decode_cursor(after), category=category
        )
        nodes = [Product.from_row(p) for p in page.products]
        edges = [
            ProductEdge(cursor=encode_cursor(p.id), node=Product.from_row(p)) for p in page.products
        ]
        return ProductConnection(
            edges=edges,
            nodes=nodes,
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                has_previous_page=after is not None,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
        )

    @strawberry.field(description="One order; unknown and out-of-scope ids are NOT_FOUND.")
    async def order(self, info: Ctx, id: strawberry.ID) -> Order | None:
        ctx = info.context
        view = await ctx.services.orders.get(ctx.session, ctx.caller, parse_id(id))
        return Order.from_view(view)

    @strawberry.field(description="Orders of customers under the caller's row scope.")
    async def orders(
        self,
        info: Ctx,
        filter: OrderFilterInput | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> OrderConnection:
        return await order_connection(info, _order_filter(filter), first, after)


CreateProductResult = Annotated[ProductCreated | UserError, strawberry.union("CreateProductResult")]
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
        try:
            async with ctx.session.begin_nested():
                product = await ctx.services.orders.create_product(ctx.session, ctx.caller, data)
        except EXPECTED as error:
            return UserError.from_error(error)
        return ProductCreated(product=Product.from_row(product))

    @strawberry.mutation(description="Create an order; totals are computed from the items.")
    async def create_order(
        self,
        info: Ctx,
        customer_id: strawberry.ID,
        items: list[OrderItemInput],
        channel: str | None = None,
    ) -> OrderResult:
        ctx = info.context
        try:
            lines = [
                NewOrderItem(
                    product_id=parse_id(i.product_id, "productId"),
                    quantity=i.quantity,
                    unit_price=i.unit_price,
                )
                for i in items
            ]
            async with ctx.session.begin_nested():
                order_id = await ctx.services.orders.create_order(
                    ctx.session,
                    ctx.caller,
                    parse_id(customer_id, "customerId"),
                    lines,
                    channel=channel,
                )
        except EXPECTED as error:
            return UserError.from_error(error)
        return await _saved(info, order_id)

    @strawberry.mutation(
        description="Move an order along created → paid → shipped → delivered, or to "
        "cancelled (from created or paid) or returned (from delivered)."
    )
    async def update_order_status(
        self,
        info: Ctx,
        order_id: strawberry.ID,
        status: str,
        tracking_note: str | None = None,
    ) -> OrderResult:
        ctx = info.context
        try:
            async with ctx.session.begin_nested():
                moved = await ctx.services.orders.update_status(
                    ctx.session, ctx.caller, parse_id(order_id, "orderId"), status, tracking_note
                )
        except EXPECTED as error:
            return UserError.from_error(error)
        return await _saved(info, moved)
