"""Types of the analytics surface: KPIs, segments, churn risk, co-purchase rules."""

from __future__ import annotations

import dataclasses
import datetime
import enum
from decimal import Decimal

import strawberry

from server.analytics import metrics as domain
from server.analytics.repository import Granularity as DomainGranularity
from server.analytics.repository import GroupBy as DomainGroupBy



@strawberry.enum(description="Width of a time-series bucket (weeks start on Monday, UTC).")
class Granularity(enum.Enum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"

    def domain(self) -> DomainGranularity:
        return DomainGranularity(self.value)


@strawberry.enum(description="Customer attribute to break metrics down by.")
class MetricGroupBy(enum.Enum):
    REGION = "region"
    INDUSTRY = "industry"
    TIER = "tier"
    OWNER = "owner_id"

    def domain(self) -> DomainGroupBy:
        return DomainGroupBy(self.value)


@strawberry.type(description="KPIs of one period; a rate is null when its denominator is 0.")
class Kpis:
    customers_total: int = strawberry.field(description="Live customers at the period's end.")
    new_customers: int
    customer_growth_rate: float | None
    high_value_share: float | None
    average_customer_value: Decimal | None
    retention_rate: float | None
    churn_rate: float | None
    repurchase_rate: float | None
    referral_rate: float | None
    customer_lifetime_value: Decimal | None
    sales_total: Decimal
    sales_new_customers: Decimal
    sales_existing_customers: Decimal
    sales_new_products: Decimal
    sales_growth: float | None
    gross_margin: float | None
    orders: int
    buyers: int
    purchase_frequency: float | None
    average_order_value: Decimal | None
    complaints: int
    complaint_rate: float | None
    on_time_acknowledgement_rate: float | None
    on_time_resolution_rate: float | None
    complaint_satisfaction: float | None
    average_first_response_seconds: float | None
    interactions: int
    service_cost: Decimal

    @classmethod
    def of(cls, k: domain.Kpis) -> Kpis:
        return cls(**dataclasses.asdict(k))


@strawberry.type(description="One bucket of a series: its first day and its KPIs.")
class MetricPoint:
    bucket: datetime.date
    kpis: Kpis


@strawberry.type(description="KPIs of a group (or of everything): range, previous period, series.")
class MetricGroup:
    key: str | None = strawberry.field(description="The group's value; null for no value.")
    current: Kpis
    previous: Kpis = strawberry.field(description="The equally long period just before.")
    series: list[MetricPoint]

    @classmethod
    def of(cls, g: domain.MetricGroup) -> MetricGroup:
        return cls(
            key=g.key,
            current=Kpis.of(g.current),
            previous=Kpis.of(g.previous),
            series=[MetricPoint(bucket=p.bucket, kpis=Kpis.of(p.kpis)) for p in g.series],
        )


@strawberry.type(description="KPIs over [from, to] with the previous period and a series.")
class Metrics:
    from_: datetime.date = strawberry.field(name="from")
    to: datetime.date
    previous_from: datetime.date
    total: MetricGroup
    groups: list[MetricGroup]

    @classmethod
    def of(cls, r: domain.MetricsReport) -> Metrics:
        return cls(
            from_=r.start,
            to=r.end,
            previous_from=r.previous_start,
            total=MetricGroup.of(r.total),
            groups=[MetricGroup.of(g) for g in r.groups],
        )
