"""Relay paging: the generic connection and edge types, the one cursor codec, and the
one check of `first`.

`Connection[Customer]` is named `CustomerConnection` in the SDL and its edges
`CustomerEdge`. A connection with a total or a description subclasses it
(`class CustomerConnection(Connection[Customer])`); `connection()` fills `totalCount`
when the class declares it.

A cursor is opaque: base64url of the list's name, the position in the list and a
checksum. A cursor that is malformed, truncated, edited or taken from another list (or
another order of the same list) is `BAD_CURSOR` on the `after` argument, never a 500.
The checksum catches damage, not forgery: a forged cursor only seeks to a position
within rows the caller may see anyway.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
import uuid
import zlib
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar, get_origin

import strawberry

from schema.cost import PAGE, cost
from schema.execution import plain_leaf
from server.errors import ValidationError
from server.paging import Page

NodeT = TypeVar("NodeT")
ItemT = TypeVar("ItemT")
KeyT = TypeVar("KeyT")
ConnectionT = TypeVar("ConnectionT", bound="Connection[Any]")

# Longer than any cursor we hand out: refused before decoding.
MAX_CURSOR_LENGTH = 256
SEPARATOR = "|"
_CHECKSUM_BYTES = 4
_MAX_SEQ = 2**63 - 1


@strawberry.type(description="Relay page information.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="More items follow this page.")
    has_previous_page: bool = strawberry.field(
        description="Items precede this page (lists page forward only: false unless `after`)."
    )
    start_cursor: str | None = strawberry.field(
        description="The first item's cursor; null on an empty page."
    )
    end_cursor: str | None = strawberry.field(
        description="The last item's cursor: pass it as `after` for the next page."
    )


@plain_leaf
def _edge_cursor(root: strawberry.Parent[Any]) -> str:
    return str(root.encode(root.item))


@strawberry.type(description="One item of a page, with the cursor to resume after it.")
class Edge(Generic[NodeT]):
    # Encoded from the item by its list's codec only when a client selects it.
    cursor: str = strawberry.field(
        resolver=_edge_cursor, description="Opaque: pass as `after` to continue after it."
    )
    node: NodeT = strawberry.field(description="The item.")
    item: strawberry.Private[Any]
    encode: strawberry.Private[Callable[[Any], str]]


@strawberry.type(description="A page of a list (a Relay connection).")
class Connection(Generic[NodeT]):
    # As many as the connection's page (`first`): see schema/cost.py.
    edges: list[Edge[NodeT]] = strawberry.field(
        metadata=cost(size=PAGE), description="The page's items with their cursors."
    )
    nodes: list[NodeT] = strawberry.field(
        metadata=cost(size=PAGE), description="The page's items, without cursors."
    )
    page_info: PageInfo = strawberry.field(description="Where the page sits in the list.")


def check_page_size(first: int, limit: int) -> None:
    """`first` of every list: 0 to the configured maximum page size."""
    if first < 0 or first > limit:
        raise ValidationError(f"first must be between 0 and {limit}", field="first")


def bad_cursor() -> ValidationError:
    return ValidationError("cursor is not valid for this list", code="BAD_CURSOR", field="after")


class Cursor(Generic[KeyT]):
    """Cursors of one list (and one order of it): `encode` a position, `decode` the
    `after` argument back to one (None for no cursor)."""

    def __init__(
        self,
        list_name: str,
        dump: Callable[[KeyT], Sequence[str]],
        load: Callable[[list[str]], KeyT],
    ) -> None:
        if SEPARATOR in list_name:
            raise ValueError(f"a list name cannot hold {SEPARATOR!r}")
        self.list_name = list_name
        self._dump = dump
        self._load = load

    def encode(self, key: KeyT) -> str:
        payload = SEPARATOR.join([self.list_name, *self._dump(key)]).encode()
        raw = payload + zlib.crc32(payload).to_bytes(_CHECKSUM_BYTES, "big")
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def decode(self, cursor: str | None) -> KeyT | None:
        if cursor is None:
            return None
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise bad_cursor()
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            raw = base64.b64decode(padded, altchars=b"-_", validate=True)
            payload, checksum = raw[:-_CHECKSUM_BYTES], raw[-_CHECKSUM_BYTES:]
            if not payload or zlib.crc32(payload).to_bytes(_CHECKSUM_BYTES, "big") != checksum:
                raise ValueError("checksum")
            name, *parts = payload.decode().split(SEPARATOR)
            if name != self.list_name:
                raise ValueError("another list")
            return self._load(parts)
        except (binascii.Error, ValueError, OverflowError):
            # UnicodeDecodeError is a ValueError.
            raise bad_cursor() from None


def _one(parts: list[str]) -> str:
    if len(parts) != 1:
        raise ValueError("parts")
    return parts[0]


def _seq(parts: list[str]) -> int:
    text = _one(parts)
    if not (text.isascii() and text.isdigit()) or int(text) > _MAX_SEQ:
        raise ValueError("seq")
    return int(text)


def _keyset(parts: list[str]) -> tuple[datetime.datetime, uuid.UUID]:
    if len(parts) != 2:
        raise ValueError("parts")
    at = datetime.datetime.fromisoformat(parts[0])
    if at.tzinfo is None:
        raise ValueError("naive")
    at.astimezone(datetime.UTC)  # an instant every database can hold, or OverflowError
    return at, uuid.UUID(parts[1])


def id_cursor(list_name: str) -> Cursor[uuid.UUID]:
    """For lists ordered by id."""
    return Cursor(list_name, lambda key: (str(key),), lambda parts: uuid.UUID(_one(parts)))


def seq_cursor(list_name: str) -> Cursor[int]:
    """For lists ordered by a sequence number (the audit trail)."""
    return Cursor(list_name, lambda key: (str(key),), _seq)


def keyset_cursor(list_name: str) -> Cursor[tuple[datetime.datetime, uuid.UUID]]:
    """For lists ordered by an instant, ties broken by id."""
    return Cursor(list_name, lambda key: (key[0].isoformat(), str(key[1])), _keyset)


def page_info(cursors: list[str], has_next_page: bool, after: str | None) -> PageInfo:
    return PageInfo(
        has_next_page=has_next_page,
        has_previous_page=after is not None,
        start_cursor=cursors[0] if cursors else None,
        end_cursor=cursors[-1] if cursors else None,
    )


def _ends(items: Sequence[ItemT], cursor: Callable[[ItemT], str]) -> list[str]:
    """The first and the last item's cursors: all page information needs."""
    return [cursor(items[0]), cursor(items[-1])] if items else []


def connection(
    kind: type[ConnectionT],
    page: Page[ItemT],
    *,
    after: str | None,
    cursor: Callable[[ItemT], str],
    node: Callable[[ItemT], Any] = lambda item: item,
) -> ConnectionT:
    """The connection of a page: `cursor` gives each item's cursor, `node` its node
    (default: the item itself, e.g. a pre-revealed view). `totalCount` is the page's
    total when `kind` declares it."""
    nodes = [node(item) for item in page.items]
    values: dict[str, Any] = {
        "edges": [
            Edge(node=n, item=item, encode=cursor)
            for item, n in zip(page.items, nodes, strict=True)
        ],
        "nodes": nodes,
        "page_info": page_info(_ends(page.items, cursor), page.has_next_page, after),
    }
    # `Connection[Product]` is a generic alias: its fields are its origin's.
    declared = dataclasses.fields(get_origin(kind) or kind)
    if any(f.name == "total_count" for f in declared):
        values["total_count"] = page.total_count
    return kind(**values)
