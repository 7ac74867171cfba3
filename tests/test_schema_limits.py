"""The schema's limits still refuse what they must, and validation is cached across requests."""

from __future__ import annotations

from typing import Any

from strawberry.extensions.validation_cache import _get_validate_cache

from schema.build import build_schema


async def test_depth_limit_refuses_deep_operations() -> None:
    result = await build_schema(max_depth=2).execute("{ customers { edges { node { id } } } }")
    assert result.errors
    assert "exceeds maximum operation depth" in result.errors[0].message


async def test_alias_limit_refuses_many_aliases() -> None:
    result = await build_schema(max_aliases=1).execute("{ a: __typename b: __typename }")
    assert result.errors
    assert "aliases" in result.errors[0].message


async def test_an_operation_is_validated_once_then_served_from_the_cache() -> None:
    schema = build_schema()
    query = "{ cacheProbe: __typename }"
    first = await schema.execute(query)
    assert first.errors is None
    cache: Any = _get_validate_cache(512)  # an lru_cache wrapper
    hits = cache.cache_info().hits
    second = await build_schema().execute(query)  # a new request on a rebuilt schema
    third = await schema.execute(query)
    assert second.data == third.data == {"cacheProbe": "Query"}
    assert cache.cache_info().hits >= hits + 1
