"""A customer's further contact points: mobiles, landlines, WeChat IDs and, for company
customers, contact persons with their own name and phone. Sealed like the file's own
contacts, under the customer's data key."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped

from server.data.base import Base, DataClass, column, new_id, timestamp

PUB, INT, PER, SEN = DataClass.PUBLIC, DataClass.INTERNAL, DataClass.PERSONAL, DataClass.SENSITIVE


class ContactPoint(Base):
    __tablename__ = "customer_contact_points"

    id: Mapped[uuid.UUID] = column(PUB, Uuid, primary_key=True, default=new_id)
    customer_id: Mapped[uuid.UUID] = column(
        INT, Uuid, ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    # mobile | landline | wechat | contact_person (server/contact/service.py).
    kind: Mapped[str] = column(INT, String(16))
    # The number or WeChat ID; a contact person's phone (may be absent).
    value: Mapped[bytes | None] = column(SEN, LargeBinary)
    # A contact person's name; absent on the other kinds.
    person_name: Mapped[bytes | None] = column(PER, LargeBinary)
    # What the point is for ("office", "采购经理"): a working label, not a fact about anyone.
    label: Mapped[str | None] = column(INT, String(64))
    created_at: Mapped[datetime] = timestamp()
    updated_at: Mapped[datetime] = timestamp()
    created_by: Mapped[str] = column(INT, String(128))
