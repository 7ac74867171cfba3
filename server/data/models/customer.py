"""Customer files, their data keys, consents, key-rotation progress and duplicate flags."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, MappedColumn

from server.data.base import Base, DataClass, UtcDateTime, column, new_id, timestamp
from server.data.customer_fields import CUSTOMER_FIELD_BY_NAME

PUB, INT, PER, SEN = DataClass.PUBLIC, DataClass.INTERNAL, DataClass.PERSONAL, DataClass.SENSITIVE


def field(name: str, *args: Any, **kwargs: Any) -> MappedColumn[Any]:
    """A `customers` column as the field registry (server/data/customer_fields.py)
    declares it: the data class comes from there, and so does the length of a text column,
    written as a bare `String`."""
    declared = CUSTOMER_FIELD_BY_NAME[name]
    if args and args[0] is String:
        if declared.max_length is None:
            raise TypeError(f"customer field {name} declares no length")
        args = (String(declared.max_length), *args[1:])
    elif declared.max_length is not None:
        raise TypeError(f"customer field {name} declares a length but is not text")
    return column(declared.data_class, *args, **kwargs)


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[uuid.UUID] = field("id", Uuid, primary_key=True, default=new_id)
    created_at: Mapped[datetime] = field("created_at", UtcDateTime(), index=True)
    updated_at: Mapped[datetime] = field("updated_at", UtcDateTime())
    customer_number: Mapped[str | None] = field("customer_number", String, index=True, unique=True)
    # Basic facts. Name is personal; contact and identity facts are sensitive.
    name: Mapped[bytes] = field("name", LargeBinary)
    gender: Mapped[str | None] = field("gender", String)
    birthday: Mapped[bytes | None] = field("birthday", LargeBinary)
    phone: Mapped[bytes | None] = field("phone", LargeBinary)
    email: Mapped[bytes | None] = field("email", LargeBinary)
    national_id: Mapped[bytes | None] = field("national_id", LargeBinary)
    bank_card: Mapped[bytes | None] = field("bank_card", LargeBinary)
    address: Mapped[bytes | None] = field("address", LargeBinary)
    # Blind indexes: truncated keyed HMACs of normalised values, for equality lookup only.
    phone_bidx: Mapped[int | None] = field("phone_bidx", Integer, index=True)
    email_bidx: Mapped[int | None] = field("email_bidx", Integer, index=True)
    national_id_bidx: Mapped[int | None] = field("national_id_bidx", Integer, index=True)
    bidx_key_version: Mapped[int | None] = field("bidx_key_version", Integer)
    industry: Mapped[str | None] = field("industry", String, index=True)
    company_size: Mapped[str | None] = field("company_size", String)
    region: Mapped[str | None] = field("region", String, index=True)
    occupation: Mapped[str | None] = field("occupation", String)
    source: Mapped[str | None] = field("source", String)
    # Needs profile. Free-text needs are personal; scales and choices are internal.
    preferences: Mapped[bytes | None] = field("preferences", LargeBinary)
    potential_needs: Mapped[bytes | None] = field("potential_needs", LargeBinary)
    expectations: Mapped[bytes | None] = field("expectations", LargeBinary)
    price_sensitivity: Mapped[str | None] = field("price_sensitivity", String)
    customization: Mapped[str | None] = field("customization", String)
    upgrade_intent: Mapped[str | None] = field("upgrade_intent", String)
    preferred_channel: Mapped[str | None] = field("preferred_channel", String)
    tags: Mapped[list[str]] = field("tags", JSON, default=list)
    # Segmentation, kept current by the analytics jobs.
    tier: Mapped[str | None] = field("tier", String, index=True)
    lifecycle: Mapped[str | None] = field("lifecycle", String, index=True)
    need_type: Mapped[str | None] = field("need_type", String, index=True)
    member_level: Mapped[str | None] = field("member_level", String)
    # Ownership: row scope `own` is owner_id = subject, `team` is team = principal team.
    owner_id: Mapped[str | None] = field("owner_id", String, index=True)
    team: Mapped[str | None] = field("team", String, index=True)
    referred_by_id: Mapped[uuid.UUID | None] = field(
        "referred_by_id", Uuid, ForeignKey("customers.id", ondelete="SET NULL"), index=True
    )
    merged_into_id: Mapped[uuid.UUID | None] = field(
        "merged_into_id", Uuid, ForeignKey("customers.id")
    )
    phone_verified_at: Mapped[datetime | None] = field("phone_verified_at", UtcDateTime())
    email_verified_at: Mapped[datetime | None] = field("email_verified_at", UtcDateTime())
    reviewed_at: Mapped[datetime | None] = field("reviewed_at", UtcDateTime())
    erased_at: Mapped[datetime | None] = field("erased_at", UtcDateTime())


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


class DuplicateFlag(Base):
    """Two files share a phone, email or national ID, found by a write whose caller could
    not be told (the other file outside its scope, or the field not in clear for it).

    Only ids and the field name: whoever's scope covers both files and reads the field
    in clear sees the flag and may merge them. Not owned by either customer (no
    `customer_id`): it is not part of either person's export.
    """

    __tablename__ = "duplicate_flags"
    __table_args__ = (UniqueConstraint("new_customer_id", "existing_customer_id", "field"),)

    id: Mapped[uuid.UUID] = column(PUB, Uuid, primary_key=True, default=new_id)
    # The file the write created or changed, and the file it was found to match.
    new_customer_id: Mapped[uuid.UUID] = column(
        INT, Uuid, ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    existing_customer_id: Mapped[uuid.UUID] = column(
        INT, Uuid, ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    field: Mapped[str] = column(INT, String(32))
    raised_at: Mapped[datetime] = timestamp()
    raised_by: Mapped[str] = column(INT, String(128))
