"""Customer files, their data keys, consents and key-rotation progress."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped

from server.data.base import Base, DataClass, column, new_id, timestamp

PUB, INT, PER, SEN = DataClass.PUBLIC, DataClass.INTERNAL, DataClass.PERSONAL, DataClass.SENSITIVE


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[uuid.UUID] = column(PUB, Uuid, primary_key=True, default=new_id)
    created_at: Mapped[datetime] = timestamp(INT, index=True)
    updated_at: Mapped[datetime] = timestamp(INT)
    # Basic facts. Name is personal; contact and identity facts are sensitive.
    name: Mapped[bytes] = column(PER, LargeBinary)
    gender: Mapped[str | None] = column(INT, String(16))
    birthday: Mapped[bytes | None] = column(SEN, LargeBinary)
    phone: Mapped[bytes | None] = column(SEN, LargeBinary)
    email: Mapped[bytes | None] = column(SEN, LargeBinary)
    national_id: Mapped[bytes | None] = column(SEN, LargeBinary)
    bank_card: Mapped[bytes | None] = column(SEN, LargeBinary)
    address: Mapped[bytes | None] = column(SEN, LargeBinary)
    # Blind indexes: truncated keyed HMACs of normalised values, for equality lookup only.
    phone_bidx: Mapped[int | None] = column(INT, Integer, index=True)
    email_bidx: Mapped[int | None] = column(INT, Integer, index=True)
    national_id_bidx: Mapped[int | None] = column(INT, Integer, index=True)
    bidx_key_version: Mapped[int | None] = column(INT, Integer)
    industry: Mapped[str | None] = column(INT, String(64), index=True)
    company_size: Mapped[str | None] = column(INT, String(32))
    region: Mapped[str | None] = column(INT, String(64), index=True)
    occupation: Mapped[str | None] = column(INT, String(64))
    source: Mapped[str | None] = column(INT, String(32))
    # Needs profile. Free-text needs are personal; scales and choices are internal.
    preferences: Mapped[bytes | None] = column(PER, LargeBinary)
    potential_needs: Mapped[bytes | None] = column(PER, LargeBinary)
    expectations: Mapped[bytes | None] = column(PER, LargeBinary)
    price_sensitivity: Mapped[str | None] = column(INT, String(16))
    customization: Mapped[str | None] = column(INT, String(16))
    upgrade_intent: Mapped[str | None] = column(INT, String(16))
    preferred_channel: Mapped[str | None] = column(INT, String(16))
    tags: Mapped[list[str]] = column(INT, JSON, default=list)
    # Segmentation, kept current by the analytics jobs.
    tier: Mapped[str | None] = column(INT, String(8), index=True)
    lifecycle: Mapped[str | None] = column(INT, String(16), index=True)
    need_type: Mapped[str | None] = column(INT, String(24), index=True)
    member_level: Mapped[str | None] = column(INT, String(16))
    # Ownership: row scope `own` is owner_id = subject, `team` is team = principal team.
    owner_id: Mapped[str | None] = column(INT, String(128), index=True)
    team: Mapped[str | None] = column(INT, String(64), index=True)
    referred_by_id: Mapped[uuid.UUID | None] = column(
        INT, Uuid, ForeignKey("customers.id", ondelete="SET NULL"), index=True
    )
    merged_into_id: Mapped[uuid.UUID | None] = column(INT, Uuid, ForeignKey("customers.id"))
    phone_verified_at: Mapped[datetime | None] = timestamp()
    email_verified_at: Mapped[datetime | None] = timestamp()
    reviewed_at: Mapped[datetime | None] = timestamp()
    erased_at: Mapped[datetime | None] = timestamp()


class CustomerKey(Base):
    """A customer's data key, wrapped by a key-encryption key version."""

    __tablename__ = "customer_keys"

    customer_id: Mapped[uuid.UUID] = column(
        INT, Uuid, ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    # NULL once shredded: nothing of this customer decrypts any more.
    wrapped_dek: Mapped[bytes | None] = column(INT, LargeBinary)
    kek_version: Mapped[int] = column(INT, Integer, index=True)
    created_at: Mapped[datetime] = timestamp()
    rotated_at: Mapped[datetime | None] = timestamp()
    shredded_at: Mapped[datetime | None] = timestamp()


class Consent(Base):
    __tablename__ = "consents"
    __table_args__ = (Index("ix_consents_customer_purpose", "customer_id", "purpose"),)

    id: Mapped[uuid.UUID] = column(PUB, Uuid, primary_key=True, default=new_id)
    customer_id: Mapped[uuid.UUID] = column(
        INT, Uuid, ForeignKey("customers.id", ondelete="CASCADE")
    )
    purpose: Mapped[str] = column(INT, String(32))
    granted_at: Mapped[datetime] = timestamp()
    withdrawn_at: Mapped[datetime | None] = timestamp()
    source: Mapped[str] = column(INT, String(64))
    recorded_by: Mapped[str] = column(INT, String(128))


class KeyRotation(Base):
    """A resumable rotation run: the cursor says how far the rewrap has got."""

    __tablename__ = "key_rotations"

    id: Mapped[int] = column(INT, Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = column(INT, String(16))  # "kek" | "blind_index"
    from_version: Mapped[int | None] = column(INT, Integer)
    to_version: Mapped[int] = column(INT, Integer)
    cursor: Mapped[uuid.UUID | None] = column(INT, Uuid)
    done: Mapped[int] = column(INT, Integer, default=0)
    started_at: Mapped[datetime] = timestamp()
    finished_at: Mapped[datetime | None] = timestamp()
    detail: Mapped[dict[str, Any]] = column(INT, JSON, default=dict)
