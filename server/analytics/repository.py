"""Every analytics query: aggregates computed in SQL on SQLite and PostgreSQL alike.

The few places the dialects differ (date buckets, day differences) go through `SqlDialect`;
everything else is portable SQLAlchemy Core. Queries return aggregate rows only, never
the underlying records.

Every aggregate counts only a `population` of customers: the caller's row scope and
`analysable()` (not opted out of analytics), as a predicate on `Customer`; orders,
complaints and interactions count when their customer is in it.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Date,
    Float,
    Integer,
    Row,
    Select,
    String,
    and_,
    case,
    cast,
    distinct,
    exists,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from server.data.models import (
    Complaint,
    Consent,
    Customer,
    Interaction,
    Order,
    OrderItem,
    OrderStatusEvent,
    Product,
)

EMPTY: ColumnElement[Any] = literal_column("''")
# Orders that did not turn into a sale are left out of every sales figure.
NOT_SOLD = ("cancelled", "returned")


class Granularity(enum.StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class SalesDimension(enum.StrEnum):
    PRODUCT = "product"
    CATEGORY = "category"
    CHANNEL = "channel"
    REGION = "region"


MAX_CHANNELS = 20


@dataclass(frozen=True, slots=True)
class OrderChannels:
    """Which orders' channels an order figure counts: only `include` (when given), never
    `exclude`. An order without a channel counts unless `include` is given."""

    include: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()

    def predicate(self) -> ColumnElement[bool]:
        conditions: list[ColumnElement[bool]] = []
        if self.include is not None:
            conditions.append(Order.channel.in_(list(self.include)))
        if self.exclude:
            conditions.append(
                or_(Order.channel.is_(None), Order.channel.notin_(list(self.exclude)))
            )
        return and_(true(), *conditions)


def has_cost() -> ColumnElement[bool]:
    """An order whose cost is known: one with items, each line carrying its unit cost. An
    order imported in the minimal format (customer, date, amount) has none: its cost is
    unknown, not 0, and it stays out of every margin."""
    known: ColumnElement[bool] = exists().where(OrderItem.order_id == Order.id)
    return known


class GroupBy(enum.StrEnum):
    REGION = "region"
    INDUSTRY = "industry"
    TIER = "tier"
    OWNER = "owner_id"


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open time range [start, end)."""

    start: datetime
    end: datetime


@cache
def utc_offsets(timezone: str) -> tuple[tuple[datetime | None, int], ...]:
    """The zone's UTC offsets in minutes from 2000 to 2100 as (until, offset) pairs, the
    last with `until` None: one pair for a zone without daylight saving (Asia/Shanghai,
    whose last daylight saving was in 1991). Instants before 2000 take the 2000 offset."""
    tz = ZoneInfo(timezone)

    def offset(instant: datetime) -> int:
        delta = instant.astimezone(tz).utcoffset()
        return int(delta.total_seconds() // 60) if delta is not None else 0

    pairs: list[tuple[datetime | None, int]] = []
    instant = datetime(2000, 1, 1, tzinfo=UTC)
    current = offset(instant)
    end = datetime(2100, 1, 1, tzinfo=UTC)
    step = timedelta(hours=6)
    while instant < end:
        following = instant + step
        if offset(following) != current:
            # Find the transition to the minute, then record the offset that ends there.
            low, high = instant, following
            while high - low > timedelta(minutes=1):
                middle = low + (high - low) / 2
                low, high = (middle, high) if offset(middle) == current else (low, middle)
            pairs.append((high, current))
            current = offset(following)
        instant = following
    pairs.append((None, current))
    return tuple(pairs)


class SqlDialect:
    """The date arithmetic that differs between SQLite and PostgreSQL.

    Buckets and days are those of the business's time zone: PostgreSQL converts with its
    own zone database; SQLite, which has none, shifts the stored UTC text by the zone's
    offset at that instant (`utc_offsets`).
    """

    def __init__(self, name: str, timezone: str = "UTC") -> None:
        self.postgres = name == "postgresql"
        self.timezone = timezone

    def _local(self, column: Any) -> ColumnElement[Any]:
        """PostgreSQL: `column` as a local timestamp of the business's zone."""
        local: ColumnElement[Any] = func.timezone(self.timezone, column)
        return local

    def _shift(self, column: Any) -> ColumnElement[Any]:
        """SQLite: the date-function modifier that turns stored UTC into local time."""
        pairs = utc_offsets(self.timezone)
        if len(pairs) == 1:
            return literal(f"{pairs[0][1]:+d} minutes")
        whens = [
            (column < literal(until.strftime("%Y-%m-%d %H:%M:%S"), String), f"{minutes:+d} minutes")
            for until, minutes in pairs
            if until is not None
        ]
        return case(*whens, else_=f"{pairs[-1][1]:+d} minutes")

    def bucket(self, column: Any, granularity: Granularity) -> ColumnElement[str]:
        """The start day (YYYY-MM-DD) of the local day, ISO week (Monday) or month holding
        `column`."""
        if self.postgres:
            return func.to_char(
                func.date_trunc(granularity.value, self._local(column)), "YYYY-MM-DD"
            )
        shift = self._shift(column)
        if granularity is Granularity.DAY:
            return func.strftime("%Y-%m-%d", column, shift)
        if granularity is Granularity.WEEK:
            return func.date(column, shift, "weekday 0", "-6 days")
        return func.strftime("%Y-%m-01", column, shift)

    def next_bucket(self, column: Any, granularity: Granularity) -> ColumnElement[str]:
        """The start day of the bucket after the one holding `column`."""
        if self.postgres:
            step: ColumnElement[Any] = literal_column(f"interval '1 {granularity.value}'")
            return func.to_char(
                func.date_trunc(granularity.value, self._local(column) + step),
                "YYYY-MM-DD",
            )
        shift = self._shift(column)
        if granularity is Granularity.DAY:
            return func.date(column, shift, "+1 days")
        if granularity is Granularity.WEEK:
            return func.date(column, shift, "weekday 0", "+1 days")
        return func.strftime("%Y-%m-01", column, shift, "start of month", "+1 months")

    def days_between(self, later: Any, earlier: Any) -> ColumnElement[Any]:
        if self.postgres:
            return func.extract("epoch", later - earlier) / 86400.0
        return (func.julianday(later) - func.julianday(earlier)).cast(Float)

    def day(self, column: Any) -> ColumnElement[Any]:
        """The UTC calendar day of a timestamp."""
        if self.postgres:
            return cast(func.timezone("UTC", column), Date)
        day: ColumnElement[Any] = func.date(column)
        return day

    def day_literal(self, day: date) -> ColumnElement[Any]:
        """A calendar day as SQL: a DATE on PostgreSQL, ISO text (what date() gives) on SQLite."""
        text_day: ColumnElement[Any] = literal(day.isoformat())
        return cast(text_day, Date) if self.postgres else text_day

    def whole_days(self, later: Any, earlier: Any) -> ColumnElement[Any]:
        """Whole days between two calendar days."""
        if self.postgres:
            difference: ColumnElement[Any] = later - earlier
            return difference
        return cast(func.julianday(later) - func.julianday(earlier), Integer)


def _live_customer() -> list[ColumnElement[bool]]:
    return [Customer.erased_at.is_(None), Customer.merged_into_id.is_(None)]


def _sold() -> ColumnElement[bool]:
    return Order.status.notin_(NOT_SOLD)


def analysable() -> ColumnElement[bool]:
    """Customers analytics may count: all but those who withdrew `analytics` consent.

    Opt-out: a customer with no analytics consent record counts (aggregates of the
    business's own records); one whose every analytics consent is withdrawn is left out
    of every aggregate, ranking and model, and gets no segment or churn score.
    """
    opted_out = (
        select(Consent.customer_id)
        .where(Consent.purpose == "analytics")
        .group_by(Consent.customer_id)
        .having(func.count(Consent.withdrawn_at) == func.count())
    )
    return Customer.id.notin_(opted_out)


def _of(column: Any, population: ColumnElement[bool]) -> ColumnElement[bool]:
    """A record whose customer (`column`, a customer id) is in the population."""
    member: ColumnElement[bool] = column.in_(select(Customer.id).where(population))
    return member


def _in(column: Any, window: Window) -> ColumnElement[bool]:
    return and_(column >= window.start, column < window.end)


@dataclass(frozen=True, slots=True)
class Keys:
    """How aggregate rows are keyed: by bucket of a time column and/or by a customer group."""

    granularity: Granularity | None
    group_by: GroupBy | None

    def columns(self, dialect: SqlDialect, time_column: Any) -> list[ColumnElement[Any]]:
        cols: list[ColumnElement[Any]] = [
            dialect.bucket(time_column, self.granularity).label("bucket")
            if self.granularity
            else EMPTY.label("bucket"),
        ]
        if self.group_by:
            cols.append(getattr(Customer, self.group_by.value).label("grp"))
        else:
            cols.append(EMPTY.label("grp"))
        return cols

    def grouping(self) -> list[ColumnElement[Any]]:
        """GROUP BY the output names: an expression with bound parameters (a date format)
        repeated in GROUP BY would not count as the same expression on PostgreSQL."""
        out: list[ColumnElement[Any]] = []
        if self.granularity:
            out.append(literal_column("bucket"))
        if self.group_by:
            out.append(literal_column("grp"))
        return out


class AnalyticsRepository:
    def __init__(
        self,
        session: AsyncSession,
        timezone: str = "UTC",
        *,
        population: ColumnElement[bool],
        channels: OrderChannels | None = None,
    ) -> None:
        self.session = session
        self.population = population
        # Order figures (sales, buyers, retention, deliveries) count these channels.
        self.orders = (channels or OrderChannels()).predicate()
        # Buckets are days, weeks and months of the business's time zone.
        self.dialect = SqlDialect(session.get_bind().dialect.name, timezone)
        # The statements run, for the benchmark's bare-SQL comparison.
        self.statements: list[Any] = []

    async def _all(self, stmt: Any) -> Sequence[Row[Any]]:
        self.statements.append(stmt)
        return (await self.session.execute(stmt)).all()

    # --- metrics -------------------------------------------------------------------------

    async def new_customers(self, window: Window, keys: Keys) -> Sequence[Row[Any]]:
        stmt = (
            select(
                *keys.columns(self.dialect, Customer.created_at),
                func.count().label("new"),
                func.count(Customer.referred_by_id).label("referred"),
                func.count(case((Customer.tier == "high", 1))).label("high"),
            )
            .where(*_live_customer(), self.population, _in(Customer.created_at, window))
            .group_by(*keys.grouping())
        )
        return await self._all(stmt)

    async def customers_before(self, instant: datetime, keys: Keys) -> Sequence[Row[Any]]:
        stmt = (
            select(
                *Keys(None, keys.group_by).columns(self.dialect, Customer.created_at),
                func.count().label("total"),
                func.count(case((Customer.tier == "high", 1))).label("high"),
            )
            .where(*_live_customer(), self.population, Customer.created_at < instant)
            .group_by(*Keys(None, keys.group_by).grouping())
        )
        return await self._all(stmt)

    def _orders(self, window: Window, keys: Keys, *columns: Any) -> Select[Any]:
        stmt = (
            select(*keys.columns(self.dialect, Order.ordered_at), *columns)
            .select_from(Order)
            .where(
                _sold(),
                _in(Order.ordered_at, window),
                _of(Order.customer_id, self.population),
                self.orders,
            )
        )
        return stmt

    async def sales(self, window: Window, keys: Keys) -> Sequence[Row[Any]]:
        # A sale is from a new customer when the customer was acquired in the same bucket
        # (or, for the whole range, within the range).
        if keys.granularity:
            is_new = self.dialect.bucket(Customer.created_at, keys.granularity) == (
                self.dialect.bucket(Order.ordered_at, keys.granularity)
            )
        else:
            is_new = Customer.created_at >= window.start
        stmt = (
            self._orders(
                window,
                keys,
                func.count().label("orders"),
                func.count(distinct(Order.customer_id)).label("buyers"),
                func.sum(Order.total).label("sales"),
                func.sum(case((has_cost(), Order.total), else_=0)).label("costed_sales"),
                func.sum(case((has_cost(), Order.cost_total), else_=0)).label("cost"),
                func.sum(case((is_new, Order.total), else_=0)).label("new_sales"),
            )
            .join(Customer, Customer.id == Order.customer_id)
            .group_by(*keys.grouping())
        )
        return await self._all(stmt)

    async def repeat_buyers(self, window: Window, keys: Keys) -> Sequence[Row[Any]]:
        per_customer = self._orders(window, keys, Order.customer_id).group_by(
            *keys.grouping(), Order.customer_id
        )
        if keys.group_by:
            per_customer = per_customer.join(Customer, Customer.id == Order.customer_id)
        sub = per_customer.having(func.count() >= 2).subquery()
        stmt = select(sub.c.bucket, sub.c.grp, func.count().label("repeat")).group_by(
            sub.c.bucket, sub.c.grp
        )
        return await self._all(stmt)

    async def new_product_sales(self, window: Window, keys: Keys) -> Sequence[Row[Any]]:
        stmt = (
            self._orders(window, keys, func.sum(OrderItem.line_total).label("sales"))
            .join(OrderItem, OrderItem.order_id == Order.id)
            .join(Product, Product.id == OrderItem.product_id)
            .where(Product.is_new.is_(True))
            .group_by(*keys.grouping())
        )
        if keys.group_by:
            stmt = stmt.join(Customer, Customer.id == Order.customer_id)
        return await self._all(stmt)

    async def retention(self, window: Window, keys: Keys) -> Sequence[Row[Any]]:
        """Per key: buyers of the period before (`base`) and how many bought again (`kept`).

        For a series the period before a bucket is the bucket before it; for the whole
        range it is the range of equal length just before.
        """
        d = self.dialect
        if keys.granularity:
            current_label: ColumnElement[Any] = d.bucket(Order.ordered_at, keys.granularity)
            previous_label: ColumnElement[Any] = d.next_bucket(Order.ordered_at, keys.granularity)
            lookback = self._bucket_before(window.start, keys.granularity)
        else:
            current_label = EMPTY
            previous_label = EMPTY
            lookback = window.start - (window.end - window.start)
        grp: ColumnElement[Any] = getattr(Customer, keys.group_by.value) if keys.group_by else EMPTY
        current = (
            select(Order.customer_id.label("cid"), current_label.label("bucket"))
            .where(
                _sold(),
                _in(Order.ordered_at, window),
                _of(Order.customer_id, self.population),
                self.orders,
            )
            .distinct()
            .subquery("cur")
        )
        # Buyers of each earlier period, labelled with the period they may be retained into.
        previous_end = window.end if keys.granularity else window.start
        previous = (
            select(Order.customer_id.label("cid"), previous_label.label("bucket"))
            .where(
                _sold(),
                _in(Order.ordered_at, Window(lookback, previous_end)),
                _of(Order.customer_id, self.population),
                self.orders,
            )
            .distinct()
            .subquery("prev")
        )
        stmt = (
            select(
                previous.c.bucket,
                grp.label("grp"),
                func.count().label("base"),
                func.count(current.c.cid).label("kept"),
            )
            .select_from(previous)
            .outerjoin(
                current,
                and_(current.c.cid == previous.c.cid, current.c.bucket == previous.c.bucket),
            )
            .group_by(previous.c.bucket, literal_column("grp"))
        )
        if keys.group_by:
            stmt = stmt.join(Customer, Customer.id == previous.c.cid)
        return await self._all(stmt)

    def _bucket_before(self, instant: datetime, granularity: Granularity) -> datetime:
        """The start of the bucket before the one starting at `instant` (a local bucket
        start), counted in the business's time zone."""
        tz = ZoneInfo(self.dialect.timezone)
        day = instant.astimezone(tz).date()
        if granularity is Granularity.DAY:
            day -= timedelta(days=1)
        elif granularity is Granularity.WEEK:
            day -= timedelta(days=7)
        else:
            day = (day.replace(day=1) - timedelta(days=1)).replace(day=1)
        return datetime.combine(day, time(), tz).astimezone(UTC)

    async def complaints(self, window: Window, keys: Keys) -> Sequence[Row[Any]]:
        acknowledged_on_time = and_(
            Complaint.acknowledged_at.is_not(None),
            Complaint.acknowledged_at <= Complaint.acknowledge_due_at,
        )
        resolved_on_time = and_(
            Complaint.resolved_at.is_not(None), Complaint.resolved_at <= Complaint.resolve_due_at
        )
        stmt = (
            select(
                *keys.columns(self.dialect, Complaint.opened_at),
                func.count().label("complaints"),
                func.count(Complaint.acknowledge_due_at).label("ack_due"),
                func.count(case((acknowledged_on_time, 1))).label("ack_on_time"),
                func.count(Complaint.resolve_due_at).label("resolve_due"),
                func.count(case((resolved_on_time, 1))).label("resolved_on_time"),
                func.count(Complaint.rating).label("rated"),
                func.count(case((Complaint.rating >= 4, 1))).label("satisfied"),
                func.count(Complaint.resolved_at).label("resolved"),
                func.sum(
                    self.dialect.days_between(Complaint.resolved_at, Complaint.opened_at)
                ).label("resolution_days"),
            )
            .select_from(Complaint)
            .where(_in(Complaint.opened_at, window), _of(Complaint.customer_id, self.population))
            .group_by(*keys.grouping())
        )
        if keys.group_by:
            stmt = stmt.join(Customer, Customer.id == Complaint.customer_id)
        return await self._all(stmt)

    async def deliveries(self, window: Window, keys: Keys, now: datetime) -> Sequence[Row[Any]]:
        """Orders whose promised delivery falls in the window (bucketed by it), not
        cancelled: `promised` counts those delivered or already past their promise at
        `now`, `on_time` those delivered (the first `delivered` event) by the promise."""
        delivered = (
            select(
                OrderStatusEvent.order_id.label("oid"),
                func.min(OrderStatusEvent.at).label("delivered_at"),
            )
            .where(
                OrderStatusEvent.status == "delivered",
                OrderStatusEvent.order_id.in_(
                    select(Order.id).where(_in(Order.promised_at, window))
                ),
            )
            .group_by(OrderStatusEvent.order_id)
            .subquery("dl")
        )
        due = or_(delivered.c.delivered_at.is_not(None), Order.promised_at < now)
        on_time = delivered.c.delivered_at <= Order.promised_at
        stmt = (
            select(
                *keys.columns(self.dialect, Order.promised_at),
                func.count(case((due, 1))).label("promised"),
                func.count(case((on_time, 1))).label("on_time"),
            )
            .select_from(Order)
            .outerjoin(delivered, delivered.c.oid == Order.id)
            .where(
                Order.status != "cancelled",
                _in(Order.promised_at, window),
                _of(Order.customer_id, self.population),
                self.orders,
            )
            .group_by(*keys.grouping())
        )
        if keys.group_by:
            stmt = stmt.join(Customer, Customer.id == Order.customer_id)
        return await self._all(stmt)

    async def sales_by(self, window: Window, dimension: SalesDimension) -> Sequence[Row[Any]]:
        """Sold orders in the window per product, category, channel or region: orders,
        buyers, quantity (lines only), sales, the sales whose cost is known and that cost.
        By product or category, orders without items (cost unknown) form one row with
        key None, so the rows add up to the sales total."""
        sold = and_(
            _sold(),
            _in(Order.ordered_at, window),
            _of(Order.customer_id, self.population),
            self.orders,
        )
        if dimension in (SalesDimension.PRODUCT, SalesDimension.CATEGORY):
            key: Any = Product.sku if dimension is SalesDimension.PRODUCT else Product.category
            label: ColumnElement[Any] = (
                func.min(Product.name) if dimension is SalesDimension.PRODUCT else func.min(key)
            )
            lines = (
                select(
                    key.label("key"),
                    label.label("label"),
                    func.count(distinct(OrderItem.order_id)).label("orders"),
                    func.count(distinct(OrderItem.customer_id)).label("buyers"),
                    func.sum(OrderItem.quantity).label("quantity"),
                    func.sum(OrderItem.line_total).label("sales"),
                    func.sum(OrderItem.line_total).label("costed_sales"),
                    func.sum(OrderItem.unit_cost * OrderItem.quantity).label("cost"),
                )
                .select_from(OrderItem)
                .join(Order, Order.id == OrderItem.order_id)
                .join(Product, Product.id == OrderItem.product_id)
                .where(sold)
                .group_by(key)
            )
            without_items = (
                select(
                    null().label("key"),
                    null().label("label"),
                    func.count().label("orders"),
                    func.count(distinct(Order.customer_id)).label("buyers"),
                    null().label("quantity"),
                    func.sum(Order.total).label("sales"),
                    literal(0).label("costed_sales"),
                    literal(0).label("cost"),
                )
                .select_from(Order)
                .where(sold, ~has_cost())
                .having(func.count() > 0)
            )
            return [*await self._all(lines), *await self._all(without_items)]
        group: Any = Order.channel if dimension is SalesDimension.CHANNEL else Customer.region
        stmt = (
            select(
                group.label("key"),
                group.label("label"),
                func.count().label("orders"),
                func.count(distinct(Order.customer_id)).label("buyers"),
                null().label("quantity"),
                func.sum(Order.total).label("sales"),
                func.sum(case((has_cost(), Order.total), else_=0)).label("costed_sales"),
                func.sum(case((has_cost(), Order.cost_total), else_=0)).label("cost"),
            )
            .select_from(Order)
            .join(Customer, Customer.id == Order.customer_id)
            .where(sold)
            .group_by(group)
        )
        return await self._all(stmt)

    async def interactions(self, window: Window, keys: Keys) -> Sequence[Row[Any]]:
        answered = and_(
            Interaction.direction == "inbound", Interaction.first_responded_at.is_not(None)
        )
        wait_days = self.dialect.days_between(
            Interaction.first_responded_at, Interaction.occurred_at
        )
        stmt = (
            select(
                *keys.columns(self.dialect, Interaction.occurred_at),
                func.count().label("interactions"),
                func.count(case((answered, 1))).label("answered"),
                func.sum(case((answered, wait_days), else_=null())).label("wait_days"),
            )
            .select_from(Interaction)
            .where(
                _in(Interaction.occurred_at, window), _of(Interaction.customer_id, self.population)
            )
            .group_by(*keys.grouping())
        )
        if keys.group_by:
            stmt = stmt.join(Customer, Customer.id == Interaction.customer_id)
        return await self._all(stmt)


# --- segmentation --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TierRule:
    """High tier: at least two of spend, orders and margin over the last year (see
    `SegmentWindows`) reach their high mark. Mid tier: spend or orders reach their mid
    mark. Otherwise low."""

    high_spend: Decimal = Decimal("5000")
    high_orders: int = 6
    high_margin: float = 0.35
    mid_spend: Decimal = Decimal("1000")
    mid_orders: int = 2


@dataclass(frozen=True, slots=True)
class SegmentWindows:
    """How far back segmentation looks, in days before the as-of instant.

    Lifecycle, first match: `new` (created within `new_days`); `won_back` (bought within
    `recent_days`, not in the `won_back_gap_days` before that, but earlier); `active`
    (bought within `recent_days`); `at_risk` (last order within `churn_days`); else
    `churned`. Tier measures, contacts (for the need type) and segment revenue cover the
    last `year_days`.
    """

    year_days: int = 365
    new_days: int = 90
    recent_days: int = 90
    won_back_gap_days: int = 180
    churn_days: int = 365


DAY = timedelta(days=1)


def segment_query(
    as_of: datetime, rule: TierRule, windows: SegmentWindows, scope: ColumnElement[bool]
) -> Any:
    """One row per live customer in scope with RFM scores, tier, lifecycle, need type,
    grade and the last year's revenue, all as of the instant `as_of` (exclusive).

    RFM quintiles and grades rank customers among the whole live population, not only
    those in scope, so a customer's score does not depend on who is asking; customers
    opted out of analytics are not in it (`analysable`).
    """
    sold_before = and_(_sold(), Order.ordered_at < as_of)
    year_start = as_of - windows.year_days * DAY
    recent_start = as_of - windows.recent_days * DAY
    gap_start = recent_start - windows.won_back_gap_days * DAY
    last_year = and_(sold_before, Order.ordered_at >= year_start)

    def when(condition: ColumnElement[bool], value: Any) -> Any:
        return case((condition, value), else_=null())

    orders = (
        select(
            Order.customer_id.label("cid"),
            func.max(when(sold_before, Order.ordered_at)).label("last_order"),
            func.count(when(sold_before, 1)).label("orders_all"),
            func.coalesce(func.sum(when(sold_before, Order.total)), 0).label("spend_all"),
            func.count(when(last_year, 1)).label("orders_year"),
            func.coalesce(func.sum(when(last_year, Order.total)), 0).label("spend_year"),
            func.coalesce(func.sum(when(last_year, Order.cost_total)), 0).label("cost_year"),
            func.count(when(and_(sold_before, Order.ordered_at >= recent_start), 1)).label(
                "recent"
            ),
            func.count(
                when(
                    and_(
                        sold_before,
                        Order.ordered_at >= gap_start,
                        Order.ordered_at < recent_start,
                    ),
                    1,
                )
            ).label("gap"),
            func.count(when(and_(sold_before, Order.ordered_at < gap_start), 1)).label("old"),
        )
        .group_by(Order.customer_id)
        .subquery("o")
    )
    contacts = (
        select(Interaction.customer_id.label("cid"), func.count().label("contacts"))
        .where(Interaction.occurred_at < as_of, Interaction.occurred_at >= year_start)
        .group_by(Interaction.customer_id)
        .subquery("i")
    )
    # Ties split across quintiles by customer id, so a score is the same on every run.
    orders_all = func.coalesce(orders.c.orders_all, 0)
    spend_all = func.coalesce(orders.c.spend_all, 0)
    orders_year = func.coalesce(orders.c.orders_year, 0)
    spend_year = func.coalesce(orders.c.spend_year, 0)
    buyer = orders_all > 0
    base = (
        select(
            Customer.id.label("id"),
            Customer.created_at,
            Customer.price_sensitivity,
            Customer.customization,
            Customer.upgrade_intent,
            scope.label("in_scope"),
            orders.c.last_order,
            orders_all.label("orders_all"),
            spend_all.label("spend_all"),
            orders_year.label("orders_year"),
            spend_year.label("spend_year"),
            func.coalesce(orders.c.cost_year, 0).label("cost_year"),
            func.coalesce(orders.c.recent, 0).label("recent"),
            func.coalesce(orders.c.gap, 0).label("gap"),
            func.coalesce(orders.c.old, 0).label("old"),
            func.coalesce(contacts.c.contacts, 0).label("contacts"),
            case(
                (
                    buyer,
                    func.ntile(5).over(
                        partition_by=buyer, order_by=(orders.c.last_order, Customer.id)
                    ),
                ),
                else_=null(),
            ).label("r"),
            case(
                (buyer, func.ntile(5).over(partition_by=buyer, order_by=(orders_all, Customer.id))),
                else_=null(),
            ).label("f"),
            case(
                (buyer, func.ntile(5).over(partition_by=buyer, order_by=(spend_all, Customer.id))),
                else_=null(),
            ).label("m"),
            # Revenue ranked from the top: the share earned by customers ranked above.
            (
                func.sum(spend_all).over(order_by=(spend_all.desc(), Customer.id), rows=(None, -1))
            ).label("spend_above"),
            func.sum(spend_all).over().label("spend_total"),
        )
        .select_from(Customer)
        .outerjoin(orders, orders.c.cid == Customer.id)
        .outerjoin(contacts, contacts.c.cid == Customer.id)
        .where(*_live_customer(), analysable(), Customer.created_at < as_of)
        .subquery("b")
    )
    b = base.c
    margin_ok = and_(
        b.spend_year > 0, (b.spend_year - b.cost_year) >= b.spend_year * rule.high_margin
    )
    points = (
        case((b.spend_year >= rule.high_spend, 1), else_=0)
        + case((b.orders_year >= rule.high_orders, 1), else_=0)
        + case((margin_ok, 1), else_=0)
    )
    tier = case(
        (points >= 2, "high"),
        (or_(b.spend_year >= rule.mid_spend, b.orders_year >= rule.mid_orders), "mid"),
        else_="low",
    )
    lifecycle = case(
        (b.created_at >= as_of - windows.new_days * DAY, "new"),
        (and_(b.recent > 0, b.gap == 0, b.old > 0), "won_back"),
        (b.recent > 0, "active"),
        (b.last_order >= as_of - windows.churn_days * DAY, "at_risk"),
        else_="churned",
    )
    need_type = case(
        (b.price_sensitivity == "high", "value"),
        (b.price_sensitivity == "low", "quality"),
        (or_(b.customization == "high", b.upgrade_intent == "high"), "quality"),
        # No telling profile: many contacts per purchase read as service-oriented, big
        # spenders as quality-oriented, the rest as value-for-money.
        (and_(b.contacts >= 2, b.contacts >= 2 * b.orders_year), "service"),
        (b.m >= 4, "quality"),
        else_="value",
    )
    grade = case(
        (b.orders_all == 0, "C"),
        (func.coalesce(b.spend_above, 0) < b.spend_total * 0.7, "A"),
        (func.coalesce(b.spend_above, 0) < b.spend_total * 0.9, "B"),
        else_="C",
    )
    return select(
        b.id,
        b.in_scope,
        b.r,
        b.f,
        b.m,
        b.last_order,
        b.orders_all,
        b.spend_all,
        b.spend_year,
        tier.label("tier"),
        lifecycle.label("lifecycle"),
        need_type.label("need_type"),
        grade.label("grade"),
    ).subquery("seg")


class SegmentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def for_customers(
        self,
        as_of: datetime,
        rule: TierRule,
        windows: SegmentWindows,
        ids: Sequence[uuid.UUID],
    ) -> Sequence[Row[Any]]:
        seg = segment_query(as_of, rule, windows, true())
        stmt = select(seg).where(seg.c.id.in_(list(ids)))
        return (await self.session.execute(stmt)).all()

    async def breakdown(
        self,
        as_of: datetime,
        rule: TierRule,
        windows: SegmentWindows,
        scope: ColumnElement[bool],
        by: str,
    ) -> Sequence[Row[Any]]:
        """Customers and last-year revenue per segment value, within the caller's scope."""
        seg = segment_query(as_of, rule, windows, scope)
        if by == "rfm":
            key: ColumnElement[Any] = func.coalesce(
                "R"
                + cast(seg.c.r, String)
                + "F"
                + cast(seg.c.f, String)
                + "M"
                + cast(seg.c.m, String),
                "none",
            )
        else:
            key = seg.c[by]
        stmt = (
            select(
                key.label("segment"),
                func.count().label("customers"),
                func.sum(seg.c.spend_year).label("revenue"),
            )
            .where(seg.c.in_scope)
            .group_by(literal_column("segment"))
            .order_by(literal_column("segment"))
        )
        return (await self.session.execute(stmt)).all()

    async def refresh(self, as_of: datetime, rule: TierRule, windows: SegmentWindows) -> int:
        """Write tier, lifecycle and need type onto every live customer in one UPDATE."""
        seg = segment_query(as_of, rule, windows, true())
        stmt = (
            update(Customer)
            .where(Customer.id == seg.c.id)
            .values(tier=seg.c.tier, lifecycle=seg.c.lifecycle, need_type=seg.c.need_type)
            .execution_options(synchronize_session=False)
        )
        result = await self.session.execute(stmt)
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- churn --------------------------------------------------------------------------------


class ChurnRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.dialect = SqlDialect(session.get_bind().dialect.name)

    def _histories(self, as_of_day: date, population: ColumnElement[bool]) -> Any:
        """Per buyer in the population: x = purchase days after the first, t_x and T in
        days, up to `as_of_day`."""
        day = self.dialect.day(Order.ordered_at).label("day")
        days = (
            select(Order.customer_id.label("cid"), day)
            .where(
                _sold(),
                Order.ordered_at < datetime.combine(as_of_day + DAY, time(), UTC),
                _of(Order.customer_id, population),
            )
            .distinct()
            .subquery("d")
        )
        as_of_value = self.dialect.day_literal(as_of_day)
        return (
            select(
                days.c.cid,
                (func.count() - 1).label("x"),
                self.dialect.whole_days(func.max(days.c.day), func.min(days.c.day)).label("t_x"),
                self.dialect.whole_days(as_of_value, func.min(days.c.day)).label("age"),
                func.max(days.c.day).label("last_day"),
            )
            .group_by(days.c.cid)
            .subquery("h")
        )

    async def history_counts(
        self, as_of_day: date, population: ColumnElement[bool]
    ) -> Sequence[Row[Any]]:
        """Identical (x, t_x, T) summaries with how many customers share each: the fit's input."""
        h = self._histories(as_of_day, population)
        stmt = select(h.c.x, h.c.t_x, h.c.age, func.count().label("n")).group_by(
            h.c.x, h.c.t_x, h.c.age
        )
        return (await self.session.execute(stmt)).all()

    async def data_version(
        self, as_of_day: date, population: ColumnElement[bool]
    ) -> tuple[int, str]:
        """Changes when the population's orders up to the day change (count and latest
        time): the cache key."""
        stmt = select(func.count(), func.max(Order.ordered_at)).where(
            _sold(),
            Order.ordered_at < datetime.combine(as_of_day + DAY, time(), UTC),
            _of(Order.customer_id, population),
        )
        count, latest = (await self.session.execute(stmt)).one()
        return int(count), str(latest)

    async def signals(
        self,
        as_of_day: date,
        *,
        scope: ColumnElement[bool],
        ids: Sequence[uuid.UUID] | None = None,
    ) -> Sequence[Row[Any]]:
        """Per live, analysable customer in scope: purchase history summary and the
        warning-signal counts."""
        end = datetime.combine(as_of_day + DAY, time(), UTC)
        h = self._histories(as_of_day, scope)

        def window(column: Any, days_from: int, days_to: int) -> ColumnElement[bool]:
            return and_(column >= end - days_from * DAY, column < end - days_to * DAY)

        def when(condition: ColumnElement[bool], value: Any) -> Any:
            return case((condition, value), else_=null())

        o = (
            select(
                Order.customer_id.label("cid"),
                func.count(when(window(Order.ordered_at, 180, 0), 1)).label("orders_recent"),
                func.count(when(window(Order.ordered_at, 720, 180), 1)).label("orders_before"),
                func.coalesce(
                    func.sum(when(window(Order.ordered_at, 180, 0), Order.total)), 0
                ).label("spend_recent"),
                func.coalesce(
                    func.sum(when(window(Order.ordered_at, 720, 180), Order.total)), 0
                ).label("spend_before"),
            )
            .where(_sold(), Order.ordered_at < end)
            .group_by(Order.customer_id)
            .subquery("o")
        )
        c = (
            select(
                Complaint.customer_id.label("cid"),
                func.count(when(window(Complaint.opened_at, 90, 0), 1)).label("recent"),
                func.count(when(window(Complaint.opened_at, 360, 90), 1)).label("before"),
                func.count(
                    when(and_(window(Complaint.opened_at, 180, 0), Complaint.rating <= 2), 1)
                ).label("unhappy"),
            )
            .where(Complaint.opened_at < end)
            .group_by(Complaint.customer_id)
            .subquery("c")
        )
        i = (
            select(
                Interaction.customer_id.label("cid"),
                func.count(when(window(Interaction.occurred_at, 90, 0), 1)).label("recent"),
                func.count(when(window(Interaction.occurred_at, 360, 90), 1)).label("before"),
            )
            .where(Interaction.occurred_at < end)
            .group_by(Interaction.customer_id)
            .subquery("i")
        )
        stmt = (
            select(
                Customer.id.label("id"),
                h.c.x,
                h.c.t_x,
                h.c.age,
                self.dialect.whole_days(self.dialect.day_literal(as_of_day), h.c.last_day).label(
                    "days_since_last"
                ),
                func.coalesce(o.c.orders_recent, 0).label("orders_recent"),
                func.coalesce(o.c.orders_before, 0).label("orders_before"),
                func.coalesce(o.c.spend_recent, 0).label("spend_recent"),
                func.coalesce(o.c.spend_before, 0).label("spend_before"),
                func.coalesce(c.c.recent, 0).label("complaints_recent"),
                func.coalesce(c.c.before, 0).label("complaints_before"),
                func.coalesce(c.c.unhappy, 0).label("unhappy"),
                func.coalesce(i.c.recent, 0).label("contacts_recent"),
                func.coalesce(i.c.before, 0).label("contacts_before"),
            )
            .select_from(Customer)
            .outerjoin(h, h.c.cid == Customer.id)
            .outerjoin(o, o.c.cid == Customer.id)
            .outerjoin(c, c.c.cid == Customer.id)
            .outerjoin(i, i.c.cid == Customer.id)
            .where(scope, analysable(), *_live_customer(), Customer.created_at < end)
        )
        if ids is not None:
            stmt = stmt.where(Customer.id.in_(list(ids)))
        return (await self.session.execute(stmt)).all()


# --- co-purchase ----------------------------------------------------------------------------
#
# Counts are of sold orders: "orders with X" is the number of distinct sold orders holding a
# line of X. Each query starts from the lines of one product (indexed) and counts the other
# side per product, so nothing scans every pair of lines in the shop.


def _sold_to(population: ColumnElement[bool]) -> ColumnElement[bool]:
    """A sold order of a customer in the population."""
    return and_(_sold(), _of(Order.customer_id, population))


def _orders_per_product(products: Any, population: ColumnElement[bool]) -> Any:
    """Distinct sold orders per product, for the products in `products` (a subquery)."""
    return (
        select(
            OrderItem.product_id.label("product_id"),
            func.count(distinct(OrderItem.order_id)).label("orders"),
        )
        .join(Order, Order.id == OrderItem.order_id)
        .where(_sold_to(population), OrderItem.product_id.in_(select(products.c.product_id)))
        .group_by(OrderItem.product_id)
        .subquery("n")
    )


def _sold_orders(population: ColumnElement[bool]) -> Any:
    return select(func.count()).select_from(Order).where(_sold_to(population)).scalar_subquery()


def _orders_with(product_id: uuid.UUID, population: ColumnElement[bool]) -> Any:
    return (
        select(func.count(distinct(OrderItem.order_id)))
        .join(Order, Order.id == OrderItem.order_id)
        .where(_sold_to(population), OrderItem.product_id == product_id)
        .scalar_subquery()
    )


class CoPurchaseRepository:
    """Rules over the sold orders of a population of customers (scope and opt-out)."""

    def __init__(self, session: AsyncSession, *, population: ColumnElement[bool]) -> None:
        self.session = session
        self.population = population

    def _together(self, product_id: uuid.UUID) -> Any:
        """Per other product: sold orders holding both it and `product_id`."""
        mine = OrderItem.__table__.alias("mine")
        other = OrderItem.__table__.alias("other")
        return (
            select(
                other.c.product_id.label("product_id"),
                func.count(distinct(other.c.order_id)).label("both"),
            )
            .select_from(mine)
            .join(Order, Order.id == mine.c.order_id)
            .join(
                other,
                and_(other.c.order_id == mine.c.order_id, other.c.product_id != product_id),
            )
            .where(mine.c.product_id == product_id, _sold_to(self.population))
            .group_by(other.c.product_id)
            .subquery("t")
        )

    async def rules_from(self, product_id: uuid.UUID, limit: int) -> Sequence[Row[Any]]:
        """Rules product -> other, best lift first: support, confidence and lift."""
        together = self._together(product_id)
        per_product = _orders_per_product(together, self.population)
        total = cast(_sold_orders(self.population), Float)
        confidence = cast(together.c.both, Float) / _orders_with(product_id, self.population)
        lift = confidence / (cast(per_product.c.orders, Float) / total)
        stmt = (
            select(
                together.c.product_id,
                together.c.both,
                (cast(together.c.both, Float) / total).label("support"),
                confidence.label("confidence"),
                lift.label("lift"),
            )
            .join(per_product, per_product.c.product_id == together.c.product_id)
            .order_by(
                literal_column("lift").desc(),
                literal_column("confidence").desc(),
                together.c.product_id,
            )
            .limit(limit)
        )
        return (await self.session.execute(stmt)).all()

    async def likely_buyers(
        self,
        product_id: uuid.UUID,
        *,
        scope: ColumnElement[bool],
        after: uuid.UUID | None,
        limit: int,
    ) -> Sequence[Row[Any]]:
        """Customers in scope who bought an antecedent of the product (a rule with lift > 1)
        but never the product; score = the best confidence among their antecedents."""
        together = self._together(product_id)
        per_product = _orders_per_product(together, self.population)
        # Rule antecedent -> product: confidence = both / orders with the antecedent; lift > 1
        # when that beats the product's own share of orders.
        confidence = cast(together.c.both, Float) / per_product.c.orders
        rules = (
            select(together.c.product_id.label("antecedent"), confidence.label("confidence"))
            .join(per_product, per_product.c.product_id == together.c.product_id)
            .where(
                confidence
                > cast(_orders_with(product_id, self.population), Float)
                / _sold_orders(self.population)
            )
            .subquery("r")
        )
        # Computed once as a list, not probed per customer.
        bought_target = Customer.id.in_(
            select(OrderItem.customer_id).where(OrderItem.product_id == product_id)
        )
        bought = (
            select(OrderItem.customer_id, func.max(rules.c.confidence).label("score"))
            .join(rules, rules.c.antecedent == OrderItem.product_id)
            .join(Order, Order.id == OrderItem.order_id)
            .where(_sold_to(self.population))
            .group_by(OrderItem.customer_id)
            .subquery("c")
        )
        stmt = (
            select(Customer.id, bought.c.score)
            .join(bought, bought.c.customer_id == Customer.id)
            .where(scope, self.population, *_live_customer(), ~bought_target)
            .order_by(Customer.id)
            .limit(limit + 1)
        )
        if after is not None:
            stmt = stmt.where(Customer.id > after)
        return (await self.session.execute(stmt)).all()

    async def product_exists(self, product_id: uuid.UUID) -> bool:
        return bool(await self.session.scalar(select(Product.id).where(Product.id == product_id)))

    async def products(self, ids: Sequence[uuid.UUID]) -> Sequence[Row[Any]]:
        columns: list[Any] = [Product.id, Product.sku, Product.name, Product.category]
        stmt = select(*columns).where(Product.id.in_(list(ids)))
        return (await self.session.execute(stmt)).all()
