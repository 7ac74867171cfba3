"""The audit ledger: append-only events with their accesses, sealed into signed blocks.

Only ids, field names and modes are stored here, never a personal value.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Uuid,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped
from sqlalchemy.types import TypeDecorator, TypeEngine

from server.data.base import Base, DataClass, column, for_dialect, timestamp

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


class RecordIds(TypeDecorator[list[uuid.UUID]]):
    """The record ids of one access, packed in one value: `uuid[]` on PostgreSQL, 16 bytes
    an id on SQLite. Stored in the order they were recorded (the entry's hash sorts them
    itself, so it does not depend on this layout)."""

    impl = LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(ARRAY(Uuid()))
        return dialect.type_descriptor(LargeBinary())

    def process_bind_param(self, value: list[uuid.UUID] | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "postgresql":
            return list(value)
        return pack_record_ids(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> list[uuid.UUID] | None:
        if value is None:
            return None
        if dialect.name == "postgresql":
            return [v if isinstance(v, uuid.UUID) else uuid.UUID(str(v)) for v in value]
        return unpack_record_ids(bytes(value))


def pack_record_ids(ids: Sequence[uuid.UUID]) -> bytes:
    return b"".join(record_id.bytes for record_id in ids)


def unpack_record_ids(packed: bytes) -> list[uuid.UUID]:
    return [uuid.UUID(bytes=packed[i : i + 16]) for i in range(0, len(packed), 16)]


def record_key(record_id: uuid.UUID) -> int:
    """The key SQLite indexes a record id under: its last 8 bytes as a signed integer.
    The last half, because ids are time-ordered (version 7): ids created in the same
    millisecond share their first 6 bytes, while the last 8 are random but for 2 bits."""
    return int.from_bytes(record_id.bytes[8:], "big", signed=True)


class AuditAccess(Base):
    """What one operation touched of one object type: fields revealed with modes, denials,
    and the ids of the records it touched (`record_ids`, packed: one value per access, not
    one row per id). "Who saw customer X" is an indexed lookup on both databases: a GIN
    index on PostgreSQL (`record_ids @> ARRAY[X]`), `audit_record_keys` on SQLite."""

    __tablename__ = "audit_accesses"
    __table_args__ = (
        Index(
            "ix_audit_accesses_record_ids",
            "record_ids",
            postgresql_using="gin",
            info=for_dialect("postgresql"),
        ),
    )

    id: Mapped[int] = column(INT, BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    event_id: Mapped[uuid.UUID] = column(INT, Uuid, ForeignKey("audit_events.id"), index=True)
    object_type: Mapped[str] = column(INT, String(64))
    # Wide enough for qualified actions such as "lookup:national_id".
    action: Mapped[str] = column(INT, String(64))
    fields: Mapped[dict[str, str]] = column(INT, JSON)
    denied_fields: Mapped[list[str]] = column(INT, JSON)
    changed_fields: Mapped[list[str]] = column(INT, JSON)
    record_count: Mapped[int] = column(INT, Integer)
    record_ids: Mapped[list[uuid.UUID]] = column(INT, RecordIds)


class AuditRecordKey(Base):
    """SQLite's index of the packed record ids (the table exists only there): one row per
    id an access touched, keyed by the id's `record_key`, with the id's place in the
    access's `record_ids`, so a match is confirmed against the packed id itself (two ids
    may share a key). About 20 bytes an id without a rowid, against ~120 for a row of
    (access, id as 32 hex digits) with its two indexes; PostgreSQL needs none of it, its
    GIN index on the array answers `@>` directly."""

    __tablename__ = "audit_record_keys"
    __table_args__ = {"info": for_dialect("sqlite"), "sqlite_with_rowid": False}

    record_key: Mapped[int] = column(INT, BigInteger, primary_key=True, autoincrement=False)
    access_id: Mapped[int] = column(
        INT, BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    ordinal: Mapped[int] = column(INT, Integer, primary_key=True, autoincrement=False)


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
