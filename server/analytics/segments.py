"""Segment dimensions and the rows the segment queries return."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


class SegmentDimension(enum.StrEnum):
    TIER = "tier"
    LIFECYCLE = "lifecycle"
    NEED_TYPE = "need_type"
    GRADE = "grade"
    RFM = "rfm"


@dataclass(frozen=True, slots=True)
class CustomerSegment:
    customer_id: uuid.UUID
    recency: int | None
    frequency: int | None
    monetary: int | None
    last_order_at: datetime | None
    orders: int
    spend: Decimal
    tier: str
    lifecycle: str
    need_type: str
    grade: str


@dataclass(frozen=True, slots=True)
class SegmentShare:
    segment: str
    customers: int
    revenue: Decimal
    revenue_share: float | None
