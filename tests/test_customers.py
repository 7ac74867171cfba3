"""The first customer slice through HTTP: list, by id, create, row scope, field modes."""

from __future__ import annotations

import uuid

from server.app import AppState
from server.vault.normalise import national_id_check_char
from tests.conftest import Api
from tests.factories import make_customer

LIST = """
query List($first: Int!, $after: String) {
  customers(first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { id name phone nationalId bankCard tier } }
  }
}
"""


async def test_list_pages_through_own_customers_with_total(api: Api, state: AppState) -> None:
    mine = [await make_customer(state, owner_id="agent-1") for _ in range(5)]
    await make_customer(state, owner_id="agent-2")
    token = api.token("agent", subject="agent-1", team="east")

    first = await api.gql(LIST, {"first": 3}, token=token, purpose="support")
    page = first["data"]["customers"]
    assert page["totalCount"] == 5
    assert page["pageInfo"]["hasNextPage"] is True
    second = await api.gql(
        LIST, {"first": 3, "after": page["pageInfo"]["endCursor"]}, token=token, purpose="support"
    )
    rest = second["data"]["customers"]
    assert rest["pageInfo"]["hasNextPage"] is False
    ids = [e["node"]["id"] for e in page["edges"] + rest["edges"]]
    assert ids == [str(i) for i in mine]


async def test_agent_sees_contacts_clear_and_identity_masked(api: Api, state: AppState) -> None:
    nid = "11010119900307663" + national_id_check_char("11010119900307663")
    await make_customer(state, name="李小龙", phone="13812345678", national_id=nid)
    token = api.token("agent", subject="agent-1", team="east")
    body = await api.gql(LIST, {"first": 10}, token=token, purpose="support")
    node = body["data"]["customers"]["edges"][0]["node"]
    assert node["name"] == "李小龙"
    assert node["phone"] == "+8613812345678"
    # The mask keeps the last four digits only (no region, no length).
    assert node["nationalId"] == "*" * 14 + nid[-4:]
    assert node["bankCard"].startswith("**** ")
    assert "errors" not in body


async def test_sensitive_clear_needs_a_purpose(api: Api, state: AppState) -> None:
    await make_customer(state, phone="13812345678")
    token = api.token("agent", subject="agent-1", team="east")
    body = await api.gql(LIST, {"first": 10}, token=token)
    node = body["data"]["customers"]["edges"][0]["node"]
    assert node["phone"] == "138****5678"


async def test_customer_by_id_and_out_of_scope_is_not_found(api: Api, state: AppState) -> None:
    mine = await make_customer(state, owner_id="agent-1")
    theirs = await make_customer(state, owner_id="agent-2")
    token = api.token("agent", subject="agent-1", team="east")
    query = "query($id: ID!) { customer(id: $id) { id tier } }"

    found = await api.gql(query, {"id": str(mine)}, token=token)
    assert found["data"]["customer"] == {"id": str(mine), "tier": "MID"}

    for missing in (theirs, uuid.uuid4()):
        body = await api.gql(query, {"id": str(missing)}, token=token)
        assert body["data"]["customer"] is None
        assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        assert body["errors"][0]["path"] == ["customer"]


async def test_denied_field_is_null_with_forbidden_at_its_path(api: Api, state: AppState) -> None:
    await make_customer(state)
    token = api.token("analyst", subject="ann")
    body = await api.gql(
        "{ customers(first: 5) { edges { node { id tier phone } } } }", token=token
    )
    node = body["data"]["customers"]["edges"][0]["node"]
    assert node["tier"] == "MID"
    assert node["phone"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert body["errors"][0]["path"] == ["customers", "edges", 0, "node", "phone"]


async def test_create_customer_then_duplicate_is_refused(api: Api) -> None:
    token = api.token("agent", subject="agent-1", team="east")
    mutation = """
    mutation($input: CreateCustomerInput!) {
      createCustomer(input: $input) {
        __typename
        ... on CustomerCreated { customer { id name ownerId email } }
        ... on UserError { code message }
      }
    }
    """
    data = {"name": "Ada Lovelace", "email": "Ada@Example.com", "phone": "13900001111"}
    created = await api.gql(mutation, {"input": data}, token=token, purpose="sales")
    result = created["data"]["createCustomer"]
    assert result["__typename"] == "CustomerCreated"
    assert result["customer"]["ownerId"] == "agent-1"
    assert result["customer"]["email"] == "ada@example.com"

    again = await api.gql(
        mutation, {"input": {**data, "phone": None}}, token=token, purpose="sales"
    )
    assert again["data"]["createCustomer"] == {
        "__typename": "UserError",
        "code": "DUPLICATE_CUSTOMER",
        "message": "a customer with this email already exists",
    }


async def test_customer_by_contact_finds_through_blind_index(api: Api, state: AppState) -> None:
    target = await make_customer(state, email="Needle@Example.com")
    for _ in range(3):
        await make_customer(state)
    token = api.token("agent", subject="agent-1", team="east")
    body = await api.gql(
        'query { customerByContact(email: " needle@example.COM ") { id email } }',
        token=token,
        purpose="support",
    )
    assert body["data"]["customerByContact"] == {"id": str(target), "email": "needle@example.com"}
