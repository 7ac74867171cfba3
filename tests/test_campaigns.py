"""Campaigns over HTTP: segments selected in SQL, marketing consent required, results."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from server.app import AppState
from tests.analytics_factories import make_order as insert_order
from tests.conftest import Api
from tests.factories import make_customer
from tests.ops_helpers import (
    grant_consent,
    make_order,
    make_product,
    manager,
    move,
    update_customer,
)

CREATE = """
mutation($input: CreateCampaignInput!) {
  createCampaign(input: $input) {
    __typename
    ... on CampaignCreated { reach campaign { id name productId segment status } }
    ... on UserError { code message }
  }
}
"""
RESULTS = """
query($id: ID!) {
  campaignResults(id: $id) {
    reach responses conversions responseRate conversionRate revenue
  }
}
"""
RESPOND = """
mutation($c: ID!, $p: ID!) {
  recordCampaignResponse(campaignId: $c, customerId: $p) {
    __typename
    ... on CampaignRecorded { results { responses } }
    ... on UserError { code }
  }
}
"""
CONVERT = """
mutation($c: ID!, $p: ID!, $o: ID!) {
  recordCampaignConversion(campaignId: $c, customerId: $p, orderId: $o) {
    __typename
    ... on CampaignRecorded { results { conversions revenue } }
    ... on UserError { code }
  }
}
"""


async def _campaign(api: Api, segment: dict[str, Any], product: str | None = None) -> Any:
    body = await api.gql(
        CREATE,
        {"input": {"name": "Autumn tea", "productId": product, "segment": segment}},
        token=manager(api),
        purpose="marketing",
    )
    return body["data"]["createCampaign"]


async def _reach_set(api: Api, campaign_id: str, candidates: dict[str, uuid.UUID]) -> set[str]:
    """Which named customers are recipients: a response is accepted only for recipients."""
    reached = set()
    for name, customer in candidates.items():
        body = await api.gql(RESPOND, {"c": campaign_id, "p": str(customer)}, token=manager(api))
        if body["data"]["recordCampaignResponse"]["__typename"] == "CampaignRecorded":
            reached.add(name)
    return reached


async def test_recipients_need_active_marketing_consent(api: Api, state: AppState) -> None:
    people = {
        "consented": await make_customer(state, owner_id="agent-1", team="east"),
        "withdrawn": await make_customer(state, owner_id="agent-1", team="east"),
        "no_consent": await make_customer(state, owner_id="agent-1", team="east"),
        "analytics_only": await make_customer(state, owner_id="agent-1", team="east"),
        "erased": await make_customer(state, owner_id="agent-1", team="east"),
        "merged": await make_customer(state, owner_id="agent-1", team="east"),
        "other_team": await make_customer(state, owner_id="agent-3", team="west"),
    }
    for name in ("consented", "erased", "merged", "other_team"):
        await grant_consent(state, people[name], "marketing")
    await grant_consent(state, people["withdrawn"], "marketing", withdrawn=True)
    await grant_consent(state, people["analytics_only"], "analytics")
    await update_customer(state, people["erased"], erased_at=datetime.now(UTC))
    await update_customer(state, people["merged"], merged_into_id=people["consented"])

    created = await _campaign(api, {})
    assert created["__typename"] == "CampaignCreated", created
    assert created["reach"] == 1
    assert await _reach_set(api, created["campaign"]["id"], people) == {"consented"}


async def test_segment_filters_and_purchase_history(api: Api, state: AppState) -> None:
    tea = await make_product(api, "TEA-1", "19.99", "12.34", category="tea")
    cake = await make_product(api, "CAKE-1", "8.00", "3.00", category="cake")
    people = {
        "tea_drinker": await make_customer(state, owner_id="agent-1", team="east", tier="high"),
        "cake_eater": await make_customer(state, owner_id="agent-2", team="east", tier="low"),
        "nobody": await make_customer(state, owner_id="agent-1", team="east", region="上海"),
    }
    for customer in people.values():
        await grant_consent(state, customer, "marketing")
    await update_customer(state, people["cake_eater"], tags=["vip", "新客"])
    mgr = manager(api)
    for name, product in (("tea_drinker", tea), ("cake_eater", cake)):
        order = await make_order(api, mgr, people[name], [{"productId": product, "quantity": 1}])
        await api.gql(
            "mutation($o: ID!) { updateOrderStatus(orderId: $o, status: PAID) { __typename } }",
            {"o": order["order"]["id"]},
            token=mgr,
        )
    # An unpaid tea order is not a purchase.
    await make_order(api, mgr, people["nobody"], [{"productId": tea, "quantity": 1}])

    cases = [
        ({"boughtCategory": "tea"}, {"tea_drinker"}),
        ({"neverBoughtProductId": tea}, {"cake_eater", "nobody"}),
        ({"tier": "HIGH"}, {"tea_drinker"}),
        ({"region": "上海"}, {"nobody"}),
        ({"ownerId": "agent-2"}, {"cake_eater"}),
        ({"tag": "新客"}, {"cake_eater"}),
        ({"tag": "vi"}, set()),
        ({"boughtCategory": "cake", "neverBoughtProductId": tea}, {"cake_eater"}),
    ]
    for segment, expected in cases:
        created = await _campaign(api, segment, product=cake)
        assert created["reach"] == len(expected), segment
        assert await _reach_set(api, created["campaign"]["id"], people) == expected, segment


async def test_results_rates_and_exact_revenue(api: Api, state: AppState) -> None:
    tea = await make_product(api, "TEA-1", "19.99", "12.34")
    buyers = [await make_customer(state, owner_id="agent-1", team="east") for _ in range(4)]
    for customer in buyers:
        await grant_consent(state, customer, "marketing")
    created = await _campaign(api, {}, product=tea)
    campaign_id = created["campaign"]["id"]
    assert created["campaign"]["productId"] == tea
    mgr = manager(api)
    await api.gql(RESPOND, {"c": campaign_id, "p": str(buyers[0])}, token=mgr)
    order = await make_order(api, mgr, buyers[1], [{"productId": tea, "quantity": 3}])
    await move(api, mgr, order["order"]["id"], "PAID")
    converted = await api.gql(
        CONVERT, {"c": campaign_id, "p": str(buyers[1]), "o": order["order"]["id"]}, token=mgr
    )
    assert converted["data"]["recordCampaignConversion"]["results"] == {
        "conversions": 1,
        "revenue": "59.97",
    }
    again = await api.gql(
        CONVERT, {"c": campaign_id, "p": str(buyers[1]), "o": order["order"]["id"]}, token=mgr
    )
    assert again["data"]["recordCampaignConversion"]["code"] == "ALREADY_CONVERTED"
    wrong = await api.gql(
        CONVERT, {"c": campaign_id, "p": str(buyers[2]), "o": order["order"]["id"]}, token=mgr
    )
    assert wrong["data"]["recordCampaignConversion"]["code"] == "NOT_FOUND"

    body = await api.gql(RESULTS, {"id": campaign_id}, token=api.token("analyst", subject="ann"))
    assert body["data"]["campaignResults"] == {
        "reach": 4,
        "responses": 2,
        "conversions": 1,
        "responseRate": "0.5000",
        "conversionRate": "0.2500",
        "revenue": "59.97",
    }


async def test_empty_campaign_has_zero_rates_and_bad_input_is_refused(
    api: Api, state: AppState
) -> None:
    created = await _campaign(api, {"region": "nowhere"})
    body = await api.gql(RESULTS, {"id": created["campaign"]["id"]}, token=manager(api))
    assert body["data"]["campaignResults"] == {
        "reach": 0,
        "responses": 0,
        "conversions": 0,
        "responseRate": "0.0000",
        "conversionRate": "0.0000",
        "revenue": "0.00",
    }
    unknown = await _campaign(api, {}, product=str(uuid.uuid4()))
    assert unknown["code"] == "NOT_FOUND"
    agent = await api.gql(
        CREATE,
        {"input": {"name": "mine", "segment": {}}},
        token=api.token("agent", subject="agent-1", team="east"),
        purpose="marketing",
    )
    assert agent["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    missing = await api.gql(RESULTS, {"id": str(uuid.uuid4())}, token=manager(api))
    assert missing["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_a_conversion_is_a_paid_order_of_the_campaign_window_and_product(
    api: Api, state: AppState
) -> None:
    """Walk-through defect: any order converted, one from 19 months before the campaign,
    one of another product, an unpaid one, one cancelled later."""
    tea = await make_product(api, "TEA-9", "20.00", "12.00")
    cake = await make_product(api, "CAKE-9", "30.00", "15.00")
    people = [await make_customer(state, owner_id="agent-1", team="east") for _ in range(2)]
    for customer in people:
        await grant_consent(state, customer, "marketing")
    old = await insert_order(
        state, people[0], "2025-04-01 10:00", [(uuid.UUID(tea), 1, "20.00", "12.00")]
    )
    campaign_id = (await _campaign(api, {}, product=tea))["campaign"]["id"]
    mgr = manager(api)

    async def convert(customer: uuid.UUID, order_id: str) -> dict[str, Any]:
        body = await api.gql(
            CONVERT, {"c": campaign_id, "p": str(customer), "o": order_id}, token=mgr
        )
        result: dict[str, Any] = body["data"]["recordCampaignConversion"]
        return result

    assert (await convert(people[0], str(old)))["code"] == "OUTSIDE_CAMPAIGN_WINDOW"
    other = await make_order(api, mgr, people[0], [{"productId": cake, "quantity": 1}])
    await move(api, mgr, other["order"]["id"], "PAID")
    assert (await convert(people[0], other["order"]["id"]))["code"] == "NOT_CAMPAIGN_PRODUCT"
    unpaid = await make_order(api, mgr, people[0], [{"productId": tea, "quantity": 1}])
    assert (await convert(people[0], unpaid["order"]["id"]))["code"] == "ORDER_NOT_CONVERTIBLE"
    body = await api.gql(RESULTS, {"id": campaign_id}, token=mgr)
    assert body["data"]["campaignResults"]["conversions"] == 0

    await move(api, mgr, unpaid["order"]["id"], "PAID")
    paid = await convert(people[0], unpaid["order"]["id"])
    assert paid["results"] == {"conversions": 1, "revenue": "20.00"}
    later = await make_order(api, mgr, people[1], [{"productId": tea, "quantity": 2}])
    await move(api, mgr, later["order"]["id"], "PAID")
    assert (await convert(people[1], later["order"]["id"]))["results"]["conversions"] == 2
    # Cancelled after it was recorded: the conversion no longer counts.
    await move(api, mgr, later["order"]["id"], "CANCELLED")
    body = await api.gql(RESULTS, {"id": campaign_id}, token=mgr)
    results = body["data"]["campaignResults"]
    assert (results["conversions"], results["revenue"]) == (1, "20.00")
