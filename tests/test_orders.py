"""Products and orders over HTTP: exact money, the status machine, row scope."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from server.app import AppState
from server.data.models import Order, OrderItem
from tests.conftest import Api
from tests.factories import make_customer
from tests.ops_helpers import (
    CREATE_PRODUCT,
    UPDATE_STATUS,
    make_order,
    make_product,
    manager,
    move,
)
from tests.sql_statements import count_statements


async def _order_count(state: AppState) -> tuple[int, int]:
    async with state.sessions() as session:
        orders = await session.scalar(select(func.count()).select_from(Order))
        items = await session.scalar(select(func.count()).select_from(OrderItem))
    return int(orders or 0), int(items or 0)


async def test_products_created_by_managers_and_listed_by_category(api: Api) -> None:
    await make_product(api, "TEA-1", "19.99", "12.34", category="tea", is_new=True)
    await make_product(api, "CUP-1", "5.00", "1.00", category="cups")
    agent = api.token("agent", subject="agent-1", team="east")
    body = await api.gql(
        '{ products(category: "tea") { nodes { sku unitPrice unitCost isNew } '
        "pageInfo { hasNextPage } } }",
        token=agent,
    )
    assert body["data"]["products"]["nodes"] == [
        {"sku": "TEA-1", "unitPrice": "19.99", "unitCost": "12.34", "isNew": True}
    ]
    denied = await api.gql(
        CREATE_PRODUCT,
        {
            "input": {
                "sku": "X",
                "name": "x",
                "category": "c",
                "unitPrice": "1",
                "unitCost": "1",
            }
        },
        token=agent,
    )
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    duplicate = await api.gql(
        CREATE_PRODUCT,
        {
            "input": {
                "sku": "TEA-1",
                "name": "again",
                "category": "tea",
                "unitPrice": "1",
                "unitCost": "1",
            }
        },
        token=manager(api),
    )
    assert duplicate["data"]["createProduct"]["code"] == "DUPLICATE_SKU"


async def test_order_totals_are_exact_decimals(api: Api, state: AppState) -> None:
    customer = await make_customer(state, owner_id="agent-1", team="east")
    tea = await make_product(api, "TEA-1", "19.99", "12.34")
    cup = await make_product(api, "CUP-1", "0.10", "0.07")
    agent = api.token("agent", subject="agent-1", team="east")
    result = await make_order(
        api,
        agent,
        customer,
        [
            {"productId": tea, "quantity": 3},
            {"productId": cup, "quantity": 3, "unitPrice": "0.10"},
        ],
    )
    assert result["__typename"] == "OrderSaved", result
    order = result["order"]
    # 3 x 19.99 + 3 x 0.10: 60.27 exactly (binary floats would give 60.269999…).
    assert order["total"] == "60.27"
    assert order["costTotal"] == "37.23"
    assert [i["lineTotal"] for i in order["items"]] == ["59.97", "0.30"]
    assert order["status"] == "CREATED"
    assert order["timeline"] == [{"status": "CREATED", "actor": "agent-1", "trackingNote": None}]
    async with state.sessions() as session:
        stored = await session.get(Order, uuid.UUID(order["id"]))
    assert stored is not None
    assert str(stored.total) == "60.27"


async def test_status_moves_along_the_machine_with_a_timeline(api: Api, state: AppState) -> None:
    customer = await make_customer(state, owner_id="agent-1", team="east")
    tea = await make_product(api, "TEA-1", "19.99", "12.34")
    agent = api.token("agent", subject="agent-1", team="east")
    order_id = (await make_order(api, agent, customer, [{"productId": tea, "quantity": 1}]))[
        "order"
    ]["id"]
    await move(api, agent, order_id, "PAID")
    shipped = await api.gql(
        UPDATE_STATUS,
        {"orderId": order_id, "status": "SHIPPED", "note": "SF Express 123"},
        token=agent,
    )
    assert shipped["data"]["updateOrderStatus"]["order"]["status"] == "SHIPPED"
    final = await move(api, agent, order_id, "DELIVERED", "RETURNED")
    timeline = final["order"]["timeline"]
    assert [t["status"] for t in timeline] == [
        "CREATED",
        "PAID",
        "SHIPPED",
        "DELIVERED",
        "RETURNED",
    ]
    assert timeline[2]["trackingNote"] == "SF Express 123"


ILLEGAL = [
    ([], "SHIPPED"),
    ([], "DELIVERED"),
    ([], "RETURNED"),
    (["PAID"], "DELIVERED"),
    (["PAID"], "RETURNED"),
    (["PAID"], "CREATED"),
    (["PAID", "SHIPPED"], "CANCELLED"),
    (["PAID", "SHIPPED"], "PAID"),
    (["PAID", "SHIPPED", "DELIVERED"], "CANCELLED"),
    (["PAID", "SHIPPED", "DELIVERED"], "SHIPPED"),
    (["CANCELLED"], "PAID"),
    (["PAID", "SHIPPED", "DELIVERED", "RETURNED"], "DELIVERED"),
]


async def test_every_illegal_transition_is_refused_and_changes_nothing(
    api: Api, state: AppState
) -> None:
    customer = await make_customer(state, owner_id="agent-1", team="east")
    tea = await make_product(api, "TEA-1", "19.99", "12.34")
    agent = api.token("agent", subject="agent-1", team="east")
    for path, target in ILLEGAL:
        created = await make_order(api, agent, customer, [{"productId": tea, "quantity": 1}])
        order_id = created["order"]["id"]
        if path:
            await move(api, agent, order_id, *path)
        body = await api.gql(UPDATE_STATUS, {"orderId": order_id, "status": target}, token=agent)
        result = body["data"]["updateOrderStatus"]
        assert result["__typename"] == "UserError", (path, target)
        assert result["code"] == "ILLEGAL_TRANSITION"
        after = await api.gql(
            "query($id: ID!) { order(id: $id) { status timeline { status } } }",
            {"id": order_id},
            token=agent,
        )
        expected = path[-1] if path else "CREATED"
        assert after["data"]["order"]["status"] == expected
        assert len(after["data"]["order"]["timeline"]) == len(path) + 1
    # A status outside the enum never reaches the service: the schema refuses it.
    unknown = await api.post(
        UPDATE_STATUS, {"orderId": order_id, "status": "TELEPORTED"}, token=agent
    )
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_bad_order_input_is_refused_and_writes_nothing(api: Api, state: AppState) -> None:
    customer = await make_customer(state, owner_id="agent-1", team="east")
    tea = await make_product(api, "TEA-1", "19.99", "12.34")
    agent = api.token("agent", subject="agent-1", team="east")
    cases = [
        ([], "BAD_USER_INPUT"),
        ([{"productId": tea, "quantity": 0}], "BAD_USER_INPUT"),
        ([{"productId": tea, "quantity": 1, "unitPrice": "1.999"}], "INVALID_AMOUNT"),
        ([{"productId": tea, "quantity": 1, "unitPrice": "-1"}], "INVALID_AMOUNT"),
        (
            [{"productId": tea, "quantity": 1}, {"productId": str(uuid.uuid4()), "quantity": 1}],
            "NOT_FOUND",
        ),
    ]
    for items, code in cases:
        result = await make_order(api, agent, customer, items)
        assert result["__typename"] == "UserError", items
        assert result["code"] == code, (items, result)
    assert await _order_count(state) == (0, 0)


async def test_orders_follow_the_customer_row_scope(api: Api, state: AppState) -> None:
    mine = await make_customer(state, owner_id="agent-1", team="east")
    theirs = await make_customer(state, owner_id="agent-2", team="east")
    tea = await make_product(api, "TEA-1", "19.99", "12.34")
    mgr = manager(api)
    my_order = (await make_order(api, mgr, mine, [{"productId": tea, "quantity": 1}]))["order"]
    their_order = (await make_order(api, mgr, theirs, [{"productId": tea, "quantity": 2}]))["order"]
    agent = api.token("agent", subject="agent-1", team="east")

    listed = await api.gql("{ orders { totalCount nodes { id } } }", token=agent)
    assert [n["id"] for n in listed["data"]["orders"]["nodes"]] == [my_order["id"]]
    assert listed["data"]["orders"]["totalCount"] == 1
    team = await api.gql("{ orders { totalCount nodes { id } } }", token=mgr)
    assert len(team["data"]["orders"]["nodes"]) == 2
    assert team["data"]["orders"]["totalCount"] == 2
    paid = await api.gql("{ orders(filter: {status: PAID}) { totalCount } }", token=mgr)
    assert paid["data"]["orders"]["totalCount"] == 0

    hidden = await api.gql(
        "query($id: ID!) { order(id: $id) { id } }", {"id": their_order["id"]}, token=agent
    )
    assert hidden["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    moved = await api.gql(
        UPDATE_STATUS, {"orderId": their_order["id"], "status": "PAID"}, token=agent
    )
    assert moved["data"]["updateOrderStatus"]["code"] == "NOT_FOUND"
    refused = await make_order(api, agent, theirs, [{"productId": tea, "quantity": 1}])
    assert refused["code"] == "NOT_FOUND"

    west = api.token("manager", subject="mgr-west", team="west")
    nothing = await api.gql("{ orders { nodes { id } } }", token=west)
    assert nothing["data"]["orders"]["nodes"] == []


async def test_customer_orders_page_through(api: Api, state: AppState) -> None:
    customer = await make_customer(state, owner_id="agent-1", team="east")
    other = await make_customer(state, owner_id="agent-1", team="east")
    tea = await make_product(api, "TEA-1", "19.99", "12.34")
    agent = api.token("agent", subject="agent-1", team="east")
    ids = [
        (await make_order(api, agent, customer, [{"productId": tea, "quantity": n}]))["order"]["id"]
        for n in (1, 2, 3)
    ]
    await make_order(api, agent, other, [{"productId": tea, "quantity": 1}])
    query = """
    query($id: ID!, $after: String) {
      customer(id: $id) {
        orders(first: 2, after: $after) {
          pageInfo { hasNextPage endCursor } nodes { id total }
        }
      }
    }
    """
    first = await api.gql(query, {"id": str(customer)}, token=agent)
    page = first["data"]["customer"]["orders"]
    assert [n["total"] for n in page["nodes"]] == ["19.99", "39.98"]
    assert page["pageInfo"]["hasNextPage"] is True
    second = await api.gql(
        query, {"id": str(customer), "after": page["pageInfo"]["endCursor"]}, token=agent
    )
    rest = second["data"]["customer"]["orders"]
    assert [n["id"] for n in page["nodes"] + rest["nodes"]] == ids
    assert rest["pageInfo"]["hasNextPage"] is False


async def test_customer_list_with_orders_and_loyalty(api: Api, state: AppState) -> None:
    customers = [await make_customer(state, owner_id="agent-1", team="east") for _ in range(4)]
    tea = await make_product(api, "TEA-1", "19.99", "12.34")
    agent = api.token("agent", subject="agent-1", team="east")
    order = await make_order(api, agent, customers[1], [{"productId": tea, "quantity": 1}])
    await move(api, agent, order["order"]["id"], "PAID")
    body = await api.gql(
        "{ customers(first: 10) { nodes { id loyalty { balance } "
        "orders { totalCount nodes { total } } } } }",
        token=agent,
    )
    assert "errors" not in body
    nodes = {n["id"]: n for n in body["data"]["customers"]["nodes"]}
    assert nodes[str(customers[1])]["loyalty"] == {"balance": 1}
    assert nodes[str(customers[1])]["orders"] == {"totalCount": 1, "nodes": [{"total": "19.99"}]}
    assert nodes[str(customers[0])]["orders"]["totalCount"] == 0


NESTED_ORDERS = """
query($customers: Int!, $orders: Int!) {
  customers(first: $customers) {
    nodes { id orders(first: $orders) { totalCount nodes { id total items { quantity } } } }
  }
}
"""


async def test_nested_orders_cost_a_constant_number_of_statements(
    api: Api, state: AppState
) -> None:
    customers = [await make_customer(state, owner_id="agent-1", team="east") for _ in range(6)]
    tea = await make_product(api, "TEA-N", "10.00", "6.00")
    agent = api.token("agent", subject="agent-1", team="east")
    for customer in customers:
        for _ in range(3):
            await make_order(api, agent, customer, [{"productId": tea, "quantity": 2}])

    with count_statements(state) as small:
        body = await api.gql(NESTED_ORDERS, {"customers": 1, "orders": 1}, token=agent)
    assert "errors" not in body
    with count_statements(state) as large:
        body = await api.gql(NESTED_ORDERS, {"customers": 6, "orders": 2}, token=agent)
    assert "errors" not in body
    nodes = body["data"]["customers"]["nodes"]
    assert len(nodes) == 6
    for node in nodes:
        assert node["orders"]["totalCount"] == 3
        assert len(node["orders"]["nodes"]) == 2
        assert all(o["items"] == [{"quantity": 2}] for o in node["orders"]["nodes"])
    assert len(large) == len(small)
