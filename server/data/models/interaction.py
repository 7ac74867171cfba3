"""Interactions: every contact with a customer, with response timers for inbound ones."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped

from server.data.base import Base, DataClass, column, new_id, timestamp

PUB, INT, SEN = DataClass.PUBLIC, DataClass.INTERNAL, DataClass.SENSITIVE


class Interaction(Base):
    __tablename__ = "interactions"
    # A customer's page, newest first with ties by id, is one backward scan of this index.
    __table_args__ = (
        Index("ix_interactions_customer_time_id", "customer_id", "occurred_at", "id"),
    )

    id: Mapped[uuid.UUID] = column(PUB, Uuid, primary_key=True, default=new_id)
    customer_id: Mapped[uuid.UUID] = column(
        INT, Uuid, ForeignKey("customers.id", ondelete="CASCADE")
    )
    occurred_at: Mapped[datetime] = timestamp()
    channel: Mapped[str] = column(INT, String(16))
    direction: Mapped[str] = column(INT, String(8))
    kind: Mapped[str] = column(INT, String(16))
    complex: Mapped[bool] = column(INT, default=False)
    agent_id: Mapped[str | None] = column(INT, String(128), index=True)
    subject: Mapped[bytes | None] = column(SEN, LargeBinary)
    notes: Mapped[bytes | None] = column(SEN, LargeBinary)
    first_response_due_at: Mapped[datetime | None] = timestamp()
    first_responded_at: Mapped[datetime | None] = timestamp()
    solution_due_at: Mapped[datetime | None] = timestamp()
    solved_at: Mapped[datetime | None] = timestamp()
