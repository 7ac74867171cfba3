"""Shared GraphQL types: page info, cursors, expected-error results."""

from __future__ import annotations

import base64
import binascii
import datetime
import re
import uuid
from typing import Any

import strawberry

from server.errors import CustosError, ValidationError


@strawberry.type(description="Relay page information.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type(description="An expected failure: a stable code and a safe message.")
class UserError:
    code: str
    message: str
    field: str | None = None

    @classmethod
    def from_error(cls, error: CustosError, field: str | None = None) -> UserError:
        return cls(code=error.code, message=error.message, field=field)


def encode_cursor(record_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(record_id.bytes).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> uuid.UUID | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return uuid.UUID(bytes=raw)
    except (binascii.Error, ValueError):
        raise ValidationError("cursor is not valid", code="BAD_CURSOR") from None


def parse_id(value: strawberry.ID | str, what: str = "id") -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ValidationError(f"{what} is not a valid id") from None


def check_page_size(first: int, limit: int) -> None:
    if first < 0 or first > limit:
        raise ValidationError(f"first must be between 0 and {limit}")


def view_field(name: str, description: str | None = None) -> Any:
    """A field read from a pre-revealed view (`root.get(name)`): a denied field raises
    FORBIDDEN at its own path."""

    def resolve(root: strawberry.Parent[Any]) -> Any:
        return root.get(name)

    return strawberry.field(resolver=resolve, description=description)


def snake_names(graphql_names: set[str]) -> set[str]:
    """GraphQL (camelCase) field names as domain (snake_case) names."""
    return {re.sub(r"(?<!^)([A-Z])", r"_\1", n).lower() for n in graphql_names}


def encode_keyset_cursor(sort: str, key: datetime.datetime, record_id: uuid.UUID) -> str:
    """A cursor carrying its sort name, the sort key and the id that breaks ties."""
    raw = f"{sort}|{key.isoformat()}|{record_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_keyset_cursor(
    cursor: str | None, sort: str
) -> tuple[datetime.datetime, uuid.UUID] | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        name, key, record_id = raw.split("|")
        at = datetime.datetime.fromisoformat(key)
        if name != sort or at.tzinfo is None:
            raise ValueError(name)
        return at, uuid.UUID(record_id)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ValidationError("cursor is not valid for this list", code="BAD_CURSOR") from None


def page_info(cursors: list[str], has_next_page: bool, after: str | None) -> PageInfo:
    return PageInfo(
        has_next_page=has_next_page,
        has_previous_page=after is not None,
        start_cursor=cursors[0] if cursors else None,
        end_cursor=cursors[-1] if cursors else None,
    )
