"""Every stored time comes from the services' clock: with a fixed clock far from today,
the stamps of a customer file, an interaction and an order are the clock's instants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from server.app import AppState
from server.clock import FixedClock
from server.config import Settings
from server.data.models import AuditEvent, CustomerKey, LoyaltyEntry
from tests.conftest import Api
from tests.ops_helpers import make_product

T0 = datetime(2019, 4, 5, 6, 7, 8, tzinfo=UTC)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The due time below is the clock's instant plus wall-clock hours (T0 is the Qingming
    # holiday, when business hours would move it to the next working day).
    return settings.model_copy(update={"sla_clock": "wall"})


CREATE = """
mutation($input: CreateCustomerInput!) {
  createCustomer(input: $input) {
    __typename ... on CustomerCreated { customer { id } } ... on UserError { code message }
  }
}
"""
REVIEW = "mutation($id: ID!) { markReviewed(customerId: $id) { __typename } }"
UPDATE = """
mutation($id: ID!, $input: UpdateCustomerInput!) {
  updateCustomer(id: $id, input: $input) { __typename }
}
"""
FILE = "query($id: ID!) { customer(id: $id) { createdAt updatedAt reviewedAt } }"
INTERACTION = "interaction { id occurredAt firstResponseDueAt firstRespondedAt solvedAt }"
LOG = f"""
mutation($input: LogInteractionInput!) {{
  logInteraction(input: $input) {{
    __typename ... on InteractionPayload {{ {INTERACTION} }} ... on UserError {{ code message }}
  }}
}}
"""
RESPOND = f"""
mutation($id: ID!) {{
  respondToInteraction(id: $id) {{ ... on InteractionPayload {{ {INTERACTION} }} }}
}}
"""
SOLVE = f"""
mutation($id: ID!) {{
  solveInteraction(id: $id) {{ ... on InteractionPayload {{ {INTERACTION} }} }}
}}
"""
ORDER = "order { id orderedAt timeline { status at } }"
CREATE_ORDER = f"""
mutation($customerId: ID!, $items: [OrderItemInput!]!) {{
  createOrder(customerId: $customerId, items: $items) {{
    __typename ... on OrderSaved {{ {ORDER} }} ... on UserError {{ code message }}
  }}
}}
"""
MOVE_ORDER = f"""
mutation($orderId: ID!, $status: OrderStatus!) {{
  updateOrderStatus(orderId: $orderId, status: $status) {{ ... on OrderSaved {{ {ORDER} }} }}
}}
"""


def at(delta: timedelta) -> str:
    return (T0 + delta).isoformat()


async def _customer(api: Api, token: str) -> str:
    body = await api.gql(
        CREATE, {"input": {"name": "钟表", "phone": "13912345678", "team": "east"}}, token=token
    )
    result = body["data"]["createCustomer"]
    assert result["__typename"] == "CustomerCreated", body
    customer_id: str = result["customer"]["id"]
    return customer_id


async def test_a_customer_file_is_stamped_by_the_clock(api: Api, state: AppState) -> None:
    clock = FixedClock(T0)
    state.services.clock = clock
    token = api.token("manager", subject="m-1", team="east")
    customer = await _customer(api, token)
    clock.advance(timedelta(hours=1))
    reviewed = await api.gql(REVIEW, {"id": customer}, token=token)
    assert reviewed["data"]["markReviewed"]["__typename"] == "CustomerUpdated", reviewed
    clock.advance(timedelta(hours=1))
    await api.gql(UPDATE, {"id": customer, "input": {"region": "上海"}}, token=token)

    file = (await api.gql(FILE, {"id": customer}, token=token))["data"]["customer"]
    assert file == {
        "createdAt": at(timedelta(0)),
        "reviewedAt": at(timedelta(hours=1)),
        "updatedAt": at(timedelta(hours=2)),
    }
    async with state.sessions() as session:
        key_created = await session.scalar(select(CustomerKey.created_at))
        events = list(await session.scalars(select(AuditEvent.occurred_at)))
    assert key_created == T0
    assert events == [T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2), T0 + timedelta(hours=2)]


async def test_an_interaction_is_stamped_by_the_clock(api: Api, state: AppState) -> None:
    clock = FixedClock(T0)
    state.services.clock = clock
    token = api.token("manager", subject="m-1", team="east")
    customer = await _customer(api, token)
    variables: dict[str, Any] = {
        "input": {
            "customerId": customer,
            "channel": "PHONE",
            "direction": "INBOUND",
            "kind": "CONSULTATION",
        }
    }
    logged = (await api.gql(LOG, variables, token=token))["data"]["logInteraction"]
    interaction = logged["interaction"]
    assert (interaction["occurredAt"], interaction["firstResponseDueAt"]) == (
        at(timedelta(0)),
        at(timedelta(hours=2)),
    )
    clock.advance(timedelta(minutes=30))
    responded = (await api.gql(RESPOND, {"id": interaction["id"]}, token=token))["data"]
    assert responded["respondToInteraction"]["interaction"]["firstRespondedAt"] == at(
        timedelta(minutes=30)
    )
    clock.advance(timedelta(hours=3))
    solved = (await api.gql(SOLVE, {"id": interaction["id"]}, token=token))["data"]
    assert solved["solveInteraction"]["interaction"]["solvedAt"] == at(
        timedelta(hours=3, minutes=30)
    )


async def test_an_order_is_stamped_by_the_clock(api: Api, state: AppState) -> None:
    clock = FixedClock(T0)
    state.services.clock = clock
    token = api.token("manager", subject="m-1", team="east")
    customer = await _customer(api, token)
    product = await make_product(api, "CLK-1", "20.00", "12.00")
    clock.advance(timedelta(days=1))
    created = await api.gql(
        CREATE_ORDER,
        {"customerId": customer, "items": [{"productId": product, "quantity": 2}]},
        token=token,
    )
    order = created["data"]["createOrder"]["order"]
    assert order["orderedAt"] == at(timedelta(days=1))
    assert order["timeline"] == [{"status": "CREATED", "at": at(timedelta(days=1))}]
    clock.advance(timedelta(hours=5))
    moved = await api.gql(MOVE_ORDER, {"orderId": order["id"], "status": "PAID"}, token=token)
    timeline = moved["data"]["updateOrderStatus"]["order"]["timeline"]
    assert timeline == [
        {"status": "CREATED", "at": at(timedelta(days=1))},
        {"status": "PAID", "at": at(timedelta(days=1, hours=5))},
    ]
    async with state.sessions() as session:
        earned = list(await session.scalars(select(LoyaltyEntry.at)))
    assert earned == [T0 + timedelta(days=1, hours=5)]
