"""Customer root fields. Resolvers translate arguments and selections, then call a service."""

from __future__ import annotations

import uuid
from typing import Annotated, cast

import strawberry
from strawberry.types import Info

from schema.context import GraphQLContext
from schema.cost import assumed, cost, paged
from schema.mutations import run_mutation
from schema.paging import Connection, check_page_size, connection, id_cursor, keyset_cursor
from schema.selection import selected_names, top_level_names
from schema.types.common import UserError, parse_id
from schema.types.customer import (
    ContactChannel,
    CreateCustomerInput,
    Customer,
    CustomerConnection,
    CustomerCreated,
    CustomerFilterInput,
    CustomersMerged,
    CustomerSortOrder,
    CustomerUpdated,
    DuplicateCandidate,
    DuplicateFlag,
    UpdateCustomerInput,
    customer_changes,
    domain_fields,
    graphql_name,
    new_customer,
)
from server.customer.repository import CustomerFilter, CustomerSort
from server.errors import ValidationError

Ctx = Info[GraphQLContext, None]
# A cursor carries its sort key, so each order is a list of its own.
CURSORS = {sort: keyset_cursor(f"customer-{sort.value}") for sort in CustomerSort}
FLAG_CURSORS = id_cursor("duplicate-flag")


def _filter(value: CustomerFilterInput | None) -> CustomerFilter | None:
    return value.to_filter() if value is not None else None


async def customer_by_id(info: Ctx, customer_id: uuid.UUID, selected: set[str]) -> Customer:
    """One customer with the `Customer` fields `selected` (by `customer` and `node`)."""
    ctx = info.context
    view = await ctx.services.customers.get(
        ctx.session, ctx.caller, customer_id, domain_fields(selected)
    )
    return cast(Customer, view)


@strawberry.type
class CustomerQuery:
    @strawberry.field(
        metadata=paged(),
        description="Customers under the caller's row scope, in creation order by default. "
        "Cursors carry the sort key, so a cursor is only valid for the order it came from.",
    )
    async def customers(
        self,
        info: Ctx,
        first: int = 20,
        after: str | None = None,
        filter: CustomerFilterInput | None = None,
        sort: CustomerSortOrder = CustomerSortOrder.CREATED_ASC,
    ) -> CustomerConnection:
        return await _customer_page(info, first, after, _filter(filter), CustomerSort(sort.value))

    @strawberry.field(
        metadata=paged(),
        description="Files never reviewed or not reviewed for the configured number of "
        "months (CUSTOS_CUSTOMER_REVIEW_MONTHS), oldest first.",
    )
    async def customers_needing_review(
        self, info: Ctx, first: int = 20, after: str | None = None
    ) -> CustomerConnection:
        cutoff = info.context.services.customers.review_cutoff()
        flt = CustomerFilter(reviewed_before=cutoff)
        return await _customer_page(info, first, after, flt, CustomerSort.CREATED_ASC)

    @strawberry.field(
        metadata=cost(weight=20, size=assumed(10)),
        description="Other files with the same phone, email or national ID (blind index, "
        "confirmed by decryption): candidates for mergeCustomers.",
    )
    async def duplicate_candidates(
        self, info: Ctx, customer_id: strawberry.ID
    ) -> list[DuplicateCandidate]:
        ctx = info.context
        service = ctx.services.customers
        matches = await service.duplicate_candidates(
            ctx.session, ctx.caller, parse_id(customer_id, "customerId")
        )
        if not matches:
            return []
        fields = domain_fields(selected_names(info, ("customer",)))
        views = await service.get_many(ctx.session, ctx.caller, [m[0] for m in matches], fields)
        return [
            DuplicateCandidate(
                customer=cast(Customer, views[cid]),
                matched_on=[graphql_name(f) for f in on],
            )
            for cid, on in matches
            if cid in views
        ]

    @strawberry.field(
        description="Stored duplicate flags whose two files are both in the caller's scope, "
        "on contacts it reads in clear (X-Purpose), oldest first: candidates for "
        "mergeCustomers that their writers were not told about.",
        metadata=paged(),
    )
    async def duplicate_flags(
        self, info: Ctx, first: int = 20, after: str | None = None
    ) -> Connection[DuplicateFlag]:
        ctx = info.context
        check_page_size(first, ctx.max_page_size)
        page = await ctx.services.customers.list_duplicate_flags(
            ctx.session, ctx.caller, first=first, after=FLAG_CURSORS.decode(after)
        )
        return connection(
            Connection[DuplicateFlag],
            page,
            after=after,
            cursor=lambda flag: FLAG_CURSORS.encode(flag.id),
            node=lambda flag: DuplicateFlag(
                id=strawberry.ID(str(flag.id)),
                customer_id=strawberry.ID(str(flag.new_customer_id)),
                matched_customer_id=strawberry.ID(str(flag.existing_customer_id)),
                matched_on=graphql_name(flag.field),
                raised_at=flag.raised_at,
                raised_by=flag.raised_by,
            ),
        )

    @strawberry.field(
        description="One customer by `id` (unknown and out-of-scope ids are NOT_FOUND) or "
        "by `customerNumber` (null when no file in the caller's scope has it; audited as a "
        "lookup). Give exactly one."
    )
    async def customer(
        self, info: Ctx, id: strawberry.ID | None = None, customer_number: str | None = None
    ) -> Customer | None:
        ctx = info.context
        if (id is None) == (customer_number is None):
            raise ValidationError("give exactly one of id or customerNumber")
        if customer_number is not None:
            found = await ctx.services.customers.find_by_number(
                ctx.session, ctx.caller, customer_number, domain_fields(top_level_names(info))
            )
            return cast(Customer | None, found)
        return await customer_by_id(info, parse_id(cast(strawberry.ID, id)), top_level_names(info))

    @strawberry.field(
        metadata=cost(weight=5, lookup=True),
        description="Find a customer by exactly one exact contact value, on a field the "
        "caller reads in clear under its X-Purpose (else FORBIDDEN); audited hit or miss. "
        "`phone` also finds a file by its mobile and landline contact points and its "
        "contact persons' phones; `wechat` by a WeChat ID contact point (any case), under "
        "the same rule as `phone`.",
    )
    async def customer_by_contact(
        self,
        info: Ctx,
        phone: str | None = None,
        email: str | None = None,
        national_id: str | None = None,
        wechat: str | None = None,
    ) -> Customer | None:
        given = {"phone": phone, "email": email, "national_id": national_id, "wechat": wechat}
        chosen = [(k, v) for k, v in given.items() if v is not None]
        if len(chosen) != 1:
            raise ValidationError("give exactly one of phone, email, nationalId or wechat")
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
UpdateCustomerResult = Annotated[
    CustomerUpdated | UserError, strawberry.union("UpdateCustomerResult")
]
MergeCustomersResult = Annotated[
    CustomersMerged | UserError, strawberry.union("MergeCustomersResult")
]


async def _customer_page(
    info: Ctx, first: int, after: str | None, flt: CustomerFilter | None, sort: CustomerSort
) -> CustomerConnection:
    ctx = info.context
    check_page_size(first, ctx.max_page_size)
    fields = domain_fields(selected_names(info, ("edges", "node"), ("nodes",)))
    cursors = CURSORS[sort]
    page = await ctx.services.customers.list(
        ctx.session,
        ctx.caller,
        first=first,
        after=cursors.decode(after),
        flt=flt,
        fields=fields,
        with_total="totalCount" in top_level_names(info),
        sort=sort,
    )
    return connection(
        CustomerConnection,
        page,
        after=after,
        cursor=lambda view: cursors.encode((view.get(sort.column), view.id)),
    )


async def _updated(info: Ctx, customer_id: uuid.UUID, changed: list[str]) -> CustomerUpdated:
    """The file after a change, or null if the change moved it out of the caller's scope."""
    ctx = info.context
    fields = domain_fields(selected_names(info, ("customer",)))
    views = await ctx.services.customers.get_many(ctx.session, ctx.caller, [customer_id], fields)
    view = views.get(customer_id)
    return CustomerUpdated(
        customer=cast(Customer, view) if view is not None else None,
        changed_fields=[graphql_name(f) for f in changed],
    )


@strawberry.type
class CustomerMutation:
    @strawberry.mutation(
        description="Create a customer file. A duplicate contact is refused when the caller "
        "could see it (its scope, the field in clear); any other is flagged (duplicateFlags)."
    )
    async def create_customer(self, info: Ctx, input: CreateCustomerInput) -> CreateCustomerResult:
        ctx = info.context
        data = new_customer(input)
        customer_id = await run_mutation(
            ctx, lambda: ctx.services.customers.create(ctx.session, ctx.caller, data)
        )
        if isinstance(customer_id, UserError):
            return customer_id
        fields = domain_fields(selected_names(info, ("customer",)))
        view = await ctx.services.customers.get(ctx.session, ctx.caller, customer_id, fields)
        return CustomerCreated(customer=cast(Customer, view))

    @strawberry.mutation(
        description="Change any fields of a file, sealed ones included; changed contacts are "
        "re-indexed, lose their verification and are checked for duplicates. Changing "
        "ownerId or team reassigns the file (needs customer update and row scope)."
    )
    async def update_customer(
        self, info: Ctx, id: strawberry.ID, input: UpdateCustomerInput
    ) -> UpdateCustomerResult:
        ctx = info.context
        changes = customer_changes(input)

        async def update() -> tuple[uuid.UUID, list[str]]:
            customer_id = parse_id(id)
            changed = await ctx.services.customers.update(
                ctx.session, ctx.caller, customer_id, changes
            )
            return customer_id, changed

        updated = await run_mutation(ctx, update)
        if isinstance(updated, UserError):
            return updated
        return await _updated(info, *updated)

    @strawberry.mutation(description="Record that the customer confirmed this phone or email.")
    async def verify_contact(
        self, info: Ctx, customer_id: strawberry.ID, channel: ContactChannel
    ) -> UpdateCustomerResult:
        ctx = info.context

        async def verify() -> uuid.UUID:
            cid = parse_id(customer_id, "customerId")
            await ctx.services.customers.verify_contact(ctx.session, ctx.caller, cid, channel.value)
            return cid

        verified = await run_mutation(ctx, verify)
        if isinstance(verified, UserError):
            return verified
        return await _updated(info, verified, [f"{channel.value}_verified_at"])

    @strawberry.mutation(description="Add and remove tags (added after removed).")
    async def tag_customer(
        self,
        info: Ctx,
        customer_id: strawberry.ID,
        add: list[str] | None = None,
        remove: list[str] | None = None,
    ) -> UpdateCustomerResult:
        ctx = info.context

        async def retag() -> uuid.UUID:
            cid = parse_id(customer_id, "customerId")
            await ctx.services.customers.retag(
                ctx.session, ctx.caller, cid, add=add or [], remove=remove or []
            )
            return cid

        tagged = await run_mutation(ctx, retag)
        if isinstance(tagged, UserError):
            return tagged
        return await _updated(info, tagged, ["tags"])

    @strawberry.mutation(description="The file was reviewed now: it is current again.")
    async def mark_reviewed(self, info: Ctx, customer_id: strawberry.ID) -> UpdateCustomerResult:
        ctx = info.context

        async def review() -> uuid.UUID:
            cid = parse_id(customer_id, "customerId")
            await ctx.services.customers.mark_reviewed(ctx.session, ctx.caller, cid)
            return cid

        reviewed = await run_mutation(ctx, review)
        if isinstance(reviewed, UserError):
            return reviewed
        return await _updated(info, reviewed, ["reviewed_at"])

    @strawberry.mutation(
        metadata=cost(weight=200),
        description="Fold a duplicate file into the survivor: history moves (re-sealed under "
        "the survivor's key), missing facts are filled, the duplicate keeps mergedIntoId.",
    )
    async def merge_customers(
        self, info: Ctx, survivor_id: strawberry.ID, duplicate_id: strawberry.ID
    ) -> MergeCustomersResult:
        ctx = info.context

        async def merge() -> tuple[uuid.UUID, uuid.UUID, list[str]]:
            survivor = parse_id(survivor_id, "survivorId")
            duplicate = parse_id(duplicate_id, "duplicateId")
            filled = await ctx.services.customers.merge(
                ctx.session, ctx.caller, survivor, duplicate
            )
            return survivor, duplicate, filled

        merged = await run_mutation(ctx, merge)
        if isinstance(merged, UserError):
            return merged
        survivor, duplicate, filled = merged
        fields = domain_fields(selected_names(info, ("survivor",)))
        view = await ctx.services.customers.get(ctx.session, ctx.caller, survivor, fields)
        return CustomersMerged(
            survivor=cast(Customer, view),
            duplicate_id=strawberry.ID(str(duplicate)),
            filled_fields=[graphql_name(f) for f in filled],
        )
