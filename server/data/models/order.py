"""Products, orders, their items and status timeline. Money is exact decimal."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, ForeignKey, Index, Integer, Numeric, String, Uuid, true
from sqlalchemy.orm import Mapped

from server.data.base import Base, DataClass, column, new_id, timestamp

PUB, INT = DataClass.PUBLIC, DataClass.INTERNAL
MONEY = Numeric(14, 2)


class Product(Base):
    __tablename__ = "products"

    id: Mapped[uuid.UUID] = column(PUB, Uuid, primary_key=True, default=new_id)
    sku: Mapped[str] = column(PUB, String(64), unique=True)
    name: Mapped[str] = column(PUB, String(200))
    category: Mapped[str] = column(PUB, String(64), index=True)
    unit_price: Mapped[Decimal] = column(PUB, MONEY)
    unit_cost: Mapped[Decimal] = column(INT, MONEY)
    is_new: Mapped[bool] = column(PUB, Boolean, default=False)
    launched_at: Mapped[datetime | None] = timestamp(PUB)
    # A deactivated product stays on past orders but takes no new ones.
    active: Mapped[bool] = column(PUB, Boolean, default=True, server_default=true())


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (Index("ix_orders_customer_time", "customer_id", "ordered_at"),)

    id: Mapped[uuid.UUID] = column(PUB, Uuid, primary_key=True, default=new_id)
    customer_id: Mapped[uuid.UUID] = column(
        INT, Uuid, ForeignKey("customers.id", ondelete="CASCADE")
    )
    ordered_at: Mapped[datetime] = timestamp(index=True)
    status: Mapped[str] = column(INT, String(16), index=True)
    channel: Mapped[str | None] = column(INT, String(16))
    currency: Mapped[str] = column(INT, String(3), default="CNY")
    total: Mapped[Decimal] = column(INT, MONEY)
    cost_total: Mapped[Decimal] = column(INT, MONEY)
    external_ref: Mapped[str | None] = column(INT, String(64))
    # When delivery was promised to the customer: on-time delivery is measured against it.
    promised_at: Mapped[datetime | None] = timestamp()


class OrderItem(Base):
    __tablename__ = "order_items"

    id: Mapped[uuid.UUID] = column(PUB, Uuid, primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = column(
        INT, Uuid, ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    customer_id: Mapped[uuid.UUID] = column(
        INT, Uuid, ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    product_id: Mapped[uuid.UUID] = column(INT, Uuid, ForeignKey("products.id"), index=True)
    quantity: Mapped[int] = column(INT, Integer)
    unit_price: Mapped[Decimal] = column(INT, MONEY)
    unit_cost: Mapped[Decimal] = column(INT, MONEY)
    line_total: Mapped[Decimal] = column(INT, MONEY)


class OrderStatusEvent(Base):
    __tablename__ = "order_status_events"

    id: Mapped[uuid.UUID] = column(PUB, Uuid, primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = column(
        INT, Uuid, ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    customer_id: Mapped[uuid.UUID] = column(
        INT, Uuid, ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = column(INT, String(16))
    at: Mapped[datetime] = timestamp()
    actor: Mapped[str] = column(INT, String(128))
    tracking_note: Mapped[str | None] = column(INT, String(200))
