"""Types of the analytics surface: KPIs, segments, churn risk, co-purchase rules."""

from __future__ import annotations

import dataclasses
import datetime
import enum
from decimal import Decimal
from typing import Any

import strawberry
from strawberry.types import Info

from schema.cost import assumed, cost, from_fact
from schema.types.enums import CustomerTier, Lifecycle, NeedType, ValueGrade
from server.analytics import churn, segments
from server.analytics import metrics as domain
from server.analytics.repository import Granularity as DomainGranularity
from server.analytics.repository import GroupBy as DomainGroupBy
from server.analytics.repository import SalesDimension as DomainSalesDimension


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
    new_customers: int = strawberry.field(description="Files created in the period.")
    customer_growth_rate: float | None = strawberry.field(
        description="newCustomers over the customers at the period's start."
    )
    high_value_share: float | None = strawberry.field(
        description="Share of live customers in the high tier."
    )
    average_customer_value: Decimal | None = strawberry.field(description="Sales over buyers.")
    retention_rate: float | None = strawberry.field(
        description="Share of the previous period's buyers who bought again."
    )
    churn_rate: float | None = strawberry.field(description="1 - retentionRate.")
    repurchase_rate: float | None = strawberry.field(
        description="Share of buyers with more than one order."
    )
    referral_rate: float | None = strawberry.field(
        description="Share of new customers who were referred."
    )
    customer_lifetime_value: Decimal | None = strawberry.field(
        description="Average value per customer times expected lifetime."
    )
    sales_total: Decimal = strawberry.field(
        description="Sales of orders that count as sold (not cancelled or returned)."
    )
    sales_new_customers: Decimal = strawberry.field(
        description="Sales to customers created in the period."
    )
    sales_existing_customers: Decimal = strawberry.field(
        description="Sales to customers created before it."
    )
    sales_new_products: Decimal = strawberry.field(description="Sales of products marked new.")
    sales_growth: float | None = strawberry.field(
        description="Sales over the previous period's, minus 1."
    )
    gross_margin: float | None = strawberry.field(
        description="(sales - cost) / sales over orders whose cost is known (with items); "
        "orders imported without items are left out, not counted at cost 0."
    )
    sales_without_cost: Decimal = strawberry.field(
        description="Sales of orders whose cost is unknown (imported without items), "
        "left out of grossMargin."
    )
    orders: int = strawberry.field(description="Orders that count as sold.")
    buyers: int = strawberry.field(description="Customers with such an order.")
    purchase_frequency: float | None = strawberry.field(description="orders / buyers.")
    average_order_value: Decimal | None = strawberry.field(description="salesTotal / orders.")
    complaints: int = strawberry.field(description="Complaints opened.")
    complaint_rate: float | None = strawberry.field(description="complaints / buyers.")
    on_time_acknowledgement_rate: float | None = strawberry.field(
        description="Share of complaints acknowledged by their deadline."
    )
    on_time_resolution_rate: float | None = strawberry.field(
        description="Share of complaints resolved by their deadline."
    )
    complaint_satisfaction: float | None = strawberry.field(
        description="Average rating of rated complaints, 1 to 5."
    )
    average_complaint_resolution_seconds: float | None = strawberry.field(
        description="Mean time from opening to resolution of the complaints opened in the "
        "period and resolved (a reopened one counts once resolved again)."
    )
    promised_deliveries: int = strawberry.field(
        description="Orders (not cancelled) whose promised delivery falls in the period and "
        "that were delivered or are past their promise now."
    )
    on_time_delivery_rate: float | None = strawberry.field(
        description="Share of promisedDeliveries delivered (first delivered status) by the "
        "promised time."
    )
    average_first_response_seconds: float | None = strawberry.field(
        description="Mean time to first answer inbound consultations."
    )
    interactions: int = strawberry.field(description="Contacts logged.")
    service_cost: Decimal = strawberry.field(description="Compensation paid on complaints.")

    @classmethod
    def of(cls, k: domain.Kpis) -> Kpis:
        return cls(**dataclasses.asdict(k))


@strawberry.type(description="One bucket of a series: its first day and its KPIs.")
class MetricPoint:
    bucket: datetime.date = strawberry.field(description="The bucket's first day.")
    kpis: Kpis = strawberry.field(description="The bucket's KPIs.")


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
    series: list[MetricPoint] = strawberry.field(
        metadata=cost(size=from_fact("buckets", 0)),
        description="KPIs per bucket of the granularity; empty without one.",
    )

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
    from_: datetime.date = strawberry.field(name="from", description="The first day.")
    to: datetime.date = strawberry.field(description="The last day (inclusive).")
    previous_from: datetime.date = strawberry.field(
        description="The first day of the previous, equally long period."
    )
    total: MetricGroup = strawberry.field(description="Everything in the caller's scope.")
    groups: list[MetricGroup] = strawberry.field(
        metadata=cost(size=from_fact("groups", 0)),
        description="One per value of groupBy; empty without one.",
    )

    @classmethod
    def of(cls, r: domain.MetricsReport) -> Metrics:
        return cls(
            from_=r.start,
            to=r.end,
            previous_from=r.previous_start,
            total=MetricGroup.of(r.total),
            groups=[MetricGroup.of(g) for g in r.groups],
        )


@strawberry.enum(description="What sales are broken down by.")
class SalesDimension(enum.Enum):
    PRODUCT = "product"
    CATEGORY = "category"
    CHANNEL = "channel"
    REGION = "region"

    def domain(self) -> DomainSalesDimension:
        return DomainSalesDimension(self.value)


@strawberry.type(
    description="Sales of one product, category, channel or region in a period; every "
    "figure null when fewer buyers than CUSTOS_METRICS_MIN_CELL bought it (or it is the "
    "next smallest after such a lone cell)."
)
class SalesShare:
    key: str | None = strawberry.field(
        description="SKU, category, channel or region; null for no value (by product or "
        "category: the orders without items, imported with an amount only)."
    )
    label: str | None = strawberry.field(description="The product's name; else the key.")
    suppressed: bool = strawberry.field(description="Too few buyers to show figures.")
    buyers: int | None = strawberry.field(description="Distinct customers who bought.")
    orders: int | None = strawberry.field(description="Sold orders (not cancelled, returned).")
    quantity: int | None = strawberry.field(description="Units sold (by product or category only).")
    sales: Decimal | None = strawberry.field(description="Sales (line totals by product).")
    sales_without_cost: Decimal | None = strawberry.field(
        description="Sales of orders whose cost is unknown, left out of grossMargin."
    )
    gross_margin: float | None = strawberry.field(
        description="(sales - cost) / sales over the sales whose cost is known."
    )

    @classmethod
    def of(cls, s: domain.SalesShare) -> SalesShare:
        return cls(
            key=s.key,
            label=s.label,
            suppressed=s.suppressed,
            buyers=s.buyers,
            orders=s.orders,
            quantity=s.quantity,
            sales=s.sales,
            sales_without_cost=s.sales_without_cost,
            gross_margin=s.gross_margin,
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
    last_order_at: datetime.datetime | None = strawberry.field(
        description="The last sold order, if any."
    )
    orders: int = strawberry.field(description="Sold orders in the last year.")
    spend: Decimal = strawberry.field(description="Spend in the last year.")
    tier: CustomerTier = strawberry.field(description="By the configured tier rule.")
    lifecycle: Lifecycle = strawberry.field(description="Lifecycle stage as of the day.")
    need_type: NeedType = strawberry.field(description="What the customer values most.")
    grade: ValueGrade = strawberry.field(description="By cumulative share of revenue.")

    @classmethod
    def of(cls, s: segments.CustomerSegment) -> CustomerSegment:
        values = dataclasses.asdict(s)
        values.pop("customer_id")
        values["tier"] = CustomerTier(s.tier)
        values["lifecycle"] = Lifecycle(s.lifecycle)
        values["need_type"] = NeedType(s.need_type)
        values["grade"] = ValueGrade(s.grade)
        return cls(**values)


@strawberry.type(description="Customers and revenue (last 365 days) of one segment.")
class SegmentShare:
    segment: str = strawberry.field(
        description="The segment's value (a tier, a lifecycle stage, an RFM cell ...)."
    )
    customers: int = strawberry.field(description="Customers in it.")
    revenue: Decimal = strawberry.field(description="Their revenue in the last 365 days.")
    revenue_share: float | None = strawberry.field(
        description="Their share of all revenue; null when there is none."
    )


@strawberry.type(description="A warning signal behind a churn score, in words.")
class ChurnSignal:
    code: str = strawberry.field(
        description="A stable code for the signal (falling_frequency, ...)."
    )
    weight: float = strawberry.field(description="Its weight in the score.")
    description: str = strawberry.field(description="The signal in words.")


@strawberry.type(description="A retention action the playbook suggests for a churn signal.")
class SuggestedAction:
    signal: str = strawberry.field(description="The churn signal it answers.")
    action: str = strawberry.field(description="The playbook's name for the action.")
    kind: str = strawberry.field(description="The task kind it becomes: call, offer, visit...")
    title: str = strawberry.field(description="The suggested task's title, as it would be planned.")
    due_in_working_days: int = strawberry.field(
        description="Working days from planning to the task's due time."
    )


@strawberry.type(description="Churn risk 0-1: the purchase model combined with warning signals.")
class ChurnRisk:
    score: float = strawberry.field(description="0 (safe) to 1 (gone).")
    probability_alive: float | None = strawberry.field(
        description="BG/NBD P(alive); null without a purchase."
    )
    expected_purchases: float | None = strawberry.field(
        description="Expected purchases in the next 13 weeks."
    )
    signals: list[ChurnSignal] = strawberry.field(
        metadata=cost(size=assumed(6)), description="The warning signals behind the score."
    )

    @strawberry.field(
        metadata=cost(size=assumed(6)),
        description="The retention playbook's actions for these signals "
        "(CUSTOS_RETENTION_PLAYBOOK): planRetention makes them tasks for the owner, "
        "retentionOutcomes counts the customers they won back.",
    )
    def suggested_actions(self, info: Info[Any, None]) -> list[SuggestedAction]:
        retention = info.context.services.retention
        return [
            SuggestedAction(
                signal=signal,
                action=a.action,
                kind=a.kind,
                title=a.title,
                due_in_working_days=a.due_days,
            )
            for signal, a in retention.actions_for([s.code for s in self.signals])
        ]

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
    as_of: datetime.date = strawberry.field(description="The day the model was fitted up to.")
    r: float = strawberry.field(description="Shape of the purchase-rate gamma distribution.")
    alpha: float = strawberry.field(description="Scale of the purchase-rate gamma distribution.")
    a: float = strawberry.field(description="First shape of the dropout beta distribution.")
    b: float = strawberry.field(description="Second shape of the dropout beta distribution.")
    time_unit: str = strawberry.field(description="The unit of alpha (a rate scale): week.")
    log_likelihood: float = strawberry.field(description="Log-likelihood of the fit.")
    customers: int = strawberry.field(description="Purchase histories fitted.")

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
    id: strawberry.ID = strawberry.field(description="The product's id.")
    sku: str = strawberry.field(description="Its SKU.")
    name: str = strawberry.field(description="Its name.")
    category: str = strawberry.field(description="Its category.")


@strawberry.type(description="Association rule: orders with the product also hold this one.")
class CoPurchaseRule:
    product: RuleProduct = strawberry.field(description="The product bought with it.")
    orders_with_both: int = strawberry.field(description="Orders holding both.")
    support: float = strawberry.field(description="Share of all orders holding both.")
    confidence: float = strawberry.field(description="Share of the product's orders holding it.")
    lift: float = strawberry.field(description="Confidence over this product's own share.")
