"""Declarative base with a constraint naming convention and column data classes."""

from __future__ import annotations

import enum
import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Dialect, LargeBinary, MetaData
from sqlalchemy.orm import DeclarativeBase, MappedColumn, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class DataClass(enum.StrEnum):
    """How sensitive a column is. `personal` and `sensitive` are stored only as ciphertext."""

    PUBLIC = "public"
    INTERNAL = "internal"
    PERSONAL = "personal"
    SENSITIVE = "sensitive"

    @property
    def sealed(self) -> bool:
        return self in (DataClass.PERSONAL, DataClass.SENSITIVE)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def for_dialect(name: str) -> dict[str, str]:
    """`info` of a table or index that exists on one database only (the migrations create
    it there; `only_on_its_dialect` keeps autogenerate from asking for it elsewhere)."""
    return {"dialect": name}


def only_on_its_dialect(dialect: str) -> Any:
    """An Alembic `include_object` hook: skip schema objects meant for another database."""

    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        info = getattr(obj, "info", None) or getattr(compare_to, "info", None) or {}
        wanted = info.get("dialect")
        return wanted is None or wanted == dialect

    return include


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    """A time-ordered UUID (version 7 layout) so keyset pagination follows creation order."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis & ((1 << 48) - 1)) << 80 | rand
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return uuid.UUID(int=value)


def column(data_class: DataClass, *args: Any, **kwargs: Any) -> MappedColumn[Any]:
    """A column that declares its data class; sealed classes must be ciphertext bytes."""
    info = dict(kwargs.pop("info", {}))
    info["data_class"] = data_class
    if data_class.sealed:
        if args and args[0] is not LargeBinary and not isinstance(args[0], LargeBinary):
            raise TypeError("personal and sensitive columns are stored as ciphertext bytes")
        if not args:
            args = (LargeBinary,)
    return mapped_column(*args, info=info, **kwargs)


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC, also on SQLite (which stores naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime: timestamps must carry a timezone")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def timestamp(data_class: DataClass = DataClass.INTERNAL, **kwargs: Any) -> MappedColumn[Any]:
    """A UTC instant. Domain timestamps take no wall-clock default: the writing service
    stamps them from its clock, and a write that forgets one fails as NOT NULL."""
    return column(data_class, UtcDateTime(), **kwargs)
