"""A customer's further contact points: mobiles, landlines, WeChat IDs and, for company
customers, contact persons with their own name and phone. Sealed like the file's own
contacts, under the customer's data key, and found by value through a blind index like
theirs."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped

from server.data.base import Base, DataClass, column, new_id, timestamp

PUB, INT, PER, SEN = DataClass.PUBLIC, DataClass.INTERNAL, DataClass.PERSONAL, DataClass.SENSITIVE


class ContactPoint(Base):
    __tablename__ = "customer_contact_points"
    __table_args__ = (Index("ix_customer_contact_points_value_bidx", "value_bidx"),)

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
    # Blind index of the value (a number without its extension, a WeChat ID case-folded:
    # `Vault.contact_point_index`), under the blind-index key version beside it; a search
    # handle, not a fact about anyone: never read through the API, never exported. Absent
    # on a contact person without a phone, and on points written before the index
    # existed until `custos keys rotate --blind-index` computes it.
    value_bidx: Mapped[int | None] = column(INT, Integer, info={"search_handle": True})
    bidx_key_version: Mapped[int | None] = column(INT, Integer, info={"search_handle": True})
