"""Complaints and their status history."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Integer, LargeBinary, Numeric, String, Uuid
from sqlalchemy.orm import Mapped

from server.data.base import Base, DataClass, column, new_id, timestamp

PUB, INT, SEN = DataClass.PUBLIC, DataClass.INTERNAL, DataClass.SENSITIVE


class Complaint(Base):
    __tablename__ = "complaints"

    id: Mapped[uuid.UUID] = column(PUB, Uuid, primary_key=True, default=new_id)
    customer_id: Mapped[uuid.UUID] = column(
        INT, Uuid, ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    opened_at: Mapped[datetime] = timestamp(index=True)
    category: Mapped[str] = column(INT, String(32), index=True)
    severity: Mapped[str] = column(INT, String(16))
    status: Mapped[str] = column(INT, String(16), index=True)
    assignee_id: Mapped[str | None] = column(INT, String(128), index=True)
    order_id: Mapped[uuid.UUID | None] = column(INT, Uuid, ForeignKey("orders.id"))
    description: Mapped[bytes | None] = column(SEN, LargeBinary)
    resolution: Mapped[bytes | None] = column(SEN, LargeBinary)
    root_cause: Mapped[str | None] = column(INT, String(32))
    compensation: Mapped[Decimal | None] = column(INT, Numeric(14, 2))
    escalation_level: Mapped[int] = column(INT, Integer, default=0)
    acknowledge_due_at: Mapped[datetime | None] = timestamp()
    acknowledged_at: Mapped[datetime | None] = timestamp()
    resolve_due_at: Mapped[datetime | None] = timestamp()
    resolved_at: Mapped[datetime | None] = timestamp()
    follow_up_due_at: Mapped[datetime | None] = timestamp()
    followed_up_at: Mapped[datetime | None] = timestamp()
    rating: Mapped[int | None] = column(INT, Integer)
    closed_at: Mapped[datetime | None] = timestamp()


class ComplaintEvent(Base):
    """One move of a complaint's state machine: who, when, from and to."""

    __tablename__ = "complaint_events"

    id: Mapped[uuid.UUID] = column(PUB, Uuid, primary_key=True, default=new_id)
    complaint_id: Mapped[uuid.UUID] = column(
        INT, Uuid, ForeignKey("complaints.id", ondelete="CASCADE"), index=True
    )
    customer_id: Mapped[uuid.UUID] = column(
        INT, Uuid, ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    from_status: Mapped[str | None] = column(INT, String(16))
    to_status: Mapped[str] = column(INT, String(16))
    actor: Mapped[str] = column(INT, String(128))
    at: Mapped[datetime] = timestamp()
    note: Mapped[bytes | None] = column(SEN, LargeBinary)
