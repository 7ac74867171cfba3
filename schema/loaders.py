"""Per-request DataLoaders: one batched query per (loader, tick) instead of one per parent.

Nested connections (a customer's interactions, orders, complaints) resolve through a
loader so 50 customers and their children cost one statement per child type, not 50.
A loader lives on the request's context, so its cache never outlives the request and
never crosses principals (field modes and row scope differ per caller).

    def interactions_of(ctx: GraphQLContext) -> DataLoader[uuid.UUID, list[InteractionView]]:
        async def load(ids: list[uuid.UUID]) -> list[list[InteractionView]]:
            rows = await ctx.services.interactions.for_customers(ctx.session, ctx.caller, ids)
            return grouped(ids, rows, key=lambda view: view.customer_id)
        return request_loader(ctx, "interactions_of", load)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader

from schema.context import GraphQLContext

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def request_loader(
    ctx: GraphQLContext,
    name: str,
    load: Callable[[list[K]], Awaitable[Sequence[V | BaseException]]],
) -> DataLoader[K, V]:
    """The request's loader called `name`, created on first use."""
    existing: Any = ctx.loaders.get(name)
    if existing is None:
        existing = ctx.loaders[name] = DataLoader(load_fn=load)
    loader: DataLoader[K, V] = existing
    return loader


def grouped(keys: Sequence[K], items: Iterable[V], *, key: Callable[[V], K]) -> list[list[V]]:
    """Items grouped per key, in the order of `keys` (empty lists for keys with none)."""
    groups: dict[K, list[V]] = {k: [] for k in keys}
    for item in items:
        bucket = groups.get(key(item))
        if bucket is not None:
            bucket.append(item)
    return [groups[k] for k in keys]


def by_key(keys: Sequence[K], items: Iterable[V], *, key: Callable[[V], K]) -> list[V | None]:
    """One item per key, in the order of `keys` (None where absent, e.g. out of scope)."""
    found = {key(item): item for item in items}
    return [found.get(k) for k in keys]
