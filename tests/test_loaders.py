"""Request loaders batch the loads of one tick into one call and keep parents' order."""

from __future__ import annotations

import asyncio
from typing import Any

from schema.context import GraphQLContext
from schema.loaders import by_key, grouped, request_loader


def _context() -> GraphQLContext:
    # Loaders only use the context's per-request memo.
    return GraphQLContext(session=None, caller=None, services=None, max_page_size=10)  # type: ignore[arg-type]


async def test_one_batch_per_tick_and_one_loader_per_name() -> None:
    ctx = _context()
    batches: list[list[int]] = []

    async def load(keys: list[int]) -> list[list[tuple[int, str]]]:
        batches.append(keys)
        rows = [(k, f"child-{k}-{n}") for k in keys for n in range(1 + k % 3)]
        return grouped(keys, rows, key=lambda row: row[0])

    loader = request_loader(ctx, "children", load)
    assert request_loader(ctx, "children", load) is loader
    results: list[Any] = await asyncio.gather(*(loader.load(k) for k in (4, 1, 2, 4)))
    assert batches == [[4, 1, 2]]
    assert [len(r) for r in results] == [2, 2, 3, 2]
    assert results[0] == [(4, "child-4-0"), (4, "child-4-1")]


def test_grouped_and_by_key_keep_the_order_of_keys() -> None:
    items = [("b", 1), ("a", 2), ("b", 3), ("z", 9)]
    assert grouped(["a", "b", "c"], items, key=lambda i: i[0]) == [
        [("a", 2)],
        [("b", 1), ("b", 3)],
        [],
    ]
    assert by_key(["z", "c"], items, key=lambda i: i[0]) == [("z", 9), None]
