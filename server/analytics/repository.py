"""Every analytics query: aggregates computed in SQL on SQLite and PostgreSQL alike.

The few places the dialects differ (date buckets, day differences) go through `SqlDialect`;
everything else is portable SQLAlchemy Core. Queries return aggregate rows only, never
the underlying records.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Row,
    Select,
    and_,
    case,
    distinct,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from server.data.models import (
    Complaint,
    Customer,
    Interaction,
    Order,
    OrderItem,
    Product,
)

EMPTY = literal_column("''")
# Orders that did not turn into a sale are left out of every sales figure.
NOT_SOLD = ("cancelled", "returned")


class Granularity(enum.StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


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


class SqlDialect:
    """The date arithmetic that differs between SQLite and PostgreSQL."""

    def __init__(self, name: str) -> None:
        self.postgres = name == "postgresql"

    def bucket(self, column: Any, granularity: Granularity) -> ColumnElement[str]:
        """The start day (YYYY-MM-DD) of the day, ISO week (Monday) or month holding `column`."""
        if self.postgres:
            return func.to_char(
                func.date_trunc(granularity.value, func.timezone("UTC", column)), "YYYY-MM-DD"
            )
        if granularity is Granularity.DAY:
            return func.strftime("%Y-%m-%d", column)
        if granularity is Granularity.WEEK:
            return func.date(column, "weekday 0", "-6 days")
        return func.strftime("%Y-%m-01", column)

    def next_bucket(self, column: Any, granularity: Granularity) -> ColumnElement[str]:
        """The start day of the bucket after the one holding `column`."""
        if self.postgres:
            step = literal_column(f"interval '1 {granularity.value}'")
            return func.to_char(
                func.date_trunc(granularity.value, func.timezone("UTC", column) + step),
                "YYYY-MM-DD",
            )
        if granularity is Granularity.DAY:
            return func.date(column, "+1 days")
        if granularity is Granularity.WEEK:
            return func.date(column, "weekday 0", "+1 days")
        return func.strftime("%Y-%m-01", column, "start of month", "+1 months")

    def days_between(self, later: Any, earlier: Any) -> ColumnElement[float]:
        if self.postgres:
            return func.extract("epoch", later - earlier) / 86400.0
        return (func.julianday(later) - func.julianday(earlier)).cast(Float)


def _live_customer() -> list[ColumnElement[bool]]:
    return [Customer.erased_at.is_(None), Customer.merged_into_id.is_(None)]


def _sold() -> ColumnElement[bool]:
    return Order.status.notin_(NOT_SOLD)


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
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.dialect = SqlDialect(session.bind.dialect.name)
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
            .where(*_live_customer(), _in(Customer.created_at, window))
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
            .where(*_live_customer(), Customer.created_at < instant)
            .group_by(*Keys(None, keys.group_by).grouping())
        )
        return await self._all(stmt)

    def _orders(self, window: Window, keys: Keys, *columns: Any) -> Select[Any]:
        stmt = (
            select(*keys.columns(self.dialect, Order.ordered_at), *columns)
            .select_from(Order)
            .where(_sold(), _in(Order.ordered_at, window))
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
                func.sum(Order.cost_total).label("cost"),
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
            lookback = _bucket_before(window.start, keys.granularity)
        else:
            current_label = EMPTY
            previous_label = EMPTY
            lookback = window.start - (window.end - window.start)
        grp: ColumnElement[Any] = (
            getattr(Customer, keys.group_by.value) if keys.group_by else EMPTY
        )
        current = (
            select(Order.customer_id.label("cid"), current_label.label("bucket"))
            .where(_sold(), _in(Order.ordered_at, window))
            .distinct()
            .subquery("cur")
        )
        # Buyers of each earlier period, labelled with the period they may be retained into.
        previous_end = window.end if keys.granularity else window.start
        previous = (
            select(Order.customer_id.label("cid"), previous_label.label("bucket"))
            .where(_sold(), _in(Order.ordered_at, Window(lookback, previous_end)))
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
            )
            .select_from(Complaint)
            .where(_in(Complaint.opened_at, window))
            .group_by(*keys.grouping())
        )
        if keys.group_by:
            stmt = stmt.join(Customer, Customer.id == Complaint.customer_id)
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
            .where(_in(Interaction.occurred_at, window))
            .group_by(*keys.grouping())
        )
        if keys.group_by:
            stmt = stmt.join(Customer, Customer.id == Interaction.customer_id)
        return await self._all(stmt)


def _bucket_before(instant: datetime, granularity: Granularity) -> datetime:
    """The start of the bucket before the one starting at `instant` (a bucket start)."""
    if granularity is Granularity.DAY:
        return instant - timedelta(days=1)
    if granularity is Granularity.WEEK:
        return instant - timedelta(days=7)
    year, month = (instant.year, instant.month - 1) if instant.month > 1 else (instant.year - 1, 12)
    return instant.replace(year=year, month=month, day=1)
