"""Analytics root fields: metrics, segments, churn, co-purchase. Thin: services decide."""

from __future__ import annotations

import datetime
import uuid
from typing import Annotated, Any, cast

import strawberry
from strawberry.types import Info

from schema.context import GraphQLContext
from schema.cost import Arguments, assumed, cost, counted, days_between, paged
from schema.mutations import run_mutation
from schema.paging import Connection, check_page_size, connection, id_cursor
from schema.selection import selected_names
from schema.types.analytics import (
    ChurnModel,
    ChurnRisk,
    CoPurchaseRule,
    Granularity,
    MetricGroupBy,
    Metrics,
    RuleProduct,
    SalesDimension,
    SalesShare,
    SegmentDimension,
    SegmentShare,
)
from schema.types.common import UserError, parse_id
from schema.types.customer import Customer, domain_fields
from server.analytics.repository import OrderChannels
from server.errors import EXPECTED_ERRORS, ForbiddenError

Ctx = Info[GraphQLContext, None]
AT_RISK_CURSORS = id_cursor("at-risk-customer")
LIKELY_BUYER_CURSORS = id_cursor("likely-buyer")


CHANNELS = "Count only orders of these channels (order figures; customers are not filtered)."
EXCLUDE_CHANNELS = 'Leave out orders of these channels (e.g. "import").'


def _channels(include: list[str] | None, exclude: list[str] | None) -> OrderChannels | None:
    if include is None and not exclude:
        return None
    return OrderChannels(tuple(include) if include is not None else None, tuple(exclude or ()))


def _day(info: Ctx, as_of: datetime.date | None) -> datetime.date:
    return as_of or info.context.services.clock.now().date()


async def _customers(info: Ctx, ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
    """Customer views for a connection's nodes, ids already scoped by the analytics
    service, with only the selected fields revealed (and audited)."""
    ctx = info.context
    fields = domain_fields(
        selected_names(info, ("edges", "node", "customer"), ("nodes", "customer"))
    )
    return await ctx.services.customers.get_many(ctx.session, ctx.caller, ids, fields)


@strawberry.type(description="A customer at risk of churning, with why.")
class AtRiskCustomer:
    customer: Customer = strawberry.field(description="The customer.")
    risk: ChurnRisk = strawberry.field(description="Its churn risk.")


@strawberry.type(description="Customers at risk, riskiest first, under the caller's row scope.")
class AtRiskCustomerConnection(Connection[AtRiskCustomer]):
    pass


@strawberry.type(description="A customer likely to buy a product: bought its antecedents.")
class LikelyBuyer:
    customer: Customer = strawberry.field(description="The customer.")
    score: float = strawberry.field(description="Best rule confidence among bought antecedents.")


@strawberry.type(description="Likely buyers under the caller's row scope, in customer order.")
class LikelyBuyerConnection(Connection[LikelyBuyer]):
    pass


# A metrics report computes every (bucket, group) of the range and of the period before
# it, whatever the query selects: that is its weight. Groups are counted as
# METRIC_GROUPS (regions, industries, owners: tens), buckets from the range.
METRIC_GROUPS = 30
_BUCKET_DAYS = {"DAY": 1, "WEEK": 7, "MONTH": 30}


def metrics_facts(arguments: Arguments) -> dict[str, int]:
    days = days_between(arguments.get("from"), arguments.get("to"))
    width = _BUCKET_DAYS.get(str(arguments.get("granularity")))
    return {
        "buckets": -(-days // width) + 1 if width else 0,
        "groups": METRIC_GROUPS if arguments.get("groupBy") else 0,
    }


def metrics_work(arguments: Arguments) -> int:
    facts = metrics_facts(arguments)
    # About 5 units per (bucket, group) key, for the range and for the period before.
    return 100 + 10 * max(facts["buckets"], 1) * (facts["groups"] + 1)


@strawberry.type
class AnalyticsQuery:
    @strawberry.field(
        metadata=cost(weight=metrics_work, facts=metrics_facts),
        description="KPIs for the days [from, to], the period before, a series.",
    )
    async def metrics(
        self,
        info: Ctx,
        from_: Annotated[datetime.date, strawberry.argument(name="from")],
        to: datetime.date,
        granularity: Granularity | None = None,
        group_by: MetricGroupBy | None = None,
        channels: Annotated[list[str] | None, strawberry.argument(description=CHANNELS)] = None,
        exclude_channels: Annotated[
            list[str] | None, strawberry.argument(description=EXCLUDE_CHANNELS)
        ] = None,
    ) -> Metrics:
        ctx = info.context
        report = await ctx.services.analytics.metrics(
            ctx.session,
            ctx.caller,
            start=from_,
            end=to,
            granularity=granularity.domain() if granularity else None,
            group_by=group_by.domain() if group_by else None,
            channels=_channels(channels, exclude_channels),
            now=ctx.services.clock.now(),
        )
        return Metrics.of(report)

    @strawberry.field(
        metadata=cost(weight=1000, size=counted()),
        description="Sales per product, category, channel or region over the business "
        "days [from, to], largest first, under the caller's row scope.",
    )
    async def sales_breakdown(
        self,
        info: Ctx,
        from_: Annotated[datetime.date, strawberry.argument(name="from")],
        to: datetime.date,
        by: SalesDimension,
        first: int = 100,
        channels: Annotated[list[str] | None, strawberry.argument(description=CHANNELS)] = None,
        exclude_channels: Annotated[
            list[str] | None, strawberry.argument(description=EXCLUDE_CHANNELS)
        ] = None,
    ) -> list[SalesShare]:
        ctx = info.context
        check_page_size(first, ctx.max_page_size)
        shares = await ctx.services.analytics.sales_breakdown(
            ctx.session,
            ctx.caller,
            start=from_,
            end=to,
            by=by.domain(),
            channels=_channels(channels, exclude_channels),
        )
        return [SalesShare.of(s) for s in shares[:first]]

    @strawberry.field(
        metadata=cost(weight=2000, size=assumed(125)),
        description="Customers and revenue share per segment, as of a day.",
    )
    async def segments(
        self, info: Ctx, by: SegmentDimension, as_of: datetime.date | None = None
    ) -> list[SegmentShare]:
        ctx = info.context
        shares = await ctx.services.analytics.segment_breakdown(
            ctx.session, ctx.caller, as_of=_day(info, as_of), by=by.domain()
        )
        return [
            SegmentShare(
                segment=s.segment,
                customers=s.customers,
                revenue=s.revenue,
                revenue_share=s.revenue_share,
            )
            for s in shares
        ]

    @strawberry.field(
        metadata=cost(weight=10_000),
        description="The BG/NBD model fitted on purchase histories up to a day.",
    )
    async def churn_model(self, info: Ctx, as_of: datetime.date | None = None) -> ChurnModel:
        ctx = info.context
        model = await ctx.services.analytics.churn_model(ctx.session, ctx.caller, _day(info, as_of))
        return ChurnModel.of(model)

    @strawberry.field(
        metadata=paged(weight=10_000),
        description="Customers whose churn score is at least minScore.",
    )
    async def at_risk_customers(
        self,
        info: Ctx,
        first: int = 20,
        after: str | None = None,
        min_score: float = 0.5,
        as_of: datetime.date | None = None,
    ) -> AtRiskCustomerConnection:
        ctx = info.context
        check_page_size(first, ctx.max_page_size)
        page = await ctx.services.analytics.at_risk_customers(
            ctx.session,
            ctx.caller,
            as_of=_day(info, as_of),
            first=first,
            after=AT_RISK_CURSORS.decode(after),
            min_score=min_score,
        )
        ids = [r.customer_id for r in page.items]
        views = await _customers(info, ids)
        shown = page.with_items([r for r in page.items if r.customer_id in views])
        return connection(
            AtRiskCustomerConnection,
            shown,
            after=after,
            cursor=lambda r: AT_RISK_CURSORS.encode(r.customer_id),
            node=lambda r: AtRiskCustomer(
                customer=cast(Customer, views[r.customer_id]), risk=ChurnRisk.of(r)
            ),
        )

    @strawberry.field(
        metadata=cost(weight=500, size=counted()),
        description="Products bought together with this one, by lift.",
    )
    async def frequently_bought_with(
        self, info: Ctx, product_id: strawberry.ID, first: int = 10
    ) -> list[CoPurchaseRule]:
        ctx = info.context
        check_page_size(first, ctx.max_page_size)
        rules = await ctx.services.analytics.frequently_bought_with(
            ctx.session, ctx.caller, parse_id(product_id, "productId"), first
        )
        products = await ctx.services.analytics.products(ctx.session, [r.product_id for r in rules])
        return [
            CoPurchaseRule(
                product=RuleProduct(
                    id=strawberry.ID(str(r.product_id)),
                    sku=products[r.product_id].sku,
                    name=products[r.product_id].name,
                    category=products[r.product_id].category,
                ),
                orders_with_both=r.orders_with_both,
                support=r.support,
                confidence=r.confidence,
                lift=r.lift,
            )
            for r in rules
        ]

    @strawberry.field(
        metadata=paged(weight=2000),
        description="Customers who bought this product's antecedents, not it.",
    )
    async def likely_buyers(
        self, info: Ctx, product_id: strawberry.ID, first: int = 20, after: str | None = None
    ) -> LikelyBuyerConnection:
        ctx = info.context
        check_page_size(first, ctx.max_page_size)
        page = await ctx.services.analytics.likely_buyers(
            ctx.session,
            ctx.caller,
            parse_id(product_id, "productId"),
            first=first,
            after=LIKELY_BUYER_CURSORS.decode(after),
        )
        ids = [b.customer_id for b in page.items]
        views = await _customers(info, ids)
        shown = page.with_items([b for b in page.items if b.customer_id in views])
        return connection(
            LikelyBuyerConnection,
            shown,
            after=after,
            cursor=lambda b: LIKELY_BUYER_CURSORS.encode(b.customer_id),
            node=lambda b: LikelyBuyer(
                customer=cast(Customer, views[b.customer_id]), score=b.score
            ),
        )


@strawberry.type(description="Segments written onto customers.")
class SegmentsRefreshed:
    as_of: datetime.date = strawberry.field(description="The day segmented as of.")
    updated: int = strawberry.field(description="Files whose segment changed.")


RefreshSegmentsResult = Annotated[
    SegmentsRefreshed | UserError, strawberry.union("RefreshSegmentsResult")
]


@strawberry.type
class AnalyticsMutation:
    @strawberry.mutation(
        metadata=cost(weight=20_000),
        description="Write tier, lifecycle and need type onto all customers.",
    )
    async def refresh_segments(
        self, info: Ctx, as_of: datetime.date | None = None
    ) -> RefreshSegmentsResult:
        ctx = info.context
        day = _day(info, as_of)
        updated = await run_mutation(
            ctx,
            lambda: ctx.services.analytics.refresh_segments(ctx.session, ctx.caller, day),
            # Published before the rule: a caller without segment/manage gets a
            # UserError FORBIDDEN here, not an error at the path.
            expected=(*EXPECTED_ERRORS, ForbiddenError),
        )
        if isinstance(updated, UserError):
            return updated
        return SegmentsRefreshed(as_of=day, updated=updated)
