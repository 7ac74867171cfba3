"""Loyalty points ledger and referrals."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Uuid
from sqlalchemy.orm import Mapped

from server.data.base import Base, DataClass, column, new_id, timestamp

PUB, INT = DataClass.PUBLIC, DataClass.INTERNAL


class LoyaltyEntry(Base):
    """One reasoned change of a customer's points; `balance_after` is never negative."""

    __tablename__ = "loyalty_entries"

    id: Mapped[uuid.UUID] = column(PUB, Uuid, primary_key=True, default=new_id)
    customer_id: Mapped[uuid.UUID] = column(
        INT, Uuid, ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = timestamp()
    points: Mapped[int] = column(INT, Integer)
    reason: Mapped[str] = column(INT, String(32))
    order_id: Mapped[uuid.UUID | None] = column(INT, Uuid, ForeignKey("orders.id"))
    referral_id: Mapped[uuid.UUID | None] = column(INT, Uuid, ForeignKey("referrals.id"))
    balance_after: Mapped[int] = column(INT, Integer)
    actor: Mapped[str] = column(INT, String(128))


class Referral(Base):
    __tablename__ = "referrals"

    id: Mapped[uuid.UUID] = column(PUB, Uuid, primary_key=True, default=new_id)
    customer_id: Mapped[uuid.UUID] = column(
        INT, Uuid, ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    referred_customer_id: Mapped[uuid.UUID] = column(
        INT, Uuid, ForeignKey("customers.id", ondelete="CASCADE"), unique=True
    )
    at: Mapped[datetime] = timestamp()
    bonus_points: Mapped[int] = column(INT, Integer, default=0)
