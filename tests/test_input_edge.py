"""Hostile input at the edge: sizes before content, caps before conversion, text every
database can store, one DateTime that demands an offset, bounded dates; and a client's
mistake in one field stays a typed error at that field, whatever runs beside it."""

from __future__ import annotations

import asyncio
import time
from types import CodeType
from typing import Any

import jwt
import pytest
import strawberry
from graphql.execution.executor import Executor

from schema.execution import SettledExecution, gather_settled
from server.app import AppState
from tests.conftest import Api
from tests.factories import make_customer

IMPORT = """mutation($rows: [ImportCustomerRowInput!]!) {
  importCustomers(rows: $rows) { accepted }
}"""

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


def refused(
    response: Any, field: str | None = None, code: str = "BAD_USER_INPUT"
) -> dict[str, Any]:
    """A request error (nothing executed): 400, no data, one typed error with a location."""
    assert response.status_code == 400, response.text
    body: dict[str, Any] = response.json()
    assert "data" not in body
    error: dict[str, Any] = body["errors"][0]
    assert error["extensions"]["code"] == code, body
    assert error.get("locations"), body
    if field is not None:
        assert error["extensions"]["field"] == field, body
    return error


async def test_a_quadratic_email_answers_as_the_field(api: Api) -> None:
    query = "query($e: String) { customerByContact(email: $e) { id } }"
    token = api.token("support")
    # Longer than any string a request may carry: refused at the edge.
    email = "a@" + "." * 32000 + "@"
    refused(await api.post(query, {"e": email}, token=token, purpose="support"), "email")
    # Within the edge's limit, the email check looks at the length before anything else.
    email = "a@" + "." * 19000 + "@"
    body = await api.gql(query, {"e": email}, token=token, purpose="support")
    (error,) = body["errors"]
    assert error["extensions"] == {"code": "INVALID_EMAIL", "field": "email"}
    assert body["data"] == {"customerByContact": None}


async def test_a_huge_import_is_refused_before_conversion(api: Api) -> None:
    rows = [{"name": "x"}] * 60_000
    error = refused(await api.post(IMPORT, {"rows": rows}, token=api.token("analyst")), "rows")
    assert "longer than 1000" in error["message"]
    # Within the cap, a caller without import/create is refused before the rows convert.
    body = await api.gql(IMPORT, {"rows": [{"name": "x"}] * 1000}, token=api.token("analyst"))
    (forbidden,) = body["errors"]
    assert forbidden["extensions"]["code"] == "FORBIDDEN"
    assert forbidden["path"] == ["importCustomers"]


async def test_the_permission_check_comes_before_argument_conversion(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from schema import imports

    converted: list[int] = []
    real = imports.ImportCustomerRowInput.__init__

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        converted.append(1)
        real(self, *args, **kwargs)

    monkeypatch.setattr(imports.ImportCustomerRowInput, "__init__", counting)
    body = await api.gql(IMPORT, {"rows": [{"name": "x"}] * 10}, token=api.token("analyst"))
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert converted == []
    manager = api.token("manager", team="east")
    allowed = await api.gql(IMPORT, {"rows": [{"name": "x"}]}, token=manager)
    assert allowed["data"]["importCustomers"]["accepted"] == 1
    assert converted == [1]


@pytest.mark.parametrize("bad", ["a\x00b", "\x00"])
async def test_nul_is_refused_on_reads_and_writes_alike(api: Api, bad: str) -> None:
    token = api.token("manager", team="east")
    read = "query($t: String) { customers(filter: {tag: $t}) { totalCount } }"
    refused(await api.post(read, {"t": bad}, token=token), "filter.tag")
    write = "mutation($i: CreateCustomerInput!) { createCustomer(input: $i) { __typename } }"
    error = refused(await api.post(write, {"i": {"name": bad}}, token=token), "input.name")
    assert "NUL" in error["message"]
    literal = '{ customers(filter: {tag: "a\\u0000b"}) { totalCount } }'
    refused(await api.post(literal, token=token), "filter.tag")


async def test_a_token_subject_with_nul_is_an_invalid_token(api: Api) -> None:
    # `custos token` refuses to mint such a subject: sign one by hand, as an attacker would.
    now = int(time.time())
    claims = {"sub": "agent\x001", "roles": ["agent"], "iat": now, "exp": now + 600}
    token = jwt.encode(claims, api.settings.jwt_secret_value(), algorithm="HS256")
    response = await api.post("{ me { subject } }", token=token)
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "TOKEN_INVALID"


NAIVE = "2026-01-01T00:00:00"
NAIVE_CASES = [
    (
        "manager",
        "query($d: DateTime) { customers(filter: {createdFrom: $d}) { totalCount } }",
        "filter.createdFrom",
    ),
    (
        "manager",
        "query($d: DateTime) { orders(filter: {orderedFrom: $d}) { totalCount } }",
        "filter.orderedFrom",
    ),
    ("manager", "query($d: DateTime!) { complaintBreakdown(from: $d, to: $d) { total } }", "from"),
    (
        "admin",
        """mutation($d: DateTime) { createApiKey(input: {name: "k", roles: ["integrator"],
       expiresAt: $d}) { __typename } }""",
        "input.expiresAt",
    ),
    (
        "manager",
        """mutation($d: DateTime) { createCampaign(input: {name: "c",
       segment: {createdFrom: $d}}) { __typename } }""",
        "input.segment.createdFrom",
    ),
    (
        "compliance",
        "query($d: DateTime) { auditEvents(filter: {since: $d}) { totalCount } }",
        "filter.since",
    ),
]


@pytest.mark.parametrize(("role", "query", "field"), NAIVE_CASES)
async def test_a_datetime_without_offset_is_bad_input_everywhere(
    api: Api, role: str, query: str, field: str
) -> None:
    token = api.token(role, team="east")
    error = refused(await api.post(query, {"d": NAIVE}, token=token), field)
    assert "offset" in error["message"]
    assert NAIVE not in error["message"]
    aware = await api.post(query, {"d": NAIVE + "+08:00"}, token=token)
    assert aware.status_code == 200, aware.text


@pytest.mark.parametrize(
    ("role", "query", "field"),
    [
        ("analyst", '{ metrics(from: "0001-01-01", to: "2026-01-01") { from } }', "from"),
        ("analyst", '{ metrics(from: "2026-01-01", to: "9999-12-31") { from } }', "to"),
        ("analyst", '{ segments(by: TIER, asOf: "0001-01-01") { customers } }', "asOf"),
        ("analyst", '{ churnModel(asOf: "9999-12-31") { customers } }', "asOf"),
        ("manager", 'mutation { refreshSegments(asOf: "9999-12-31") { __typename } }', "asOf"),
        (
            "manager",
            '{ customers(first: 1) { edges { node { segment(asOf: "0001-01-01") { tier } } } } }',
            "asOf",
        ),
    ],
)
async def test_days_out_of_range_are_bad_input_naming_the_field(
    api: Api, role: str, query: str, field: str
) -> None:
    error = refused(await api.post(query, token=api.token(role, team="east")), field)
    assert "between 1900-01-01 and 2199-12-31" in error["message"]


async def test_the_edges_of_the_range_work(api: Api) -> None:
    token = api.token("manager", team="east")
    for day in ("1900-01-01", "2199-12-31"):
        body = await api.gql(
            "mutation($d: Date) { refreshSegments(asOf: $d) { __typename } }",
            {"d": day},
            token=token,
        )
        assert body["data"]["refreshSegments"]["__typename"] == "SegmentsRefreshed"
    body = await api.gql(
        '{ metrics(from: "1900-01-01", to: "1900-03-01") { previousFrom } }',
        token=api.token("analyst"),
    )
    assert body["data"]["metrics"]["previousFrom"] == "1899-11-02"


async def test_audit_windows_are_bounded(api: Api) -> None:
    body = await api.gql(
        "{ auditEvents(filter: {withinDays: 1000000}) { totalCount } }",
        token=api.token("compliance"),
    )
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "withinDays"}


async def test_a_huge_tag_filter_is_bad_input(api: Api) -> None:
    query = '{ customers(filter: {tag: "' + "x" * 60_000 + '"}) { totalCount } }'
    refused(await api.post(query, token=api.token("manager", team="east")), "filter.tag")
    body = await api.gql(
        "query($t: String) { customers(filter: {tag: $t}) { totalCount } }",
        {"t": "x" * 500},
        token=api.token("manager", team="east"),
    )
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "tag"}


@pytest.mark.parametrize(
    "query",
    [
        '{ auditEvents(after: "zzz") { totalCount } }',
        '{ customers(after: "zzz") { totalCount } }',
        '{ complaints(after: "zzz") { totalCount } }',
        '{ orders(after: "zzz") { totalCount } }',
        '{ products(after: "zzz") { edges { cursor } } }',
        '{ customers(first: 1) { edges { node { orders(after: "zzz") { totalCount } '
        'timeline(after: "zzz") { edges { cursor } } } } } }',
    ],
)
async def test_every_cursor_is_bad_cursor(api: Api, state: AppState, query: str) -> None:
    await make_customer(state)
    body = await api.gql(query, token=api.token("compliance"), purpose="compliance")
    codes = {e["extensions"]["code"] for e in body["errors"]}
    assert codes <= {"BAD_CURSOR", "FORBIDDEN"}, body
    assert "BAD_CURSOR" in codes or codes == {"FORBIDDEN"}


async def test_a_nested_first_out_of_range_is_refused_once_before_anything_runs(
    api: Api, state: AppState
) -> None:
    for _ in range(3):
        await make_customer(state)
    query = """query($f: Int!) { customers(first: 3) { edges { node {
      interactions(first: $f) { totalCount } } } } }"""
    error = refused(await api.post(query, {"f": 5000}, token=api.token("admin")), "first")
    response = await api.post(query, {"f": 5000}, token=api.token("admin"))
    assert len(response.json()["errors"]) == 1
    assert "between 0 and 1000" in error["message"]
    ok = await api.gql(query, {"f": 5}, token=api.token("admin"))
    assert len(ok["data"]["customers"]["edges"]) == 3
