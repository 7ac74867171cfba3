"""Every operation is bounded before it runs: depth, aliases, fields once fragments are
expanded, and static cost against the per-request budget; the cost is in every response.

Reproducers of the hostile-input issue: the fragment bomb, 450 repeated fields, metrics
with 29 aliases over 999 days, churn fits and at-risk scoring by the dozen, four nested
lists of 1,000 under 1,000 customers. Timings live in bench/validation.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from schema.build import build_schema
from schema.cost import undeclared_sizes
from tests.conftest import Api

DEFAULT_BUDGET = 100_000


def fragment_bomb(levels: int) -> str:
    fragments = ["fragment F0 on Me { subject }"] + [
        f"fragment F{i} on Me {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, levels + 1)
    ]
    return f"query Q {{ me {{ ...F{levels} }} }} " + " ".join(fragments)


def aliased(field: str, count: int) -> str:
    return "{ " + " ".join(f"a{i}: {field}" for i in range(count)) + " }"


def codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors") or []]


async def refused(api: Api, query: str, role: str = "manager", **post: Any) -> dict[str, Any]:
    response = await api.post(query, token=api.token(role), **post)
    assert response.status_code == 400, response.text
    body: dict[str, Any] = response.json()
    assert "data" not in body
    return body


def test_every_list_of_objects_and_every_paged_field_declares_its_size() -> None:
    assert list(undeclared_sizes(build_schema()._schema)) == []


@pytest.mark.parametrize("levels", [20, 22])
async def test_a_fragment_bomb_is_refused_as_a_validation_error(api: Api, levels: int) -> None:
    document = fragment_bomb(levels)
    assert len(document) < 1000
    body = await refused(api, document, role="analyst")
    assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "fields once its fragments are expanded" in body["errors"][0]["message"]


async def test_a_small_fragment_tree_still_runs(api: Api) -> None:
    body = await api.gql(fragment_bomb(8), token=api.token("analyst", subject="ann"))
    assert body["data"] == {"me": {"subject": "ann"}}


async def test_450_repeated_fields_are_refused(api: Api) -> None:
    document = "query Q { " + " ".join(["me { subject }"] * 450) + " }"
    body = await refused(api, document, role="analyst")
    assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"]


async def test_repeating_a_field_a_few_times_is_still_fine(api: Api) -> None:
    document = "{ " + " ".join(["me { subject }"] * 5) + " }"
    body = await api.gql(document, token=api.token("analyst", subject="ann"))
    assert body["data"] == {"me": {"subject": "ann"}}


async def test_a_fragment_cycle_stays_a_validation_error(api: Api) -> None:
    document = "{ me { ...A } } fragment A on Me { subject ...B } fragment B on Me { roles ...A }"
    body = await refused(api, document)
    assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "cannot spread fragment" in body["errors"][0]["message"].lower()


def assert_too_costly(body: dict[str, Any]) -> None:
    assert codes(body) == ["QUERY_TOO_COSTLY"]
    cost = body["errors"][0]["extensions"]["cost"]
    assert cost["limit"] == DEFAULT_BUDGET
    assert cost["requested"] > DEFAULT_BUDGET
    assert body["extensions"]["cost"] == cost


async def test_metrics_with_29_aliases_over_999_days_are_too_costly(api: Api) -> None:
    field = (
        'metrics(from: "2024-01-01", to: "2026-09-25", granularity: DAY, groupBy: REGION) '
        "{ groups { key series { bucket kpis { orders salesTotal } } } }"
    )
    body = await refused(api, aliased(field, 29), role="analyst")
    assert_too_costly(body)


async def test_one_metrics_report_of_a_year_by_week_runs(api: Api) -> None:
    field = (
        'metrics(from: "2025-01-01", to: "2025-12-31", granularity: WEEK, groupBy: REGION) '
        "{ total { series { bucket } } groups { key } }"
    )
    body = await api.gql("{ " + field + " }", token=api.token("analyst"))
    assert "errors" not in body
    assert 0 < body["extensions"]["cost"]["requested"] <= DEFAULT_BUDGET


async def test_thirty_churn_fits_are_too_costly(api: Api) -> None:
    document = (
        "{ "
        + " ".join(f'm{i}: churnModel(asOf: "2026-01-{i + 1:02d}") {{ r }}' for i in range(30))
        + " }"
    )
    assert_too_costly(await refused(api, document, role="analyst"))


async def test_29_at_risk_scorings_of_1000_are_too_costly(api: Api) -> None:
    field = "atRiskCustomers(first: 1000) { edges { node { customer { id } risk { score } } } }"
    assert_too_costly(await refused(api, aliased(field, 29), role="analyst"))


NESTED = """
query Nested($n: Int!) { customers(first: $n) { edges { node { id
  interactions(first: $n) { edges { node { id } } }
  timeline(first: $n) { edges { node { recordId } } }
  orders(first: $n) { edges { node { id items { id } } } }
  loyalty { entries(first: $n) { edges { node { id } } } } } } } }
"""


async def test_four_nested_lists_of_1000_under_1000_customers_are_too_costly(api: Api) -> None:
    body = await refused(api, NESTED, variables={"n": 1000})
    assert_too_costly(body)
    assert body["errors"][0]["extensions"]["cost"]["requested"] > 4_000_000


async def test_the_same_document_with_small_pages_runs(api: Api) -> None:
    body = await api.gql(NESTED, {"n": 2}, token=api.token("manager"))
    assert "errors" not in body
    assert body["data"] == {"customers": {"edges": []}}


async def test_cost_is_reported_in_every_response_and_follows_the_rules(api: Api) -> None:
    token = api.token("agent")
    # customers (1) + edges (1) + 5 edges x (1 + node 1); scalars cost nothing.
    body = await api.gql("{ customers(first: 5) { edges { node { id name } } } }", token=token)
    assert body["extensions"]["cost"] == {"requested": 12, "limit": DEFAULT_BUDGET}
    # The page size's default (20) counts when `first` is left out.
    body = await api.gql("{ customers { nodes { id } pageInfo { hasNextPage } } }", token=token)
    assert body["extensions"]["cost"]["requested"] == 1 + (1 + 20) + 1
    # A fragment counts wherever it is spread.
    body = await api.gql(
        "{ a: customers(first: 5) { ...P } b: customers(first: 10) { ...P } } "
        "fragment P on CustomerConnection { nodes { id } }",
        token=token,
    )
    assert body["extensions"]["cost"]["requested"] == (1 + 1 + 5) + (1 + 1 + 10)
    # A mutation costs at least 10 (it writes and its audit entry commits with it).
    body = await api.gql(
        'mutation { markReviewed(customerId: "00000000-0000-7000-8000-000000000000") '
        "{ __typename } }",
        token=token,
    )
    assert body["extensions"]["cost"]["requested"] == 10


async def test_the_budget_is_a_setting() -> None:
    small = build_schema(max_cost=10)
    result = await small.execute("{ customers(first: 5) { edges { node { id } } } }")
    assert result.errors is not None
    error = result.errors[0]
    assert error.original_error is not None
    assert getattr(error.original_error, "code", None) == "QUERY_TOO_COSTLY"
    assert result.extensions == {"cost": {"requested": 12, "limit": 10}}


async def test_a_cheap_query_completes_while_costly_ones_are_refused(api: Api) -> None:
    """Refusals take no lock and hold nothing: a cheap query beside them completes."""
    cheap = api.post("{ me { subject } }", token=api.token("agent", subject="quiet"))
    hostile = [
        api.post(fragment_bomb(22), token=api.token("analyst")),
        api.post(NESTED, {"n": 1000}, token=api.token("manager")),
        api.post("query Q { " + " ".join(["me { subject }"] * 450) + " }", token=api.token("a")),
    ]
    responses = await asyncio.gather(cheap, *hostile)
    assert responses[0].status_code == 200
    assert responses[0].json()["data"] == {"me": {"subject": "quiet"}}
    assert [r.status_code for r in responses[1:]] == [400, 400, 400]
