"""Analytics for managers and analysts: authorize, compute in SQL, audit.

Aggregate results (metrics, segment breakdowns, the churn model, co-purchase rules) carry
no personal value; they are audited as reads of `metrics` or `segment` with no record
ids. Per-customer results (segments, churn risk, likely buyers) are audited with the ids
of the customers returned, and only customers under the caller's row scope are returned.

Every aggregate is computed over the caller's population: its customer row scope, less
the customers who withdrew analytics consent (`analysable`). Grouped metrics suppress
groups smaller than the minimum cell size.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_
from sqlalchemy.ext.asyncio import AsyncSession

from server.analytics.churn import ChurnModel, ChurnRisk, ModelCache, assess, fit_histories
from server.analytics.metrics import (
    MetricsCalculator,
    MetricsReport,
    SalesShare,
    sales_breakdown,
)
from server.analytics.repository import (
    MAX_CHANNELS,
    AnalyticsRepository,
    ChurnRepository,
    CoPurchaseRepository,
    Granularity,
    GroupBy,
    OrderChannels,
    SalesDimension,
    SegmentRepository,
    SegmentWindows,
    TierRule,
    analysable,
)
from server.analytics.segments import CustomerSegment, SegmentDimension, SegmentShare
from server.business_calendar import DEFAULT_TIMEZONE
from server.caller import Caller
from server.config import Settings
from server.customer.repository import scope_predicate
from server.errors import NotFoundError, ValidationError
from server.paging import Page, page_of

METRICS = "metrics"
SEGMENT = "segment"
SEGMENT_FIELDS = ("tier", "lifecycle", "need_type")


@dataclass(frozen=True, slots=True)
class AnalyticsConfig:
    """Tunable rules; defaults follow common practice and are documented in the README."""

    cost_per_interaction: Decimal = Decimal("15.00")
    tier_rule: TierRule = field(default_factory=TierRule)
    segment_windows: SegmentWindows = field(default_factory=SegmentWindows)
    # The business's time zone: metrics periods and buckets are its days.
    timezone: str = DEFAULT_TIMEZONE
    # Grouped metrics: a group with fewer customers is suppressed (CUSTOS_METRICS_MIN_CELL).
    min_cell: int = 5

    @classmethod
    def from_settings(cls, settings: Settings) -> AnalyticsConfig:
        return cls(
            timezone=settings.business_timezone,
            cost_per_interaction=settings.analytics_cost_per_interaction,
            min_cell=settings.metrics_min_cell,
            tier_rule=TierRule(
                high_spend=settings.analytics_tier_high_spend,
                high_orders=settings.analytics_tier_high_orders,
                high_margin=settings.analytics_tier_high_margin,
                mid_spend=settings.analytics_tier_mid_spend,
                mid_orders=settings.analytics_tier_mid_orders,
            ),
        )


@dataclass(frozen=True, slots=True)
class CoPurchaseRule:
    product_id: uuid.UUID
    orders_with_both: int
    support: float
    confidence: float
    lift: float


@dataclass(frozen=True, slots=True)
class LikelyBuyer:
    customer_id: uuid.UUID
    score: float


def check_channels(channels: OrderChannels | None) -> OrderChannels | None:
    """At most MAX_CHANNELS channels each way, each 1 to 16 characters (an order's
    channel column); the error names no value."""
    if channels is None:
        return None
    for field_name, values in (
        ("channels", channels.include or ()),
        ("exclude_channels", channels.exclude),
    ):
        if len(values) > MAX_CHANNELS:
            raise ValidationError(f"at most {MAX_CHANNELS} channels", field=field_name)
        if any(not 1 <= len(v) <= 16 for v in values):
            raise ValidationError("a channel is 1 to 16 characters", field=field_name)
    return channels


def end_of(day: date) -> datetime:
    """The instant just after `day` ends: as-of queries include the whole day."""
    return datetime.combine(day + timedelta(days=1), time(), UTC)


class AnalyticsService:
    def __init__(self, config: AnalyticsConfig | None = None) -> None:
        self.config = config or AnalyticsConfig()
        self.models = ModelCache()

    # --- access ---------------------------------------------------------------------------

    def _segment_scope(self, caller: Caller) -> ColumnElement[bool]:
        """Segments are read over the customers in the caller's row scope."""
        return scope_predicate(caller.gate.row_scope(SEGMENT, "read"), caller.principal)

    def _population(self, caller: Caller, obj: str) -> ColumnElement[bool]:
        """The customers an aggregate of `obj` counts: the caller's row scope for reading
        it, less those opted out of analytics."""
        scope = scope_predicate(caller.gate.row_scope(obj, "read"), caller.principal)
        return and_(scope, analysable())

    def _model_key(self, caller: Caller) -> tuple[str, str | None]:
        """Which population a cached churn model was fitted on: the scope and whose."""
        principal = caller.principal
        scope = caller.gate.row_scope(SEGMENT, "read")
        whose = {"team": principal.team, "own": principal.subject}.get(scope.value)
        return scope.value, whose

    # --- metrics --------------------------------------------------------------------------

    async def metrics(
        self,
        session: AsyncSession,
        caller: Caller,
        *,
        start: date,
        end: date,
        granularity: Granularity | None,
        group_by: GroupBy | None,
        channels: OrderChannels | None = None,
        now: datetime | None = None,
    ) -> MetricsReport:
        """KPIs over the caller's population (its `metrics` row scope: a manager's team,
        an agent's own customers); order figures over the orders of `channels`."""
        population = self._population(caller, METRICS)
        calculator = MetricsCalculator(
            self.config.cost_per_interaction,
            self.config.timezone,
            min_cell=self.config.min_cell,
        )
        report = await calculator.report(
            session,
            start=start,
            end=end,
            granularity=granularity,
            group_by=group_by,
            population=population,
            channels=check_channels(channels),
            now=now,
        )
        caller.audit.read(METRICS, (), {})
        return report

    async def sales_breakdown(
        self,
        session: AsyncSession,
        caller: Caller,
        *,
        start: date,
        end: date,
        by: SalesDimension,
        channels: OrderChannels | None = None,
    ) -> list[SalesShare]:
        """Sales per product, category, channel or region over the caller's population,
        in the business's days; small cells suppressed like grouped metrics."""
        population = self._population(caller, METRICS)
        repo = AnalyticsRepository(
            session,
            self.config.timezone,
            population=population,
            channels=check_channels(channels),
        )
        shares = await sales_breakdown(
            repo,
            start=start,
            end=end,
            dimension=by,
            timezone=self.config.timezone,
            min_cell=self.config.min_cell,
        )
        caller.audit.read(METRICS, (), {})
        return shares

    # --- segments -------------------------------------------------------------------------

    async def segments_of(
        self, session: AsyncSession, caller: Caller, ids: Sequence[uuid.UUID], as_of: date
    ) -> dict[uuid.UUID, CustomerSegment]:
        """Segments of customers the caller already sees (ids come from a scoped read)."""
        caller.gate.require(SEGMENT, "read")
        rows = await SegmentRepository(session).for_customers(
            end_of(as_of), self.config.tier_rule, self.config.segment_windows, ids
        )
        out = {
            r.id: CustomerSegment(
                customer_id=r.id,
                recency=r.r,
                frequency=r.f,
                monetary=r.m,
                last_order_at=r.last_order,
                orders=int(r.orders_all),
                spend=Decimal(r.spend_all or 0).quantize(Decimal("0.01")),
                tier=r.tier,
                lifecycle=r.lifecycle,
                need_type=r.need_type,
                grade=r.grade,
            )
            for r in rows
        }
        caller.audit.read(SEGMENT, out.keys(), {})
        return out

    async def segment_breakdown(
        self, session: AsyncSession, caller: Caller, *, as_of: date, by: SegmentDimension
    ) -> list[SegmentShare]:
        """Customers and the last 365 days' revenue per segment, over the caller's scope."""
        scope = self._segment_scope(caller)
        rows = await SegmentRepository(session).breakdown(
            end_of(as_of), self.config.tier_rule, self.config.segment_windows, scope, by.value
        )
        total = sum((Decimal(r.revenue or 0) for r in rows), Decimal(0))
        caller.audit.read(SEGMENT, (), {})
        return [
            SegmentShare(
                segment=str(r.segment),
                customers=int(r.customers),
                revenue=Decimal(r.revenue or 0).quantize(Decimal("0.01")),
                revenue_share=float(Decimal(r.revenue or 0) / total) if total else None,
            )
            for r in rows
        ]

    async def refresh_segments(self, session: AsyncSession, caller: Caller, as_of: date) -> int:
        """Write tier, lifecycle and need type onto every live customer, set-based."""
        caller.gate.require(SEGMENT, "manage")
        updated = await SegmentRepository(session).refresh(
            end_of(as_of), self.config.tier_rule, self.config.segment_windows
        )
        caller.audit.change(SEGMENT, "refresh", None, SEGMENT_FIELDS)
        return updated

    # --- churn ----------------------------------------------------------------------------

    async def _model(self, session: AsyncSession, caller: Caller, as_of: date) -> ChurnModel | None:
        """The BG/NBD fit over the caller's population, cached per population and data."""
        population = self._population(caller, SEGMENT)
        repo = ChurnRepository(session)
        key = (as_of, self._model_key(caller), await repo.data_version(as_of, population))
        model = self.models.get(key)
        if model is None:
            rows = await repo.history_counts(as_of, population)
            # Fewer buyers than a metrics cell: too few to describe, and to fit on.
            if sum(int(r.n) for r in rows) < max(self.config.min_cell, 1) or not rows:
                return None
            model = fit_histories(as_of, rows)
            self.models.put(key, model)
        return model

    async def churn_model(self, session: AsyncSession, caller: Caller, as_of: date) -> ChurnModel:
        caller.gate.require(SEGMENT, "read")
        model = await self._model(session, caller, as_of)
        caller.audit.read(SEGMENT, (), {})
        if model is None:
            raise NotFoundError(
                "too few purchase histories in scope up to that day to fit a model on"
            )
        return model

    async def churn_risks(
        self, session: AsyncSession, caller: Caller, ids: Sequence[uuid.UUID], as_of: date
    ) -> dict[uuid.UUID, ChurnRisk]:
        scope = self._segment_scope(caller)
        rows = await ChurnRepository(session).signals(as_of, scope=scope, ids=ids)
        risks = assess(await self._model(session, caller, as_of), rows)
        caller.audit.read(SEGMENT, (r.customer_id for r in risks), {})
        return {r.customer_id: r for r in risks}

    async def at_risk_customers(
        self,
        session: AsyncSession,
        caller: Caller,
        *,
        as_of: date,
        first: int,
        after: uuid.UUID | None,
        min_score: float,
    ) -> Page[ChurnRisk]:
        """Customers in scope with score >= min_score, riskiest first (then by id).

        The model is evaluated per customer in Python (it needs numerical functions), on
        one aggregate row per customer; the cursor is the last customer id of a page.
        """
        if not 0.0 <= min_score <= 1.0:
            raise ValidationError("minScore must be between 0 and 1", field="min_score")
        scope = self._segment_scope(caller)
        rows = await ChurnRepository(session).signals(as_of, scope=scope)
        model = await self._model(session, caller, as_of)
        risks = [r for r in assess(model, rows) if r.score >= min_score]
        risks.sort(key=lambda r: (-r.score, r.customer_id))
        start = 0
        if after is not None:
            positions = [i for i, r in enumerate(risks) if r.customer_id == after]
            if not positions:
                raise ValidationError("cursor is not valid", code="BAD_CURSOR", field="after")
            start = positions[0] + 1
        page = page_of(risks[start : start + first + 1], first)
        caller.audit.read(SEGMENT, (r.customer_id for r in page.items), {})
        return page

    # --- co-purchase ----------------------------------------------------------------------

    async def frequently_bought_with(
        self, session: AsyncSession, caller: Caller, product_id: uuid.UUID, first: int
    ) -> list[CoPurchaseRule]:
        """Association rules product -> other product, by lift then confidence."""
        repo = CoPurchaseRepository(session, population=self._population(caller, METRICS))
        if not await repo.product_exists(product_id):
            raise NotFoundError("product not found")
        rows = await repo.rules_from(product_id, first)
        caller.audit.read(METRICS, (), {})
        return [
            CoPurchaseRule(
                r.product_id, int(r.both), float(r.support), float(r.confidence), float(r.lift)
            )
            for r in rows
        ]

    async def likely_buyers(
        self,
        session: AsyncSession,
        caller: Caller,
        product_id: uuid.UUID,
        *,
        first: int,
        after: uuid.UUID | None,
    ) -> Page[LikelyBuyer]:
        """Customers in the caller's scope likely to buy the product: they bought one of its
        antecedents (a rule with lift > 1) but not the product. For campaign targeting."""
        scope = self._segment_scope(caller)
        repo = CoPurchaseRepository(session, population=self._population(caller, SEGMENT))
        if not await repo.product_exists(product_id):
            raise NotFoundError("product not found")
        rows = await repo.likely_buyers(product_id, scope=scope, after=after, limit=first)
        page = page_of(rows, first).map(lambda r: LikelyBuyer(r.id, float(r.score)))
        caller.audit.read(SEGMENT, (b.customer_id for b in page.items), {})
        return page

    async def products(self, session: AsyncSession, ids: Sequence[uuid.UUID]) -> dict[Any, Any]:
        repo = CoPurchaseRepository(session, population=analysable())
        return {r.id: r for r in await repo.products(ids)}
