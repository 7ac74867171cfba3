"""Types of the analytics surface: KPIs, segments, churn risk, co-purchase rules."""

from __future__ import annotations

import dataclasses
import datetime
import enum
from decimal import Decimal

import strawberry

from schema.cost import assumed, cost, from_fact
from server.analytics import churn, segments
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
    suppressed: bool = strawberry.field(
        description="A group with fewer customers than CUSTOS_METRICS_MIN_CELL (or the "
        "next smallest, when it alone would be): current and previous are null, series "
        "empty. The total is never suppressed."
    )
    current: Kpis | None = strawberry.field(description="Null when the group is suppressed.")
    previous: Kpis | None = strawberry.field(
        description="The equally long period just before; null when suppressed."
    )
    series: list[MetricPoint] = strawberry.field(metadata=cost(size=from_fact("buckets", 0)))

    @classmethod
    def of(cls, g: domain.MetricGroup) -> MetricGroup:
        return cls(
            key=g.key,
            suppressed=g.suppressed,
            current=Kpis.of(g.current) if g.current is not None else None,
            previous=Kpis.of(g.previous) if g.previous is not None else None,
            series=[MetricPoint(bucket=p.bucket, kpis=Kpis.of(p.kpis)) for p in g.series],
        )


@strawberry.type(description="KPIs over [from, to] with the previous period and a series.")
class Metrics:
    from_: datetime.date = strawberry.field(name="from")
    to: datetime.date
    previous_from: datetime.date
    total: MetricGroup
    groups: list[MetricGroup] = strawberry.field(metadata=cost(size=from_fact("groups", 0)))

    @classmethod
    def of(cls, r: domain.MetricsReport) -> Metrics:
        return cls(
            from_=r.start,
            to=r.end,
            previous_from=r.previous_start,
            total=MetricGroup.of(r.total),
            groups=[MetricGroup.of(g) for g in r.groups],
        )


@strawberry.enum(description="Segment dimension of a breakdown.")
class SegmentDimension(enum.Enum):
    TIER = "tier"
    LIFECYCLE = "lifecycle"
    NEED_TYPE = "need_type"
    GRADE = "grade"
    RFM = "rfm"

    def domain(self) -> segments.SegmentDimension:
        return segments.SegmentDimension(self.value)


@strawberry.type(description="A customer's segments as of a day.")
class CustomerSegment:
    recency: int | None = strawberry.field(description="RFM recency quintile, 5 = most recent.")
    frequency: int | None = strawberry.field(description="RFM frequency quintile, 5 = most.")
    monetary: int | None = strawberry.field(description="RFM monetary quintile, 5 = most.")
    last_order_at: datetime.datetime | None
    orders: int
    spend: Decimal
    tier: str = strawberry.field(description="high, mid or low (the configured tier rule).")
    lifecycle: str = strawberry.field(description="new, active, at_risk, churned or won_back.")
    need_type: str = strawberry.field(description="quality, value or service.")
    grade: str = strawberry.field(description="A, B or C by cumulative share of revenue.")

    @classmethod
    def of(cls, s: segments.CustomerSegment) -> CustomerSegment:
        values = dataclasses.asdict(s)
        values.pop("customer_id")
        return cls(**values)


@strawberry.type(description="Customers and revenue (last 365 days) of one segment.")
class SegmentShare:
    segment: str
    customers: int
    revenue: Decimal
    revenue_share: float | None


@strawberry.type(description="A warning signal behind a churn score, in words.")
class ChurnSignal:
    code: str
    weight: float
    description: str


@strawberry.type(description="Churn risk 0-1: the purchase model combined with warning signals.")
class ChurnRisk:
    score: float
    probability_alive: float | None = strawberry.field(
        description="BG/NBD P(alive); null without a purchase."
    )
    expected_purchases: float | None = strawberry.field(
        description="Expected purchases in the next 13 weeks."
    )
    signals: list[ChurnSignal] = strawberry.field(metadata=cost(size=assumed(6)))

    @classmethod
    def of(cls, r: churn.ChurnRisk) -> ChurnRisk:
        return cls(
            score=r.score,
            probability_alive=r.probability_alive,
            expected_purchases=r.expected_purchases,
            signals=[
                ChurnSignal(code=s.code, weight=s.weight, description=s.description)
                for s in r.signals
            ],
        )


@strawberry.type(description="The fitted BG/NBD model (Fader, Hardie & Lee 2005).")
class ChurnModel:
    as_of: datetime.date
    r: float
    alpha: float
    a: float
    b: float
    time_unit: str = strawberry.field(description="The unit of alpha (a rate scale): week.")
    log_likelihood: float
    customers: int

    @classmethod
    def of(cls, m: churn.ChurnModel) -> ChurnModel:
        p = m.parameters
        return cls(
            as_of=m.as_of,
            r=p.r,
            alpha=p.alpha,
            a=p.a,
            b=p.b,
            time_unit=m.time_unit,
            log_likelihood=p.log_likelihood,
            customers=p.customers,
        )


@strawberry.type(description="A product in a co-purchase rule.")
class RuleProduct:
    id: strawberry.ID
    sku: str
    name: str
    category: str


@strawberry.type(description="Association rule: orders with the product also hold this one.")
class CoPurchaseRule:
    product: RuleProduct
    orders_with_both: int
    support: float = strawberry.field(description="Share of all orders holding both.")
    confidence: float = strawberry.field(description="Share of the product's orders holding it.")
    lift: float = strawberry.field(description="Confidence over this product's own share.")
