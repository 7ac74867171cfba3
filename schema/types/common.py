"""Shared GraphQL helpers: expected-error results, id arguments, pre-revealed fields."""

from __future__ import annotations

import re
import uuid
from typing import Any

import strawberry
from strawberry.utils.str_converters import to_camel_case, to_snake_case

from schema.execution import plain_leaf
from server.errors import CustosError, ValidationError


@strawberry.type(description="An expected failure: a stable code and a safe message.")
class UserError:
    code: str = strawberry.field(
        description="Stable machine-readable code, e.g. BAD_USER_INPUT, NOT_FOUND."
    )
    message: str = strawberry.field(
        description="A message safe to show; never echoes input values."
    )
    field: str | None = strawberry.field(
        default=None,
        description="The input field concerned, by its GraphQL name (a dotted path into a "
        "list input, e.g. items.0.quantity); null when the input as a whole is refused.",
    )

    @classmethod
    def from_error(cls, error: CustosError) -> UserError:
        field = error.field if isinstance(error, ValidationError) else None
        return cls(
            code=error.code,
            message=error.message,
            field=to_camel_case(field) if field is not None else None,
        )


def parse_id(value: strawberry.ID | str, what: str = "id") -> uuid.UUID:
    """An id argument or input field; `what` is its GraphQL name (`customerId`)."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ValidationError(f"{what} is not a valid id", field=to_snake_case(what)) from None


def view_field(name: str, description: str | None = None) -> Any:
    """A field read from a pre-revealed view (`root.get(name)`): a denied field raises
    FORBIDDEN at its own path. Plain: the execution fast path reads it without resolve
    info."""

    @plain_leaf
    def resolve(root: strawberry.Parent[Any]) -> Any:
        return root.get(name)

    return strawberry.field(resolver=resolve, description=description)


def snake_names(graphql_names: set[str]) -> set[str]:
    """GraphQL (camelCase) field names as domain (snake_case) names."""
    return {re.sub(r"(?<!^)([A-Z])", r"_\1", n).lower() for n in graphql_names}
