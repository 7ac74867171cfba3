"""Data-subject rights: consent, export and erasure. Resolvers call the privacy service."""

from __future__ import annotations

import datetime
from typing import Annotated, cast

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from schema.context import GraphQLContext
from schema.cost import cost
from schema.mutations import run_mutation
from schema.types.common import UserError, parse_id
from schema.types.consent import Consent, ConsentPurpose
from server.errors import ConflictError, ValidationError

Ctx = Info[GraphQLContext, None]
# Unlike other mutations, these have always answered an unknown or out-of-scope customer
# with NOT_FOUND as a GraphQL error (data null), and clients rely on it.
PRIVACY_EXPECTED = (ValidationError, ConflictError)


@strawberry.type
class PrivacyQuery:
    @strawberry.field(
        metadata=cost(weight=1000),
        description="Everything held about one person, decrypted (customer/export; audited).",
    )
    async def export_customer_data(self, info: Ctx, id: strawberry.ID) -> JSON:
        ctx = info.context
        data = await ctx.services.privacy.export(ctx.session, ctx.caller, parse_id(id))
        return cast(JSON, data)


@strawberry.type(description="A customer was crypto-shredded.")
class CustomerErased:
    customer_id: strawberry.ID = strawberry.field(description="The file asked to erase.")
    erased_at: datetime.datetime = strawberry.field(description="When it was erased.")
    erased_ids: list[strawberry.ID] = strawberry.field(
        description="Every file erased: the surviving customer and each duplicate merged "
        "into it (erasure by either id reaches them all)."
    )


@strawberry.type(description="A consent was granted or withdrawn.")
class ConsentChanged:
    consent: Consent = strawberry.field(description="The consent record as it now stands.")


EraseCustomerResult = Annotated[CustomerErased | UserError, strawberry.union("EraseCustomerResult")]
ConsentResult = Annotated[ConsentChanged | UserError, strawberry.union("ConsentResult")]


@strawberry.type
class PrivacyMutation:
    @strawberry.mutation(
        metadata=cost(weight=100),
        description="Erase a person: destroy their data key, keep anonymous aggregates.",
    )
    async def erase_customer(self, info: Ctx, id: strawberry.ID) -> EraseCustomerResult:
        ctx = info.context
        receipt = await run_mutation(
            ctx,
            lambda: ctx.services.privacy.erase(
                ctx.session, ctx.caller, parse_id(id), now=ctx.services.clock.now()
            ),
            expected=PRIVACY_EXPECTED,
        )
        if isinstance(receipt, UserError):
            return receipt
        return CustomerErased(
            customer_id=strawberry.ID(str(receipt.customer_id)),
            erased_at=receipt.erased_at,
            erased_ids=[strawberry.ID(str(i)) for i in receipt.erased_ids],
        )

    @strawberry.mutation(description="Record a consent to a purpose (an active one is kept).")
    async def grant_consent(
        self, info: Ctx, customer_id: strawberry.ID, purpose: ConsentPurpose, source: str
    ) -> ConsentResult:
        ctx = info.context
        view = await run_mutation(
            ctx,
            lambda: ctx.services.privacy.grant_consent(
                ctx.session,
                ctx.caller,
                parse_id(customer_id, "customerId"),
                purpose.value,
                source,
                now=ctx.services.clock.now(),
            ),
            expected=PRIVACY_EXPECTED,
        )
        if isinstance(view, UserError):
            return view
        return ConsentChanged(consent=Consent.of(view))

    @strawberry.mutation(description="Withdraw the active consent to a purpose.")
    async def withdraw_consent(
        self, info: Ctx, customer_id: strawberry.ID, purpose: ConsentPurpose
    ) -> ConsentResult:
        ctx = info.context
        view = await run_mutation(
            ctx,
            lambda: ctx.services.privacy.withdraw_consent(
                ctx.session,
                ctx.caller,
                parse_id(customer_id, "customerId"),
                purpose.value,
                now=ctx.services.clock.now(),
            ),
            expected=PRIVACY_EXPECTED,
        )
        if isinstance(view, UserError):
            return view
        return ConsentChanged(consent=Consent.of(view))
