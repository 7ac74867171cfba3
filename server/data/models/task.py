"""Tasks and reminders: who has to do what by when, optionally about one customer."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped

from server.data.base import Base, DataClass, column, new_id, timestamp

PUB, INT, PER = DataClass.PUBLIC, DataClass.INTERNAL, DataClass.PERSONAL


class Task(Base):
    """A task assigned to a user. A task on a customer follows that customer's row scope
    and seals its note with the customer's key; `source_key` ties a generated task to
    what it came from (a care-queue item, a complaint follow-up, a retention action)."""

    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("customer_id", "source_key"),
        Index("ix_tasks_assignee_status_due", "assignee_id", "status", "due_at"),
        Index("ix_tasks_team_status_due", "team", "status", "due_at"),
    )

    id: Mapped[uuid.UUID] = column(PUB, Uuid, primary_key=True, default=new_id)
    customer_id: Mapped[uuid.UUID | None] = column(
        INT, Uuid, ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    # The customer's team, or the creator's for a task without a customer.
    team: Mapped[str | None] = column(INT, String(64))
    assignee_id: Mapped[str] = column(INT, String(128))
    title: Mapped[str] = column(INT, String(200))
    note: Mapped[bytes | None] = column(PER, LargeBinary)
    kind: Mapped[str] = column(INT, String(16))
    source: Mapped[str] = column(INT, String(16))
    source_key: Mapped[str | None] = column(INT, String(128))
    # Retention tasks: the playbook action and the churn signal it answers.
    action: Mapped[str | None] = column(INT, String(32), index=True)
    signal: Mapped[str | None] = column(INT, String(32))
    status: Mapped[str] = column(INT, String(16))
    due_at: Mapped[datetime] = timestamp()
    snoozed_until: Mapped[datetime | None] = timestamp()
    done_at: Mapped[datetime | None] = timestamp()
    done_by: Mapped[str | None] = column(INT, String(128))
    created_at: Mapped[datetime] = timestamp()
    created_by: Mapped[str] = column(INT, String(128))
    updated_at: Mapped[datetime] = timestamp()
