"""Shared GraphQL types: page info, cursors, expected-error results."""

from __future__ import annotations

import base64
import binascii
import uuid

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
