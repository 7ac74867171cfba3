"""Pages of a list: the items of one request, whether more follow, and the total.

Repositories fetch one row more than asked (`first + 1`); the extra row only says that
another page follows. `page_of` and `pages_of` are the one place that reads it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
U = TypeVar("U")
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    has_next_page: bool
    total_count: int | None = None

    def with_items(self, items: list[U]) -> Page[U]:
        """The same page (next page, total) holding other items: views of its rows."""
        return Page(items, self.has_next_page, self.total_count)

    def map(self, convert: Callable[[T], U]) -> Page[U]:
        return Page([convert(item) for item in self.items], self.has_next_page, self.total_count)


def page_of(rows: Sequence[T], first: int, total_count: int | None = None) -> Page[T]:
    """The page of `first` items from rows fetched `first + 1` at a time."""
    return Page(list(rows[:first]), len(rows) > first, total_count)


def pages_of(
    keys: Iterable[K],
    rows: Iterable[T],
    *,
    key: Callable[[T], K],
    first: int,
    totals: Mapping[K, int] | None = None,
) -> dict[K, Page[T]]:
    """One page per key (a page of orders per customer) from rows fetched `first + 1`
    per key in one statement; a key without rows gets an empty page. With `totals`, a
    key missing from it counts 0."""
    groups: dict[K, list[T]] = {k: [] for k in keys}
    for row in rows:
        groups[key(row)].append(row)
    return {
        k: page_of(group, first, totals.get(k, 0) if totals is not None else None)
        for k, group in groups.items()
    }


def items_of(pages: Mapping[K, Page[T]]) -> list[T]:
    """Every item of every page, in page order: convert them in one batch, then `refill`."""
    return [item for page in pages.values() for item in page.items]


def refill(pages: Mapping[K, Page[T]], items: Iterable[U]) -> dict[K, Page[U]]:
    """The pages holding `items` (converted from `items_of(pages)`, in that order)."""
    converted = iter(items)
    return {k: page.with_items([next(converted) for _ in page.items]) for k, page in pages.items()}
