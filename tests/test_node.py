"""`Query.node(id:)`: any record by id, through its type's own gate, scope and audit;
what the caller may not see answers exactly like an id nothing holds."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from server.app import AppState
from tests.conftest import Api
from tests.factories import make_customer, make_interactions
from tests.ops_helpers import make_order, make_product, manager

NODE = """
query($id: ID!) {
  node(id: $id) {
    __typename id
    ... on Customer { name phone tier birthDate birthYear }
    ... on Order { status customerId }
    ... on Interaction { kind customerId }
    ... on AuditEvent { outcome }
  }
}
"""

AUDIT_OF = """
query($customer: ID!) {
  auditEvents(filter: {customerId: $customer}, first: 20) {
    nodes { operationName outcome accesses { objectType action recordIds } }
  }
}
"""


def global_id(type_name: str, record_id: uuid.UUID | str) -> str:
    return base64.b64encode(f"{type_name}:{record_id}".encode()).decode()


def refusal(body: dict[str, Any]) -> tuple[Any, ...]:
    """Everything a caller is told about a refused lookup."""
    [error] = body["errors"]
    return body["data"], error["message"], error["extensions"], error["path"]


async def test_node_answers_like_the_root_field(api: Api, state: AppState) -> None:
    mine = await make_customer(state, owner_id="agent-1", phone="13812345678")
    agent = api.token("agent", subject="agent-1", team="east")
    by_root = await api.gql(
        "query($id: ID!) { customer(id: $id) { id name phone tier } }",
        {"id": str(mine)},
        token=agent,
    )
    for lookup in (str(mine), global_id("Customer", mine)):
        body = await api.gql(NODE, {"id": lookup}, token=agent)
        assert "errors" not in body, body
        node = body["data"]["node"]
        assert node["__typename"] == "Customer"
        assert {k: node[k] for k in ("id", "name", "phone", "tier")} == by_root["data"]["customer"]
        # Without a purpose the phone stays masked, as through `customer`.
        assert node["phone"] == "138****5678"


async def test_node_never_unmasks_a_birthday(api: Api, state: AppState) -> None:
    import datetime

    mine = await make_customer(state, owner_id="agent-1", birthday=datetime.date(1990, 5, 17))
    agent = api.token("agent", subject="agent-1", team="east")
    masked = (await api.gql(NODE, {"id": str(mine)}, token=agent))["data"]["node"]
    clear = (await api.gql(NODE, {"id": str(mine)}, token=agent, purpose="support"))["data"]
    assert (masked["birthDate"], masked["birthYear"]) == (None, 1990)
    assert (clear["node"]["birthDate"], clear["node"]["birthYear"]) == ("1990-05-17", 1990)


async def test_out_of_reach_answers_like_nothing(api: Api, state: AppState) -> None:
    theirs = await make_customer(state, owner_id="agent-2", team="west")
    mine = await make_customer(state, owner_id="agent-1", team="east")
    tea = await make_product(api, "TEA-N", "9.99", "5.00")
    order = (await make_order(api, manager(api), mine, [{"productId": tea, "quantity": 1}]))[
        "order"
    ]
    agent = api.token("agent", subject="agent-1", team="east")
    integrator = api.token("integrator", subject="int-1")

    nothing = refusal(await api.gql(NODE, {"id": str(uuid.uuid4())}, token=agent))
    assert nothing == ({"node": None}, "node not found", {"code": "NOT_FOUND"}, ["node"])
    # Out of the row scope, a type the caller may not read at all (orders, the audit),
    # a well-formed global id naming the wrong type: all the same answer.
    audit_id = await _any_audit_event(api)
    for token, lookup in (
        (agent, str(theirs)),
        (agent, global_id("Customer", theirs)),
        (integrator, order["id"]),
        (agent, audit_id),
        (agent, global_id("Order", mine)),
        (agent, global_id("Customer", uuid.uuid4())),
    ):
        assert refusal(await api.gql(NODE, {"id": lookup}, token=token)) == nothing, lookup

    found = await api.gql(NODE, {"id": order["id"]}, token=agent)
    assert found["data"]["node"] == {
        "__typename": "Order",
        "id": order["id"],
        "status": "CREATED",
        "customerId": str(mine),
    }


async def test_a_refused_node_lookup_is_audited_as_the_types_own(api: Api, state: AppState) -> None:
    theirs = await make_customer(state, owner_id="agent-2", team="west")
    agent = api.token("agent", subject="agent-1", team="east")
    await api.gql(NODE, {"id": str(theirs)}, token=agent)
    trail = await api.gql(
        AUDIT_OF,
        {"customer": str(theirs)},
        token=api.token("compliance", subject="dpo-1"),
        purpose="compliance",
    )
    denied = [e for e in trail["data"]["auditEvents"]["nodes"] if e["outcome"] != "OK"]
    assert denied, trail
    refused = [(a["objectType"], a["action"], a["recordIds"]) for a in denied[0]["accesses"]]
    assert ("customer", "read", [str(theirs)]) in refused, refused


async def test_fragments_of_other_types_do_not_widen_a_read(api: Api, state: AppState) -> None:
    customer = await make_customer(state, owner_id="agent-1", team="east")
    [interaction] = await make_interactions(state, customer, 1)
    body = await api.gql(NODE, {"id": str(interaction)}, token=manager(api))
    assert body["data"]["node"] == {
        "__typename": "Interaction",
        "id": str(interaction),
        "kind": "CARE",
        "customerId": str(customer),
    }


async def test_bad_ids_are_bad_input(api: Api) -> None:
    agent = api.token("agent", subject="agent-1", team="east")
    for lookup in ("nope", global_id("Customer", "nope"), global_id("Nothing", uuid.uuid4())):
        body = await api.gql(NODE, {"id": lookup}, token=agent)
        assert body["data"] == {"node": None}
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert lookup not in body["errors"][0]["message"]


async def _any_audit_event(api: Api) -> str:
    body = await api.gql(
        "{ auditEvents(first: 1) { nodes { id } } }",
        token=api.token("compliance", subject="dpo-1"),
        purpose="compliance",
    )
    audit_id: str = body["data"]["auditEvents"]["nodes"][0]["id"]
    return audit_id
