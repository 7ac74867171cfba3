"""The audit ledger: append-only events with their accesses, sealed into signed blocks.

Only ids, field names and modes are stored here, never a personal value.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped

from server.data.base import Base, DataClass, column, timestamp

INT = DataClass.INTERNAL


class AuditEvent(Base):
    """One operation. `seq` is its arrival order (search and paging; a sequence on
    PostgreSQL, so appends take no lock); the sealer later gives it a `block` and its
    `position`, the ledger's gap-free sequence number. `hash` covers the entry's content;
    entries from before blocks also carry `prev_hash`, the chain they were written in."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_subject_time", "subject", "occurred_at"),
        # The sealer's queue (`block IS NULL` in arrival order) and a block's entries.
        Index("ix_audit_events_block_seq", "block", "seq"),
    )

    id: Mapped[uuid.UUID] = column(INT, Uuid, primary_key=True)
    seq: Mapped[int] = column(INT, BigInteger, unique=True)
    block: Mapped[int | None] = column(INT, BigInteger, nullable=True)
    position: Mapped[int | None] = column(INT, BigInteger, nullable=True, unique=True)
    occurred_at: Mapped[datetime] = timestamp(index=True)
    subject: Mapped[str] = column(INT, String(128))
    roles: Mapped[list[str]] = column(INT, JSON)
    api_key_id: Mapped[uuid.UUID | None] = column(INT, Uuid)
    purpose: Mapped[str | None] = column(INT, String(32))
    operation_type: Mapped[str] = column(INT, String(16))
    operation_name: Mapped[str | None] = column(INT, String(128))
    query_hash: Mapped[str | None] = column(INT, String(64))
    client_addr: Mapped[str | None] = column(INT, String(64))
    user_agent: Mapped[str | None] = column(INT, String(256))
    request_id: Mapped[str | None] = column(INT, String(64))
    outcome: Mapped[str] = column(INT, String(16), index=True)
    prev_hash: Mapped[str | None] = column(INT, String(64), nullable=True)
    hash: Mapped[str] = column(INT, String(64))


class AuditAccess(Base):
    """What one operation touched of one object type: fields revealed with modes, denials."""

    __tablename__ = "audit_accesses"

    id: Mapped[int] = column(INT, BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    event_id: Mapped[uuid.UUID] = column(INT, Uuid, ForeignKey("audit_events.id"), index=True)
    object_type: Mapped[str] = column(INT, String(64))
    # Wide enough for qualified actions such as "lookup:national_id".
    action: Mapped[str] = column(INT, String(64))
    fields: Mapped[dict[str, str]] = column(INT, JSON)
    denied_fields: Mapped[list[str]] = column(INT, JSON)
    changed_fields: Mapped[list[str]] = column(INT, JSON)
    record_count: Mapped[int] = column(INT, Integer)


class AuditAccessRecord(Base):
    """One record id an access touched, so "who saw customer X" is an indexed lookup."""

    __tablename__ = "audit_access_records"

    access_id: Mapped[int] = column(
        INT,
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("audit_accesses.id"),
        primary_key=True,
    )
    record_id: Mapped[uuid.UUID] = column(INT, Uuid, primary_key=True, index=True)


class AuditChainHead(Base):
    """The tip of the hash chain entries were written in before blocks: frozen since, so
    `verify` can tell the migrated chain was not cut short before it was sealed."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = column(INT, Integer, primary_key=True)
    seq: Mapped[int] = column(INT, BigInteger, default=0)
    hash: Mapped[str] = column(INT, String(64))


class AuditCheckpoint(Base):
    """A signed statement of the chain tip at `seq`; verification may start from one."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = column(INT, Integer, primary_key=True, autoincrement=True)
    seq: Mapped[int] = column(INT, BigInteger, unique=True)
    hash: Mapped[str] = column(INT, String(64))
    created_at: Mapped[datetime] = timestamp()
    key_version: Mapped[int] = column(INT, Integer)
    signature: Mapped[bytes] = column(INT, LargeBinary)
    detail: Mapped[dict[str, Any]] = column(INT, JSON, default=dict)


class AuditBlock(Base):
    """A sealed block: entries `first_position..last_position`, their Merkle root, the
    previous block's hash, and an Ed25519 signature of the head (`merkle.block_head`)."""

    __tablename__ = "audit_blocks"

    number: Mapped[int] = column(INT, BigInteger, primary_key=True, autoincrement=False)
    first_position: Mapped[int] = column(INT, BigInteger)
    last_position: Mapped[int] = column(INT, BigInteger)
    merkle_root: Mapped[str] = column(INT, String(64))
    prev_hash: Mapped[str] = column(INT, String(64))
    hash: Mapped[str] = column(INT, String(64))
    sealed_at: Mapped[datetime] = timestamp()
    key_version: Mapped[int] = column(INT, Integer)
    signature: Mapped[bytes] = column(INT, LargeBinary)


class AuditSealer(Base):
    """Singleton row: on SQLite the sealer's lock (updated first in its transaction, so
    one sealer at a time); on both, when the ledger was last sealed."""

    __tablename__ = "audit_sealer"

    id: Mapped[int] = column(INT, Integer, primary_key=True)
    sealed_at: Mapped[datetime | None] = timestamp(nullable=True)
