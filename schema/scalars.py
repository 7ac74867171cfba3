"""The input scalars, checked at the edge: `DateTime` demands a UTC offset, and every
date, instant and decimal is bounded, so no service ever sees a value it would overflow
on (year 1 minus a window, year 9999 plus a day).

Their errors name the type and the rule, never the value (a birthday is sensitive), and
carry `BAD_USER_INPUT`; a literal's error points at the literal. Output is unchanged:
ISO 8601 for dates and instants, a plain string for decimals.
"""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Mapping
from typing import Any

import strawberry
from graphql import (
    FloatValueNode,
    GraphQLError,
    IntValueNode,
    StringValueNode,
    ValueNode,
)
from strawberry.types.scalar import ScalarDefinition

# The calendar a CRM has any use for; everything derived from it (the period before a
# metrics range, segmentation windows, retention cut-offs) still fits Python's dates.
MIN_DAY = datetime.date(1900, 1, 1)
MAX_DAY = datetime.date(2199, 12, 31)
# Magnitude of a decimal (prices, amounts, compensation): far above any column.
MAX_DECIMAL = decimal.Decimal(10) ** 15
# Longer text than any ISO 8601 form or plain number: refused before parsing.
_MAX_TEXT = 64

BAD_USER_INPUT = {"code": "BAD_USER_INPUT"}


def _refuse(message: str, node: ValueNode | None) -> GraphQLError:
    return GraphQLError(message, node, extensions=dict(BAD_USER_INPUT))


def _text(value: Any, type_name: str, rule: str, node: ValueNode | None) -> str:
    if not isinstance(value, str) or len(value) > _MAX_TEXT:
        raise _refuse(f"{type_name} must be {rule}.", node)
    return value


def _in_range(day: datetime.date, type_name: str, node: ValueNode | None) -> None:
    if not MIN_DAY <= day <= MAX_DAY:
        raise _refuse(
            f"{type_name} must be between {MIN_DAY.isoformat()} and {MAX_DAY.isoformat()}.",
            node,
        )


_DATETIME_RULE = "an ISO 8601 date and time with a UTC offset, e.g. 2026-03-02T09:00:00+08:00"


def parse_datetime(value: Any, node: ValueNode | None = None) -> datetime.datetime:
    text = _text(value, "DateTime", _DATETIME_RULE, node)
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise _refuse(f"DateTime must be {_DATETIME_RULE}.", node) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise _refuse("DateTime must carry a UTC offset (Z or +08:00).", node)
    _in_range(parsed.date(), "DateTime", node)
    return parsed


_DATE_RULE = "an ISO 8601 calendar date (YYYY-MM-DD)"


def parse_date(value: Any, node: ValueNode | None = None) -> datetime.date:
    text = _text(value, "Date", _DATE_RULE, node)
    try:
        parsed = datetime.date.fromisoformat(text)
    except ValueError:
        raise _refuse(f"Date must be {_DATE_RULE}.", node) from None
    _in_range(parsed, "Date", node)
    return parsed


def parse_decimal(value: Any, node: ValueNode | None = None) -> decimal.Decimal:
    rule = f"a finite decimal number below {MAX_DECIMAL:.0E} in magnitude"
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _refuse(f"Decimal must be {rule}.", node)
    text = str(value)
    if len(text) > _MAX_TEXT:
        raise _refuse(f"Decimal must be {rule}.", node)
    try:
        parsed = decimal.Decimal(text)
    except decimal.DecimalException:
        raise _refuse(f"Decimal must be {rule}.", node) from None
    if not parsed.is_finite() or abs(parsed) >= MAX_DECIMAL:
        raise _refuse(f"Decimal must be {rule}.", node)
    return parsed


def _literal(parse: Any, *kinds: type[ValueNode]) -> Any:
    def parse_literal(node: ValueNode, _variables: Any = None) -> Any:
        if not isinstance(node, kinds):
            return parse(None, node)
        return parse(node.value, node)  # type: ignore[attr-defined]

    return parse_literal


def _iso(value: datetime.date) -> str:
    return value.isoformat()


DateTime: ScalarDefinition = strawberry.scalar(
    name="DateTime",
    description="Date and time with a UTC offset (ISO 8601), 1900 to 2199.",
    serialize=_iso,
    parse_value=parse_datetime,
    parse_literal=_literal(parse_datetime, StringValueNode),
)
Date: ScalarDefinition = strawberry.scalar(
    name="Date",
    description="Calendar date (ISO 8601, YYYY-MM-DD), 1900 to 2199.",
    serialize=_iso,
    parse_value=parse_date,
    parse_literal=_literal(parse_date, StringValueNode),
)
Decimal: ScalarDefinition = strawberry.scalar(
    name="Decimal",
    description="Decimal (fixed-point), as a string or a number; finite, below 1E+15.",
    serialize=str,
    parse_value=parse_decimal,
    parse_literal=_literal(parse_decimal, StringValueNode, IntValueNode, FloatValueNode),
)

# The schema's scalar map: these Python types are these GraphQL scalars everywhere.
SCALARS: Mapping[object, ScalarDefinition] = {
    datetime.datetime: DateTime,
    datetime.date: Date,
    decimal.Decimal: Decimal,
}
