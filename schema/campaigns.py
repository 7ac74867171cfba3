"""Campaign and care-queue root fields."""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import Annotated, Any, cast

import strawberry
from strawberry.types import Info

from schema.context import GraphQLContext
from schema.cost import assumed, cost
from schema.mutations import run_mutation
from schema.types.common import UserError, parse_id
from schema.types.customer import CustomerFilterInput
from schema.types.enums import CareReason
from schema.types.node import Node
from server.campaign.repository import Segment
from server.campaign.service import CampaignResults as Results
from server.data.models import Campaign as CampaignRow
from server.errors import ValidationError

Ctx = Info[GraphQLContext, None]


@strawberry.input(description="Customer-list filters plus purchase history; all must match.")
class CampaignSegmentInput(CustomerFilterInput):
    bought_category: str | None = strawberry.field(
        default=None, description="Only customers who bought in this product category."
    )
    never_bought_product_id: strawberry.ID | None = strawberry.field(
        default=None, description="Only customers who never bought this product."
    )


@strawberry.input(description="A campaign to a segment of customers.")
class CreateCampaignInput:
    name: str = strawberry.field(description="Its name.")
    product_id: strawberry.ID | None = strawberry.field(
        default=None, description="The product promoted, if any."
    )
    channel: str | None = strawberry.field(
        default=None, description="The channel it goes out on (free text, 1 to 16 characters)."
    )
    segment: CampaignSegmentInput = strawberry.field(
        default_factory=CampaignSegmentInput,
        description="Who it targets; empty for every customer in scope.",
    )


@strawberry.type(description="A marketing campaign to a segment of customers.")
class Campaign(Node):
    id: strawberry.ID
    name: str = strawberry.field(description="The campaign's name.")
    product_id: strawberry.ID | None = strawberry.field(description="The product promoted, if any.")
    channel: str | None = strawberry.field(description="The channel it goes out on.")
    status: str = strawberry.field(description="draft or active.")
    created_at: datetime.datetime = strawberry.field(description="When it was created.")
    created_by: str = strawberry.field(description="Who created it.")
    segment: strawberry.scalars.JSON = strawberry.field(
        description="The segment it targets, as given."
    )

    @classmethod
    def from_row(cls, row: CampaignRow) -> Campaign:
        return cls(
            id=strawberry.ID(str(row.id)),
            name=row.name,
            product_id=strawberry.ID(str(row.product_id)) if row.product_id else None,
            channel=row.channel,
            status=row.status,
            created_at=row.created_at,
            created_by=row.created_by,
            segment=cast(Any, row.segment),
        )


@strawberry.type(description="A campaign was created for a segment.")
class CampaignCreated:
    campaign: Campaign = strawberry.field(description="The new campaign.")
    reach: int = strawberry.field(description="Recipients: the segment with marketing consent.")


@strawberry.type(description="Rates are responses or conversions over reach (0 when empty).")
class CampaignResults:
    campaign_id: strawberry.ID = strawberry.field(description="The campaign.")
    reach: int = strawberry.field(description="Recipients in scope who consent to marketing now.")
    responses: int = strawberry.field(description="Recipients who responded.")
    conversions: int = strawberry.field(description="Recipients who bought.")
    response_rate: decimal.Decimal = strawberry.field(description="responses / reach.")
    conversion_rate: decimal.Decimal = strawberry.field(description="conversions / reach.")
    revenue: decimal.Decimal = strawberry.field(description="Revenue of the conversions.")

    @classmethod
    def from_results(cls, r: Results) -> CampaignResults:
        return cls(
            campaign_id=strawberry.ID(str(r.campaign_id)),
            reach=r.reach,
            responses=r.responses,
            conversions=r.conversions,
            response_rate=r.response_rate,
            conversion_rate=r.conversion_rate,
            revenue=r.revenue,
        )


@strawberry.type(description="Responses or conversions were recorded.")
class CampaignRecorded:
    results: CampaignResults = strawberry.field(description="The campaign's results now.")


@strawberry.type(description="One reason to contact a customer soon.")
class CareItem:
    customer_id: strawberry.ID = strawberry.field(description="The customer to contact.")
    owner_id: str | None = strawberry.field(description="The customer's account manager.")
    reason: CareReason = strawberry.field(description="Why the customer is due a contact.")
    due_on: datetime.date = strawberry.field(description="A day of the business's time zone.")
    detail: str = strawberry.field(description="Why, in words (no sealed values).")
    key: str = strawberry.field(
        description="Names the item for its customer: takeCareItem, completeCareItem, "
        "snoozeCareItem."
    )
    task_id: strawberry.ID | None = strawberry.field(description="The item's task, if taken.")
    snoozed_until: datetime.datetime | None = strawberry.field(
        description="When a snoozed item returns; null if not snoozed."
    )


CreateCampaignResult = Annotated[
    CampaignCreated | UserError, strawberry.union("CreateCampaignResult")
]
CampaignRecordResult = Annotated[
    CampaignRecorded | UserError, strawberry.union("CampaignRecordResult")
]


def _segment(value: CampaignSegmentInput) -> Segment:
    if value.name is not None:
        # A segment is re-evaluated by jobs without a caller's purpose: no name lookups.
        raise ValidationError("a campaign segment cannot select by name", field="segment.name")
    return Segment(
        customers=value.to_filter(),
        tag=value.tag,
        bought_category=value.bought_category,
        never_bought_product_id=parse_id(value.never_bought_product_id, "neverBoughtProductId")
        if value.never_bought_product_id
        else None,
    )


async def _results(info: Ctx, campaign_id: uuid.UUID) -> CampaignRecorded:
    ctx = info.context
    results = await ctx.services.campaigns.results(ctx.session, ctx.caller, campaign_id)
    return CampaignRecorded(results=CampaignResults.from_results(results))


async def campaign_by_id(info: Ctx, campaign_id: uuid.UUID) -> Campaign:
    """One campaign (by `campaign` and `node`)."""
    ctx = info.context
    return Campaign.from_row(await ctx.services.campaigns.get(ctx.session, ctx.caller, campaign_id))


@strawberry.type
class CampaignQuery:
    @strawberry.field(description="One campaign.")
    async def campaign(self, info: Ctx, id: strawberry.ID) -> Campaign | None:
        return await campaign_by_id(info, parse_id(id))

    @strawberry.field(description="Reach, response and conversion rates, revenue.")
    async def campaign_results(self, info: Ctx, id: strawberry.ID) -> CampaignResults | None:
        ctx = info.context
        results = await ctx.services.campaigns.results(ctx.session, ctx.caller, parse_id(id))
        return CampaignResults.from_results(results)

    @strawberry.field(
        metadata=cost(weight=50, size=assumed(200)),
        description="Who to contact within `days` and why: the owner's customers (default "
        "the caller) inside the caller's row scope; with `team`, every customer in that "
        "scope (a manager's team queue). Done items leave it; snoozed ones come back.",
    )
    async def care_queue(
        self, info: Ctx, owner_id: str | None = None, days: int = 7, team: bool = False
    ) -> list[CareItem]:
        ctx = info.context
        items = await ctx.services.care.queue(
            ctx.session, ctx.caller, owner_id=owner_id, days=days, team=team
        )
        return [
            CareItem(
                customer_id=strawberry.ID(str(i.customer_id)),
                owner_id=i.owner_id,
                reason=CareReason(i.reason),
                due_on=i.due_on,
                detail=i.detail,
                key=i.key,
                task_id=strawberry.ID(str(i.task.id)) if i.task is not None else None,
                snoozed_until=i.task.snoozed_until if i.task is not None else None,
            )
            for i in items
        ]


@strawberry.type
class CampaignMutation:
    @strawberry.mutation(
        metadata=cost(weight=1000), description="Create a campaign; recipients are chosen at once."
    )
    async def create_campaign(self, info: Ctx, input: CreateCampaignInput) -> CreateCampaignResult:
        ctx = info.context
        created = await run_mutation(
            ctx,
            lambda: ctx.services.campaigns.create(
                ctx.session,
                ctx.caller,
                name=input.name,
                segment=_segment(input.segment),
                product_id=parse_id(input.product_id, "productId") if input.product_id else None,
                channel=input.channel,
            ),
        )
        if isinstance(created, UserError):
            return created
        campaign, reach = created
        return CampaignCreated(campaign=Campaign.from_row(campaign), reach=reach)

    @strawberry.mutation(description="A recipient responded to the campaign.")
    async def record_campaign_response(
        self, info: Ctx, campaign_id: strawberry.ID, customer_id: strawberry.ID
    ) -> CampaignRecordResult:
        ctx = info.context

        async def record() -> uuid.UUID:
            cid = parse_id(campaign_id, "campaignId")
            await ctx.services.campaigns.record_response(
                ctx.session, ctx.caller, cid, parse_id(customer_id, "customerId")
            )
            return cid

        recorded = await run_mutation(ctx, record)
        if isinstance(recorded, UserError):
            return recorded
        return await _results(info, recorded)

    @strawberry.mutation(description="A recipient bought: the order's total is the revenue.")
    async def record_campaign_conversion(
        self,
        info: Ctx,
        campaign_id: strawberry.ID,
        customer_id: strawberry.ID,
        order_id: strawberry.ID,
    ) -> CampaignRecordResult:
        ctx = info.context

        async def record() -> uuid.UUID:
            cid = parse_id(campaign_id, "campaignId")
            await ctx.services.campaigns.record_conversion(
                ctx.session,
                ctx.caller,
                cid,
                parse_id(customer_id, "customerId"),
                parse_id(order_id, "orderId"),
            )
            return cid

        recorded = await run_mutation(ctx, record)
        if isinstance(recorded, UserError):
            return recorded
        return await _results(info, recorded)
