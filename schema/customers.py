"""Customer root fields. Resolvers translate arguments and selections, then call a service."""

from __future__ import annotations

from typing import Annotated, cast

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
from schema.types.customer import (
    CreateCustomerInput,
    Customer,
    CustomerConnection,
    CustomerCreated,
    CustomerEdge,
    CustomerFilterInput,
    domain_fields,
)
from server.customer.repository import CustomerFilter
from server.customer.service import NewCustomer
from server.errors import ConflictError, ValidationError

Ctx = Info[GraphQLContext, None]


def _filter(value: CustomerFilterInput | None) -> CustomerFilter | None:
    if value is None:
        return None
    return CustomerFilter(**{k: getattr(value, k) for k in CustomerFilter.__dataclass_fields__})


@strawberry.type
class CustomerQuery:
    @strawberry.field(description="Customers under the caller's row scope, in creation order.")
    async def customers(
        self,
        info: Ctx,
        first: int = 20,
        after: str | None = None,
        filter: CustomerFilterInput | None = None,
    ) -> CustomerConnection:
        ctx = info.context
        check_page_size(first, ctx.max_page_size)
        fields = domain_fields(selected_names(info, ("edges", "node"), ("nodes",)))
        page = await ctx.services.customers.list(
            ctx.session,
            ctx.caller,
            first=first,
            after=decode_cursor(after),
            flt=_filter(filter),
            fields=fields,
            with_total="totalCount" in top_level_names(info),
        )
        nodes = cast(list[Customer], page.views)
        edges = [
            CustomerEdge(cursor=encode_cursor(v.id), node=n)
            for v, n in zip(page.views, nodes, strict=True)
        ]
        return CustomerConnection(
            edges=edges,
            nodes=nodes,
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                has_previous_page=after is not None,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
            total_count=cast(int, page.total_count),
        )

    @strawberry.field(description="One customer; unknown and out-of-scope ids are NOT_FOUND.")
    async def customer(self, info: Ctx, id: strawberry.ID) -> Customer | None:
        ctx = info.context
        view = await ctx.services.customers.get(
            ctx.session, ctx.caller, parse_id(id), domain_fields(top_level_names(info))
        )
        return cast(Customer, view)

    @strawberry.field(description="Find a customer by exactly one exact contact value.")
    async def customer_by_contact(
        self,
        info: Ctx,
        phone: str | None = None,
        email: str | None = None,
        national_id: str | None = None,
    ) -> Customer | None:
        given = {"phone": phone, "email": email, "national_id": national_id}
        chosen = [(k, v) for k, v in given.items() if v is not None]
        if len(chosen) != 1:
            raise ValidationError("give exactly one of phone, email or nationalId")
        field, value = chosen[0]
        ctx = info.context
        view = await ctx.services.customers.find_by_contact(
            ctx.session,
            ctx.caller,
            field=field,
            value=value,
            fields=domain_fields(top_level_names(info)),
        )
        return cast(Customer | None, view)


CreateCustomerResult = Annotated[
    CustomerCreated | UserError, strawberry.union("CreateCustomerResult")
]


@strawberry.type
class CustomerMutation:
    @strawberry.mutation(description="Create a customer file; duplicates by contact are refused.")
    async def create_customer(self, info: Ctx, input: CreateCustomerInput) -> CreateCustomerResult:
        ctx = info.context
        data = NewCustomer(
            **{k: getattr(input, k) for k in NewCustomer.__dataclass_fields__ if hasattr(input, k)}
        )
        try:
            async with ctx.session.begin_nested():
                customer_id = await ctx.services.customers.create(ctx.session, ctx.caller, data)
        except (ValidationError, ConflictError) as error:
            return UserError.from_error(error)
        fields = domain_fields(selected_names(info, ("customer",)))
        view = await ctx.services.customers.get(ctx.session, ctx.caller, customer_id, fields)
        return CustomerCreated(customer=cast(Customer, view))
