"""Hostile input at the edge: a client's mistake in one field stays a typed error at that
field, whatever runs beside it."""

from __future__ import annotations

import asyncio
from types import CodeType

import pytest
import strawberry
from graphql.execution.executor import Executor

from schema.execution import SettledExecution, gather_settled
from server.app import AppState
from tests.conftest import Api
from tests.factories import make_customer

NESTED_BAD_CURSOR = """{ customers(first: 1) { edges { node {
  segment { orders }
  interactions(first: 20, after: "zzz") { edges { cursor } } } } } }"""


async def test_a_bad_nested_cursor_beside_a_running_sibling_is_a_field_error(
    api: Api, state: AppState
) -> None:
    # The segment loader's statement is under way when `interactions` refuses its cursor;
    # cutting that statement off used to break the connection: 503 and no audit event.
    await make_customer(state)
    token = api.token("analyst")
    for _ in range(2):
        response = await api.post(NESTED_BAD_CURSOR, token=token)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["data"] is None
        (error,) = body["errors"]
        assert error["path"] == ["customers", "edges", 0, "node", "interactions"]
        assert error["extensions"] == {"code": "BAD_CURSOR", "field": "after"}
    # The connection is still good: the next request answers normally.
    ok = await api.gql("{ customers(first: 1) { totalCount } }", token=token)
    assert ok["data"]["customers"]["totalCount"] == 1


async def test_siblings_settle_before_the_first_error_propagates() -> None:
    finished: list[str] = []

    async def slow() -> str:
        await asyncio.sleep(0.01)
        finished.append("slow")
        return "slow"

    async def failing() -> str:
        raise ValueError("bad")

    with pytest.raises(ValueError, match="bad"):
        await gather_settled(slow(), failing())
    assert finished == ["slow"]
    assert await gather_settled(slow()) == ["slow"]


def _global_names(code: CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, CodeType):
            names |= _global_names(const)
    return names


def test_the_executor_still_gathers_siblings_through_the_replaced_helper() -> None:
    # A graphql-core upgrade that renames the helper would silently bring cancellation back.
    for method in (Executor.execute_fields, Executor.complete_iterable_value):
        assert "gather_with_cancel" in _global_names(method.__code__)
    import graphql.execution.executor as executor

    assert vars(executor)["gather_with_cancel"] is gather_settled


FINISHED: list[str] = []


@strawberry.type
class _Child:
    @strawberry.field
    async def slow(self) -> int:
        await asyncio.sleep(0.02)
        FINISHED.append("slow")
        return 1

    @strawberry.field
    def boom(self) -> int:
        raise ValueError("bad")


@strawberry.type
class _Query:
    @strawberry.field
    def child(self) -> _Child | None:
        return _Child()


async def test_execution_returns_only_once_work_left_behind_by_an_error_has_settled() -> None:
    # `boom` fails synchronously while `slow` is under way: graphql-core leaves `slow` to
    # settle in the background; the request must not touch its session before it has.
    FINISHED.clear()
    schema = strawberry.Schema(query=_Query, execution_context_class=SettledExecution)
    result = await schema.execute("{ child { slow boom } }")
    assert result.data == {"child": None}
    assert FINISHED == ["slow"]
