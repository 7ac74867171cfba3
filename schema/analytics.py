"""Analytics root fields: metrics, segments, churn, co-purchase. Thin: services decide."""

from __future__ import annotations

import datetime
from typing import Annotated

import strawberry
from strawberry.types import Info

from schema.context import GraphQLContext
from schema.types.analytics import Granularity, MetricGroupBy, Metrics

Ctx = Info[GraphQLContext, None]


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
