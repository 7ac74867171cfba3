"""Analytics for managers and analysts: authorize, compute in SQL, audit.

Aggregate results (metrics, segment breakdowns, the churn model) carry no personal value;
they are audited as reads of `metrics` or `segment` with no record ids. Per-customer
results (segment, churn risk, likely buyers) are audited with the customer ids returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from server.analytics.metrics import MetricsCalculator, MetricsReport
from server.analytics.repository import Granularity, GroupBy
from server.caller import Caller
from server.errors import ForbiddenError

METRICS = "metrics"
SEGMENT = "segment"


@dataclass(frozen=True, slots=True)
class AnalyticsConfig:
    """Tunable rules; defaults follow common practice and are documented in the README."""

    cost_per_interaction: Decimal = Decimal("15.00")


class AnalyticsService:
    def __init__(self, config: AnalyticsConfig | None = None) -> None:
        self.config = config or AnalyticsConfig()

    def _require(self, caller: Caller, obj: str) -> None:
        if not caller.access.allows(obj, "read"):
            caller.audit.deny(obj, "read")
            raise ForbiddenError(f"not allowed to read {obj}")

    async def metrics(
        self,
        session: AsyncSession,
        caller: Caller,
        *,
        start: date,
        end: date,
        granularity: Granularity | None,
        group_by: GroupBy | None,
    ) -> MetricsReport:
        self._require(caller, METRICS)
        report = await MetricsCalculator(self.config.cost_per_interaction).report(
            session, start=start, end=end, granularity=granularity, group_by=group_by
        )
        caller.audit.read(METRICS, (), {})
        return report
