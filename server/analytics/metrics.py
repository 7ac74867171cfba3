"""Key performance indicators over a date range, as a time series and per customer group.

The repository returns aggregate rows keyed by (bucket, group); this module only combines
those sums into rates. A rate whose denominator is zero is `None` (unknown), never 0.

A group with fewer than `min_cell` customers is suppressed: its key stays, its KPIs and
series do not (`MetricGroup.suppressed`). When that leaves exactly one group suppressed,
the next smallest is suppressed too, so the total minus the others does not give it back.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from server.analytics.repository import (
    AnalyticsRepository,
    Granularity,
    GroupBy,
    Keys,
    OrderChannels,
    SalesDimension,
    Window,
)
from server.errors import ValidationError

CENT = Decimal("0.01")
MAX_SERIES_POINTS = 1000


def _money(value: Any) -> Decimal:
    return Decimal(value or 0).quantize(CENT)


def _ratio(numerator: float | Decimal, denominator: float | Decimal) -> float | None:
    return float(numerator) / float(denominator) if denominator else None


def _money_ratio(numerator: Decimal, denominator: float | Decimal | int) -> Decimal | None:
    return (numerator / Decimal(denominator)).quantize(CENT) if denominator else None


@dataclass
class Sums:
    """Everything counted for one (bucket, group) key."""

    customers_total: int = 0
    customers_start: int = 0
    new_customers: int = 0
    referred_customers: int = 0
    high_value: int = 0
    orders: int = 0
    buyers: int = 0
    repeat_buyers: int = 0
    sales: Decimal = Decimal(0)
    # Sales of orders whose cost is known (with items), and that cost: the margin's base.
    costed_sales: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    new_customer_sales: Decimal = Decimal(0)
    new_product_sales: Decimal = Decimal(0)
    retention_base: int = 0
    retained: int = 0
    complaints: int = 0
    ack_due: int = 0
    ack_on_time: int = 0
    resolve_due: int = 0
    resolved_on_time: int = 0
    rated: int = 0
    satisfied: int = 0
    resolved: int = 0
    resolution_days: float = 0.0
    promised: int = 0
    delivered_on_time: int = 0
    interactions: int = 0
    answered: int = 0
    wait_days: float = 0.0


@dataclass(frozen=True, slots=True)
class Kpis:
    customers_total: int
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
    sales_without_cost: Decimal
    orders: int
    buyers: int
    purchase_frequency: float | None
    average_order_value: Decimal | None
    complaints: int
    complaint_rate: float | None
    on_time_acknowledgement_rate: float | None
    on_time_resolution_rate: float | None
    complaint_satisfaction: float | None
    average_complaint_resolution_seconds: float | None
    promised_deliveries: int
    on_time_delivery_rate: float | None
    average_first_response_seconds: float | None
    interactions: int
    service_cost: Decimal


def kpis(s: Sums, previous_sales: Decimal | None, cost_per_interaction: Decimal) -> Kpis:
    retention = _ratio(s.retained, s.retention_base)
    churn = None if retention is None else 1.0 - retention
    # Orders of unknown cost (imported without items) are left out of the margin, not
    # counted at cost 0.
    margin = _ratio(s.costed_sales - s.cost, s.costed_sales)
    average_value = _money_ratio(s.sales, s.buyers)
    # Lifetime value: a buyer's value per period times margin, over the expected number
    # of periods a buyer stays (1 / churn rate).
    clv = (
        (average_value * Decimal(str(margin)) / Decimal(str(churn))).quantize(CENT)
        if average_value is not None and margin is not None and churn
        else None
    )
    return Kpis(
        customers_total=s.customers_total,
        new_customers=s.new_customers,
        customer_growth_rate=_ratio(s.new_customers, s.customers_start),
        high_value_share=_ratio(s.high_value, s.customers_total),
        average_customer_value=average_value,
        retention_rate=retention,
        churn_rate=churn,
        repurchase_rate=_ratio(s.repeat_buyers, s.buyers),
        referral_rate=_ratio(s.referred_customers, s.new_customers),
        customer_lifetime_value=clv,
        sales_total=_money(s.sales),
        sales_new_customers=_money(s.new_customer_sales),
        sales_existing_customers=_money(s.sales - s.new_customer_sales),
        sales_new_products=_money(s.new_product_sales),
        sales_growth=(
            _ratio(s.sales - previous_sales, previous_sales) if previous_sales is not None else None
        ),
        gross_margin=margin,
        sales_without_cost=_money(s.sales - s.costed_sales),
        orders=s.orders,
        buyers=s.buyers,
        purchase_frequency=_ratio(s.orders, s.buyers),
        average_order_value=_money_ratio(s.sales, s.orders),
        complaints=s.complaints,
        complaint_rate=_ratio(s.complaints, s.orders),
        on_time_acknowledgement_rate=_ratio(s.ack_on_time, s.ack_due),
        on_time_resolution_rate=_ratio(s.resolved_on_time, s.resolve_due),
        complaint_satisfaction=_ratio(s.satisfied, s.rated),
        average_complaint_resolution_seconds=(
            round(s.resolution_days * 86400.0 / s.resolved, 3) if s.resolved else None
        ),
        promised_deliveries=s.promised,
        on_time_delivery_rate=_ratio(s.delivered_on_time, s.promised),
        # Millisecond precision: SQLite's julian-day arithmetic carries float noise below it.
        average_first_response_seconds=(
            round(s.wait_days * 86400.0 / s.answered, 3) if s.answered else None
        ),
        interactions=s.interactions,
        service_cost=_money(cost_per_interaction * s.interactions),
    )


@dataclass(frozen=True, slots=True)
class MetricPoint:
    bucket: date
    kpis: Kpis


@dataclass(frozen=True, slots=True)
class MetricGroup:
    key: str | None
    current: Kpis | None
    """None when the group is suppressed (fewer customers than the minimum cell size)."""
    previous: Kpis | None
    series: list[MetricPoint] = field(default_factory=list)

    @property
    def suppressed(self) -> bool:
        return self.current is None

    def suppress(self) -> MetricGroup:
        return MetricGroup(self.key, None, None, [])


def suppress_small(groups: list[MetricGroup], min_cell: int) -> list[MetricGroup]:
    """Groups with fewer than `min_cell` customers (at the range's end) lose their KPIs;
    a lone suppressed group takes the next smallest with it (the total is not suppressed,
    so one missing group could be computed back from it)."""
    if min_cell <= 1:
        return groups
    size = {id(g): g.current.customers_total for g in groups if g.current is not None}
    small = {k for k, n in size.items() if n < min_cell}
    if len(small) == 1 and len(size) > 1:
        small.add(min((k for k in size if k not in small), key=lambda k: size[k]))
    return [g.suppress() if id(g) in small else g for g in groups]


@dataclass(frozen=True, slots=True)
class MetricsReport:
    start: date
    end: date
    previous_start: date
    granularity: Granularity | None
    group_by: GroupBy | None
    total: MetricGroup
    groups: list[MetricGroup]


def day_start(day: date, timezone: str = "UTC") -> datetime:
    """The instant (UTC) `day` begins in the business's time zone."""
    return datetime.combine(day, time(), tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def bucket_start(day: date, granularity: Granularity) -> date:
    if granularity is Granularity.DAY:
        return day
    if granularity is Granularity.WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def next_bucket(day: date, granularity: Granularity) -> date:
    if granularity is Granularity.DAY:
        return day + timedelta(days=1)
    if granularity is Granularity.WEEK:
        return day + timedelta(days=7)
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def buckets(first: date, last: date, granularity: Granularity) -> list[date]:
    """Bucket starts covering [first, last] (whole buckets)."""
    out: list[date] = []
    day = bucket_start(first, granularity)
    while day <= last:
        out.append(day)
        day = next_bucket(day, granularity)
    return out


Key = tuple[str, str | None]


async def _collect(
    repo: AnalyticsRepository, window: Window, keys: Keys, now: datetime
) -> dict[Key, Sums]:
    """All aggregates for a window, keyed by (bucket label, group)."""
    sums: dict[Key, Sums] = defaultdict(Sums)

    def key(row: Any) -> Key:
        return (str(row.bucket or ""), row.grp if keys.group_by else None)

    for row in await repo.new_customers(window, keys):
        s = sums[key(row)]
        s.new_customers, s.referred_customers, s.high_value = row.new, row.referred, row.high
    for row in await repo.sales(window, keys):
        s = sums[key(row)]
        s.orders, s.buyers = row.orders, row.buyers
        s.sales, s.cost = Decimal(row.sales or 0), Decimal(row.cost or 0)
        s.costed_sales = Decimal(row.costed_sales or 0)
        s.new_customer_sales = Decimal(row.new_sales or 0)
    for row in await repo.repeat_buyers(window, keys):
        sums[key(row)].repeat_buyers = row.repeat
    for row in await repo.new_product_sales(window, keys):
        sums[key(row)].new_product_sales = Decimal(row.sales or 0)
    for row in await repo.complaints(window, keys):
        s = sums[key(row)]
        s.complaints, s.ack_due, s.ack_on_time = row.complaints, row.ack_due, row.ack_on_time
        s.resolve_due, s.resolved_on_time = row.resolve_due, row.resolved_on_time
        s.rated, s.satisfied = row.rated, row.satisfied
        s.resolved, s.resolution_days = row.resolved, float(row.resolution_days or 0.0)
    for row in await repo.deliveries(window, keys, now):
        s = sums[key(row)]
        s.promised, s.delivered_on_time = row.promised, row.on_time
    for row in await repo.interactions(window, keys):
        s = sums[key(row)]
        s.interactions, s.answered = row.interactions, row.answered
        s.wait_days = float(row.wait_days or 0.0)
    for row in await repo.retention(window, keys):
        s = sums[key(row)]
        s.retention_base, s.retained = row.base, row.kept
    return sums


async def _customer_base(
    repo: AnalyticsRepository, instant: datetime, keys: Keys
) -> dict[str | None, tuple[int, int]]:
    rows = await repo.customers_before(instant, keys)
    return {(r.grp if keys.group_by else None): (r.total, r.high) for r in rows}


@dataclass
class _Collected:
    """Every aggregate a report needs, keyed by (bucket, group)."""

    current: dict[Key, Sums]
    previous: dict[Key, Sums]
    base_current: dict[str | None, tuple[int, int]]
    base_previous: dict[str | None, tuple[int, int]]
    series: dict[Key, Sums]
    base_series: dict[str | None, tuple[int, int]]
    labels: list[date]

    def merged(self) -> _Collected:
        """Totals over all groups. Every customer is in exactly one group, so even the
        distinct-customer counts add up: one grouped pass serves both."""

        def sums(by_key: dict[Key, Sums]) -> dict[Key, Sums]:
            out: dict[Key, Sums] = defaultdict(Sums)
            for (bucket, _), value in by_key.items():
                target = out[(bucket, None)]
                for f in fields(Sums):
                    setattr(target, f.name, getattr(target, f.name) + getattr(value, f.name))
            return dict(out)

        def base(by_group: dict[str | None, tuple[int, int]]) -> dict[str | None, tuple[int, int]]:
            return {
                None: (sum(t for t, _ in by_group.values()), sum(h for _, h in by_group.values()))
            }

        return _Collected(
            sums(self.current),
            sums(self.previous),
            base(self.base_current),
            base(self.base_previous),
            sums(self.series),
            base(self.base_series),
            self.labels,
        )


class MetricsCalculator:
    def __init__(
        self, cost_per_interaction: Decimal, timezone: str = "UTC", *, min_cell: int = 1
    ) -> None:
        self.cost_per_interaction = cost_per_interaction
        # Days, weeks and months (periods and buckets) are the business's, in this zone.
        self.timezone = timezone
        self.min_cell = min_cell

    async def report(
        self,
        session: AsyncSession,
        *,
        start: date,
        end: date,
        granularity: Granularity | None,
        group_by: GroupBy | None,
        population: ColumnElement[bool] | None = None,
        repo: AnalyticsRepository | None = None,
        channels: OrderChannels | None = None,
        now: datetime | None = None,
    ) -> MetricsReport:
        """KPIs for the days [start, end] (inclusive) and the equally long period before,
        over the customers of `population` (or of `repo`'s), order figures over the
        orders of `channels`. `now` decides which promised deliveries are due (default:
        every one whose promise has passed by the end of the range)."""
        if end < start:
            raise ValidationError("`to` must not be before `from`")
        if repo is None:
            if population is None:
                raise ValueError("a report needs the population of customers it counts")
            repo = AnalyticsRepository(
                session, self.timezone, population=population, channels=channels
            )
        days = (end - start).days + 1
        tz = self.timezone
        current = Window(day_start(start, tz), day_start(end + timedelta(days=1), tz))
        now = now or current.end
        previous_start = start - timedelta(days=days)
        previous = Window(day_start(previous_start, tz), current.start)
        range_keys = Keys(None, group_by)
        labels: list[date] = []
        if granularity is not None:
            labels = buckets(start, end, granularity)
            if len(labels) > MAX_SERIES_POINTS:
                raise ValidationError(
                    f"the series would have {len(labels)} points; at most {MAX_SERIES_POINTS}"
                )
            # One bucket more at the front, so the first point has a bucket to compare with.
            labels.insert(0, bucket_start(labels[0] - timedelta(days=1), granularity))

        series: dict[Key, Sums] = {}
        base_series: dict[str | None, tuple[int, int]] = {}
        if granularity is not None:
            series_window = Window(
                day_start(labels[0], tz), day_start(next_bucket(labels[-1], granularity), tz)
            )
            keys = Keys(granularity, group_by)
            series = await _collect(repo, series_window, keys, now)
            base_series = await _customer_base(repo, series_window.start, keys)
        data = _Collected(
            await _collect(repo, current, range_keys, now),
            await _collect(repo, previous, range_keys, now),
            await _customer_base(repo, current.start, range_keys),
            await _customer_base(repo, previous.start, range_keys),
            series,
            base_series,
            labels,
        )
        if group_by is None:
            (total,) = self._build([None], data)
            return MetricsReport(start, end, previous_start, granularity, None, total, [])
        groups = sorted(
            {k[1] for k in (*data.current, *data.previous)}
            | set(data.base_current)
            | set(data.base_previous),
            key=lambda g: (g is None, g or ""),
        )
        (total,) = self._build([None], data.merged())
        built = suppress_small(self._build(groups, data), self.min_cell)
        return MetricsReport(start, end, previous_start, granularity, group_by, total, built)

    def _build(self, groups: list[str | None], data: _Collected) -> list[MetricGroup]:
        out: list[MetricGroup] = []
        for g in groups:
            points: list[MetricPoint] = []
            total, high = data.base_series.get(g, (0, 0))
            prior_sales: Decimal | None = None
            for index, label in enumerate(data.labels):
                s = data.series.get((label.isoformat(), g), Sums())
                s.customers_start = total
                total += s.new_customers
                high += s.high_value
                s.customers_total, s.high_value = total, high
                if index:
                    points.append(
                        MetricPoint(label, kpis(s, prior_sales, self.cost_per_interaction))
                    )
                prior_sales = s.sales
            p = self._with_base(
                data.previous.get(("", g), Sums()), data.base_previous.get(g, (0, 0))
            )
            c = self._with_base(data.current.get(("", g), Sums()), data.base_current.get(g, (0, 0)))
            out.append(
                MetricGroup(
                    key=g,
                    current=kpis(c, p.sales, self.cost_per_interaction),
                    previous=kpis(p, None, self.cost_per_interaction),
                    series=points,
                )
            )
        return out

    @staticmethod
    def _with_base(s: Sums, base: tuple[int, int]) -> Sums:
        total, high = base
        s.customers_start = total
        s.customers_total = total + s.new_customers
        # High-value customers are counted by their current tier (set by segment refresh).
        s.high_value = high + s.high_value
        return s


@dataclass(frozen=True, slots=True)
class SalesShare:
    """Sales of one product, category, channel or region in a period. Suppressed (every
    figure None) when fewer buyers than the minimum cell size bought it."""

    key: str | None
    label: str | None
    buyers: int | None
    orders: int | None
    quantity: int | None
    sales: Decimal | None
    sales_without_cost: Decimal | None
    gross_margin: float | None

    @property
    def suppressed(self) -> bool:
        return self.sales is None


def small_cells(sizes: list[int], min_cell: int) -> set[int]:
    """Indexes of the cells to suppress: those under `min_cell`, and when that is one
    cell alone, the next smallest too (the total, known elsewhere, would give it back)."""
    if min_cell <= 1:
        return set()
    small = {i for i, n in enumerate(sizes) if n < min_cell}
    if len(small) == 1 and len(sizes) > 1:
        small.add(min((i for i in range(len(sizes)) if i not in small), key=lambda i: sizes[i]))
    return small


async def sales_breakdown(
    repo: AnalyticsRepository,
    *,
    start: date,
    end: date,
    dimension: SalesDimension,
    timezone: str,
    min_cell: int,
) -> list[SalesShare]:
    """Sales per `dimension` over the business days [start, end], largest first."""
    if end < start:
        raise ValidationError("`to` must not be before `from`", field="to")
    window = Window(day_start(start, timezone), day_start(end + timedelta(days=1), timezone))
    rows = list(await repo.sales_by(window, dimension))
    hidden = small_cells([int(r.buyers) for r in rows], min_cell)
    shares = []
    for index, r in enumerate(rows):
        key = None if r.key is None else str(r.key)
        label = None if r.label is None else str(r.label)
        if index in hidden:
            shares.append(SalesShare(key, label, None, None, None, None, None, None))
            continue
        sales, costed = _money(r.sales), _money(r.costed_sales)
        shares.append(
            SalesShare(
                key=key,
                label=label,
                buyers=int(r.buyers),
                orders=int(r.orders),
                quantity=int(r.quantity) if r.quantity is not None else None,
                sales=sales,
                sales_without_cost=sales - costed,
                gross_margin=_ratio(costed - _money(r.cost), costed),
            )
        )
    shares.sort(key=lambda s: (s.sales is None, -(s.sales or 0), s.key is None, s.key or ""))
    return shares
