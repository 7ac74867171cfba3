"""Weaker finding: aggregates that ignored row scope, consent and cell size.

A team manager grouping `metrics` by OWNER saw another team's single 10,713.00 order.
Every aggregate now counts only the caller's row scope, less the customers who withdrew
analytics consent, and grouped metrics suppress groups smaller than
`CUSTOS_METRICS_MIN_CELL` (default 5; a lone small group takes the next smallest along).
"""

from __future__ import annotations

import uuid
from typing import Any

from server.app import AppState
from tests.analytics_factories import at, make_order, make_product
from tests.conftest import Api
from tests.factories import make_customer
from tests.ops_helpers import grant_consent

GROUPED = """
query($by: MetricGroupBy) {
  metrics(from: "2026-03-01", to: "2026-03-31", groupBy: $by) {
    total { current { salesTotal customersTotal } }
    groups { key suppressed current { salesTotal customersTotal } previous { salesTotal } }
  }
}
"""


async def _buyers(
    state: AppState, product: uuid.UUID, n: int, amount: str, **customer: Any
) -> list[uuid.UUID]:
    ids = []
    for _ in range(n):
        customer_id = await make_customer(state, created_at=at("2026-01-05"), **customer)
        await make_order(state, customer_id, "2026-03-10 10:00", [(product, 1, amount, "1")])
        ids.append(customer_id)
    return ids


async def _metrics(api: Api, token: str, by: str | None) -> dict[str, Any]:
    body = await api.gql(GROUPED, {"by": by}, token=token, purpose="analytics")
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["metrics"]
    return result


async def test_a_team_manager_sees_no_other_teams_owner(api: Api, state: AppState) -> None:
    product = await make_product(state, "P", "100", "1")
    await _buyers(state, product, 5, "100", owner_id="agent-1", team="east")
    await _buyers(state, product, 1, "10713.00", owner_id="agent-3", team="west")
    east = api.token("manager", subject="max", team="east")
    m = await _metrics(api, east, "OWNER")
    assert [g["key"] for g in m["groups"]] == ["agent-1"]
    assert m["total"]["current"] == {"salesTotal": "500.00", "customersTotal": 5}
    # An analyst (row scope all) still counts everyone.
    analyst = await _metrics(api, api.token("analyst", subject="ann"), None)
    assert analyst["total"]["current"]["salesTotal"] == "11213.00"


async def test_small_groups_are_suppressed_and_cannot_be_subtracted_back(
    api: Api, state: AppState
) -> None:
    product = await make_product(state, "P", "100", "1")
    await _buyers(state, product, 7, "100", region="north")
    await _buyers(state, product, 5, "100", region="west")
    await _buyers(state, product, 1, "999", region="south")
    m = await _metrics(api, api.token("analyst", subject="ann"), "REGION")
    groups = {g["key"]: g for g in m["groups"]}
    assert groups["north"]["suppressed"] is False
    assert groups["north"]["current"] == {"salesTotal": "700.00", "customersTotal": 7}
    # South has one customer: suppressed. Alone it would equal total minus the others,
    # so the next smallest group (west) is suppressed with it.
    for key in ("south", "west"):
        assert groups[key] == {
            "key": key,
            "suppressed": True,
            "current": None,
            "previous": None,
        }
    # The total is the caller's own scope, never suppressed.
    assert m["total"]["current"] == {"salesTotal": "2199.00", "customersTotal": 13}


async def test_a_withdrawn_analytics_consent_leaves_the_customer_out(
    api: Api, state: AppState
) -> None:
    product = await make_product(state, "P", "100", "1")
    [stays] = await _buyers(state, product, 1, "100")
    [leaves] = await _buyers(state, product, 1, "400")
    await grant_consent(state, stays, "analytics")
    await grant_consent(state, leaves, "analytics", withdrawn=True)
    analyst = api.token("analyst", subject="ann")
    m = await _metrics(api, analyst, None)
    assert m["total"]["current"] == {"salesTotal": "100.00", "customersTotal": 1}
    segments = await api.gql(
        '{ segments(by: TIER, asOf: "2026-06-30") { customers } }', token=analyst
    )
    assert sum(s["customers"] for s in segments["data"]["segments"]) == 1
    scored = await api.gql(
        """query($a: ID!, $b: ID!) {
             a: customer(id: $a) { segment(asOf: "2026-06-30") { tier } }
             b: customer(id: $b) { segment(asOf: "2026-06-30") { tier } } }""",
        {"a": str(stays), "b": str(leaves)},
        token=analyst,
    )
    assert scored["data"]["a"]["segment"] is not None
    assert scored["data"]["b"]["segment"] is None
    risky = await api.gql(
        """{ atRiskCustomers(first: 10, minScore: 0, asOf: "2026-06-30") {
             edges { node { customer { id } } } } }""",
        token=analyst,
    )
    assert "errors" not in risky, risky
    listed = {e["node"]["customer"]["id"] for e in risky["data"]["atRiskCustomers"]["edges"]}
    assert listed == {str(stays)}


async def test_co_purchase_rules_count_only_the_callers_scope(api: Api, state: AppState) -> None:
    a = await make_product(state, "A", "10", "1")
    b = await make_product(state, "B", "10", "1")
    customer = await make_customer(
        state, owner_id="agent-1", team="east", created_at=at("2026-01-05")
    )
    await make_order(state, customer, "2026-03-10 10:00", [(a, 1, "10", "1"), (b, 1, "10", "1")])
    query = "query($p: ID!) { frequentlyBoughtWith(productId: $p) { ordersWithBoth } }"
    west = api.token("manager", subject="mgr-west", team="west")
    body = await api.gql(query, {"p": str(a)}, token=west)
    assert body["data"]["frequentlyBoughtWith"] == []
    east = api.token("manager", subject="max", team="east")
    body = await api.gql(query, {"p": str(a)}, token=east)
    assert body["data"]["frequentlyBoughtWith"] == [{"ordersWithBoth": 1}]
