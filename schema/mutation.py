"""Root mutations. Expected failures come back as `UserError` members of a union."""

from __future__ import annotations

from typing import Annotated, cast

import strawberry
from strawberry.types import Info

from schema.context import GraphQLContext
from schema.selection import selected_names
from schema.types.common import UserError
from schema.types.customer import CreateCustomerInput, Customer, CustomerCreated, domain_fields
from server.customer.service import NewCustomer
from server.errors import ConflictError, ValidationError

Ctx = Info[GraphQLContext, None]

CreateCustomerResult = Annotated[
    CustomerCreated | UserError, strawberry.union("CreateCustomerResult")
]


@strawberry.type
class Mutation:
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
