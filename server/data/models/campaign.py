"""Campaigns promoting a product to a target segment, and their recipients."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Numeric, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped

from server.data.base import Base, DataClass, column, new_id, timestamp

PUB, INT = DataClass.PUBLIC, DataClass.INTERNAL


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[uuid.UUID] = column(PUB, Uuid, primary_key=True, default=new_id)
    name: Mapped[str] = column(INT, String(200))
    product_id: Mapped[uuid.UUID | None] = column(INT, Uuid, ForeignKey("products.id"))
    segment: Mapped[dict[str, Any]] = column(INT, JSON, default=dict)
    channel: Mapped[str | None] = column(INT, String(16))
    status: Mapped[str] = column(INT, String(16), default="draft")
    created_at: Mapped[datetime] = timestamp()
    created_by: Mapped[str] = column(INT, String(128))


class CampaignRecipient(Base):
    __tablename__ = "campaign_recipients"
    __table_args__ = (UniqueConstraint("campaign_id", "customer_id"),)

    id: Mapped[uuid.UUID] = column(PUB, Uuid, primary_key=True, default=new_id)
    campaign_id: Mapped[uuid.UUID] = column(
        INT, Uuid, ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    customer_id: Mapped[uuid.UUID] = column(
        INT, Uuid, ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    added_at: Mapped[datetime] = timestamp()
    responded_at: Mapped[datetime | None] = timestamp()
    converted_at: Mapped[datetime | None] = timestamp()
    order_id: Mapped[uuid.UUID | None] = column(INT, Uuid, ForeignKey("orders.id"))
    revenue: Mapped[Decimal | None] = column(INT, Numeric(14, 2))
