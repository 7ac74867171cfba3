"""Ciphertexts are bound to their place; blind-index lookups survive collisions."""

from __future__ import annotations

import uuid

from sqlalchemy import select, update

from server.app import AppState
from server.data.models import Customer
from tests.conftest import Api
from tests.factories import customer_data, make_customer

BY_ID = "query One($id: ID!) { customer(id: $id) { id name phone email tier } }"


async def _move(state: AppState, target: uuid.UUID, column: str, ciphertext: bytes) -> None:
    async with state.sessions() as session, session.begin():
        await session.execute(
            update(Customer).where(Customer.id == target).values({column: ciphertext})
        )


async def _ciphertext(state: AppState, customer_id: uuid.UUID, column: str) -> bytes:
    async with state.sessions() as session:
        value = await session.scalar(
            select(getattr(Customer, column)).where(Customer.id == customer_id)
        )
    assert isinstance(value, bytes)
    return value


async def test_ciphertext_moved_to_another_row_fails_only_that_field(
    api: Api, state: AppState
) -> None:
    source = await make_customer(state, phone="13900000001")
    target = await make_customer(state, phone="13900000002")
    await _move(state, target, "phone", await _ciphertext(state, source, "phone"))
    token = api.token("manager", subject="m-1", team="east")

    body = await api.gql(BY_ID, {"id": str(target)}, token=token, purpose="support")

    customer = body["data"]["customer"]
    assert customer["phone"] is None  # never the other person's phone
    assert customer["name"] is not None
    assert customer["tier"] == "MID"
    [error] = body["errors"]
    assert error["path"] == ["customer", "phone"]
    assert error["extensions"]["code"] == "UNDECRYPTABLE"
    assert "13900000001" not in str(body)
    assert "+8613900000001" not in str(body)
    # The source row is untouched and still opens.
    intact = await api.gql(BY_ID, {"id": str(source)}, token=token, purpose="support")
    assert intact["data"]["customer"]["phone"] == "+8613900000001"


async def test_ciphertext_moved_to_another_column_fails(api: Api, state: AppState) -> None:
    customer_id = await make_customer(state, phone="13900000003")
    await _move(state, customer_id, "email", await _ciphertext(state, customer_id, "phone"))
    token = api.token("manager", subject="m-1", team="east")

    body = await api.gql(BY_ID, {"id": str(customer_id)}, token=token, purpose="support")

    assert body["data"]["customer"]["email"] is None
    assert body["data"]["customer"]["phone"] == "+8613900000003"
    [error] = body["errors"]
    assert error["path"] == ["customer", "email"]
    assert error["extensions"]["code"] == "UNDECRYPTABLE"


LOOKUP = """
query Find($phone: String, $email: String, $nationalId: String) {
  customerByContact(phone: $phone, email: $email, nationalId: $nationalId) { id }
}
"""


async def test_lookups_find_the_right_customer_among_collisions(api: Api, state: AppState) -> None:
    # Two bits: four index values for 24 customers, so every lookup meets collisions.
    # (Production keeps BLIND_INDEX_BITS; only this test's vault is narrowed.)
    state.services.vault.blind_index_bits = 2
    people = [customer_data() for _ in range(24)]
    ids = [
        await make_customer(
            state, phone=p.phone, email=p.email, national_id=p.national_id, name=p.name
        )
        for p in people
    ]
    async with state.sessions() as session:
        indexes = (await session.execute(select(Customer.phone_bidx))).scalars().all()
    assert len(set(indexes)) <= 4 < len(indexes)
    token = api.token("manager", subject="m-1", team="east")
    # A lookup needs the field in clear: let this manager read national IDs in clear.
    granted = await api.gql(
        """mutation { addPolicy(input: {subject: "user:m-1", object: "customer.national_id",
                                        action: "read:clear"}) { __typename } }""",
        token=api.token("admin", subject="root"),
    )
    assert granted["data"]["addPolicy"]["__typename"] == "PolicyAdded", granted

    for person, customer_id in list(zip(people, ids, strict=True))[::5]:
        assert person.email
        assert person.national_id
        assert person.phone
        for variables in (
            {"phone": "+86 " + person.phone},
            {"email": person.email.upper()},
            {"nationalId": person.national_id.lower()},
        ):
            body = await api.gql(LOOKUP, variables, token=token, purpose="support")
            assert body["data"]["customerByContact"] == {"id": str(customer_id)}, variables
    missing = await api.gql(LOOKUP, {"phone": "13611112222"}, token=token, purpose="support")
    assert missing["data"]["customerByContact"] is None

    # A new customer whose index collides but whose phone differs is not a duplicate;
    # the same phone in another spelling is.
    fresh = await api.gql(
        CREATE, {"input": {"name": "New", "phone": "13700009999"}}, token=token, purpose="support"
    )
    assert fresh["data"]["createCustomer"]["__typename"] == "CustomerCreated"
    duplicate = await api.gql(
        CREATE,
        {"input": {"name": "Dup", "phone": "+86 137-0000-9999"}},
        token=token,
        purpose="support",
    )
    assert duplicate["data"]["createCustomer"] == {
        "__typename": "UserError",
        "code": "DUPLICATE_CUSTOMER",
    }


CREATE = """
mutation New($input: CreateCustomerInput!) {
  createCustomer(input: $input) {
    __typename
    ... on UserError { code }
    ... on CustomerCreated { customer { id } }
  }
}
"""
