"""Shared GraphQL snippets and set-up steps for the orders, loyalty, campaign and care tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from server.app import AppState
from server.data.models import Consent, Customer
from tests.conftest import Api

CREATE_PRODUCT = """
mutation($input: CreateProductInput!) {
  createProduct(input: $input) {
    __typename
    ... on ProductCreated { product { id sku unitPrice unitCost isNew category } }
    ... on UserError { code message field }
  }
}
"""

ORDER_FIELDS = """
  id customerId status total costTotal
  items { productId quantity unitPrice unitCost lineTotal }
  timeline { status actor trackingNote }
"""

CREATE_ORDER = f"""
mutation($customerId: ID!, $items: [OrderItemInput!]!) {{
  createOrder(customerId: $customerId, items: $items) {{
    __typename
    ... on OrderSaved {{ order {{ {ORDER_FIELDS} }} }}
    ... on UserError {{ code message }}
  }}
}}
"""

UPDATE_STATUS = f"""
mutation($orderId: ID!, $status: OrderStatus!, $note: String) {{
  updateOrderStatus(orderId: $orderId, status: $status, trackingNote: $note) {{
    __typename
    ... on OrderSaved {{ order {{ {ORDER_FIELDS} }} }}
    ... on UserError {{ code message }}
  }}
}}
"""


def manager(api: Api) -> str:
    return api.token("manager", subject="mgr-east", team="east")


async def make_product(
    api: Api, sku: str, price: str, cost: str, category: str = "tea", is_new: bool = False
) -> str:
    body = await api.gql(
        CREATE_PRODUCT,
        {
            "input": {
                "sku": sku,
                "name": f"Product {sku}",
                "category": category,
                "unitPrice": price,
                "unitCost": cost,
                "isNew": is_new,
            }
        },
        token=api.token("admin", subject="root"),
    )
    result = body["data"]["createProduct"]
    assert result["__typename"] == "ProductCreated", body
    product_id: str = result["product"]["id"]
    return product_id


async def make_order(
    api: Api, token: str, customer_id: uuid.UUID, items: list[dict[str, Any]]
) -> dict[str, Any]:
    body = await api.gql(
        CREATE_ORDER, {"customerId": str(customer_id), "items": items}, token=token
    )
    result: dict[str, Any] = body["data"]["createOrder"]
    return result


async def move(api: Api, token: str, order_id: str, *statuses: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for status in statuses:
        body = await api.gql(UPDATE_STATUS, {"orderId": order_id, "status": status}, token=token)
        result = body["data"]["updateOrderStatus"]
        assert result["__typename"] == "OrderSaved", result
    return result


async def grant_consent(
    state: AppState, customer_id: uuid.UUID, purpose: str, *, withdrawn: bool = False
) -> None:
    """Consents are recorded by their own mutations elsewhere; tests write the row."""
    now = datetime.now(UTC)
    async with state.sessions() as session, session.begin():
        session.add(
            Consent(
                customer_id=customer_id,
                purpose=purpose,
                granted_at=now - timedelta(days=30),
                withdrawn_at=now - timedelta(days=1) if withdrawn else None,
                source="test",
                recorded_by="test:seeder",
            )
        )


async def update_customer(state: AppState, customer_id: uuid.UUID, **values: Any) -> None:
    async with state.sessions() as session, session.begin():
        await session.execute(update(Customer).where(Customer.id == customer_id).values(**values))
