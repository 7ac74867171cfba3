"""Analytics root fields: metrics, segments, churn, co-purchase. Thin: services decide."""

from __future__ import annotations

import datetime
import uuid
from typing import Annotated, Any, cast

import strawberry
from strawberry.types import Info

from schema.context import GraphQLContext
from schema.selection import selected_names
from schema.types.analytics import (
    ChurnModel,
    ChurnRisk,
    CoPurchaseRule,
    Granularity,
    MetricGroupBy,
    Metrics,
    RuleProduct,
    SegmentDimension,
    SegmentShare,
)
from schema.types.common import (
    PageInfo,
    UserError,
    check_page_size,
    decode_cursor,
    encode_cursor,
    parse_id,
)
from schema.types.customer import Customer, domain_fields
from server.errors import ForbiddenError, ValidationError

Ctx = Info[GraphQLContext, None]


def _day(info: Ctx, as_of: datetime.date | None) -> datetime.date:
    return as_of or info.context.services.clock.now().date()


async def _customers(info: Ctx, ids: list[uuid.UUID], *path: str) -> dict[uuid.UUID, Any]:
    """Customer views for ids already scoped by the analytics service, with only the
    selected fields revealed (and audited)."""
    ctx = info.context
    fields = domain_fields(selected_names(info, path))
    return await ctx.services.customers.get_many(ctx.session, ctx.caller, ids, fields)


@strawberry.type(description="A customer at risk of churning, with why.")
class AtRiskCustomer:
    customer: Customer
    risk: ChurnRisk


@strawberry.type
class AtRiskCustomerEdge:
    cursor: str
    node: AtRiskCustomer


@strawberry.type(description="Customers at risk, riskiest first, under the caller's row scope.")
class AtRiskCustomerConnection:
    edges: list[AtRiskCustomerEdge]
    page_info: PageInfo


@strawberry.type(description="A customer likely to buy a product: bought its antecedents.")
class LikelyBuyer:
    customer: Customer
    score: float = strawberry.field(description="Best rule confidence among bought antecedents.")


@strawberry.type
class LikelyBuyerEdge:
    cursor: str
    node: LikelyBuyer


@strawberry.type(description="Likely buyers under the caller's row scope, in customer order.")
class LikelyBuyerConnection:
    edges: list[LikelyBuyerEdge]
    page_info: PageInfo


def _page_info(cursors: list[str], has_next: bool, after: str | None) -> PageInfo:
    return PageInfo(
        has_next_page=has_next,
        has_previous_page=after is not None,
        start_cursor=cursors[0] if cursors else None,
        end_cursor=cursors[-1] if cursors else None,
    )


@strawberry.type
class AnalyticsQuery:
    @strawberry.field(description="KPIs for the days [from, to], the period before, a series.")
    async def metrics(
        self,
        info: Ctx,
        from_: Annotated[datetime.date, strawberry.argument(name="from")],
        to: datetime.date,
        granularity: Granularity | None = None,
        group_by: MetricGroupBy | None = None,
    ) -> Metrics:
        ctx = info.context
        report = await ctx.services.analytics.metrics(
            ctx.session,
            ctx.caller,
            start=from_,
            end=to,
            granularity=granularity.domain() if granularity else None,
            group_by=group_by.domain() if group_by else None,
        )
        return Metrics.of(report)

    @strawberry.field(description="Customers and revenue share per segment, as of a day.")
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

    @strawberry.field(description="The BG/NBD model fitted on purchase histories up to a day.")
    async def churn_model(self, info: Ctx, as_of: datetime.date | None = None) -> ChurnModel:
        ctx = info.context
        model = await ctx.services.analytics.churn_model(ctx.session, ctx.caller, _day(info, as_of))
        return ChurnModel.of(model)

    @strawberry.field(description="Customers whose churn score is at least minScore.")
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
        risks, has_next = await ctx.services.analytics.at_risk_customers(
            ctx.session,
            ctx.caller,
            as_of=_day(info, as_of),
            first=first,
            after=decode_cursor(after),
            min_score=min_score,
        )
        views = await _customers(info, [r.customer_id for r in risks], "edges", "node", "customer")
        edges = [
            AtRiskCustomerEdge(
                cursor=encode_cursor(r.customer_id),
                node=AtRiskCustomer(
                    customer=cast(Customer, views[r.customer_id]), risk=ChurnRisk.of(r)
                ),
            )
            for r in risks
            if r.customer_id in views
        ]
        return AtRiskCustomerConnection(
            edges=edges, page_info=_page_info([e.cursor for e in edges], has_next, after)
        )

    @strawberry.field(description="Products bought together with this one, by lift.")
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

    @strawberry.field(description="Customers who bought this product's antecedents, not it.")
    async def likely_buyers(
        self, info: Ctx, product_id: strawberry.ID, first: int = 20, after: str | None = None
    ) -> LikelyBuyerConnection:
        ctx = info.context
        check_page_size(first, ctx.max_page_size)
        buyers, has_next = await ctx.services.analytics.likely_buyers(
            ctx.session,
            ctx.caller,
            parse_id(product_id, "productId"),
            first=first,
            after=decode_cursor(after),
        )
        views = await _customers(info, [b.customer_id for b in buyers], "edges", "node", "customer")
        edges = [
            LikelyBuyerEdge(
                cursor=encode_cursor(b.customer_id),
                node=LikelyBuyer(customer=cast(Customer, views[b.customer_id]), score=b.score),
            )
            for b in buyers
            if b.customer_id in views
        ]
        return LikelyBuyerConnection(
            edges=edges, page_info=_page_info([e.cursor for e in edges], has_next, after)
        )


@strawberry.type(description="Segments written onto customers.")
class SegmentsRefreshed:
    as_of: datetime.date
    updated: int


RefreshSegmentsResult = Annotated[
    SegmentsRefreshed | UserError, strawberry.union("RefreshSegmentsResult")
]


@strawberry.type
class AnalyticsMutation:
    @strawberry.mutation(description="Write tier, lifecycle and need type onto all customers.")
    async def refresh_segments(
        self, info: Ctx, as_of: datetime.date | None = None
    ) -> RefreshSegmentsResult:
        ctx = info.context
        day = _day(info, as_of)
        try:
            updated = await ctx.services.analytics.refresh_segments(ctx.session, ctx.caller, day)
        except (ValidationError, ForbiddenError) as error:
            return UserError.from_error(error)
        return SegmentsRefreshed(as_of=day, updated=updated)
