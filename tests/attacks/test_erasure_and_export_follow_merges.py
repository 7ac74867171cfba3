"""Attack 3: erasure and export stopped at a merge.

After `mergeCustomers(A, B)` and `eraseCustomer(A)`, B's name, email and birthday were
still shown in clear by `customer(id: B)`; `eraseCustomer(B)` and `exportCustomerData(B)`
answered NOT_FOUND; the survivor's export left out B's own values.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from server.app import AppState
from server.data.models import Customer, CustomerKey
from server.errors import VaultError
from tests.conftest import Api
from tests.factories import make_customer

MERGE = """
mutation($survivor: ID!, $duplicate: ID!) {
  mergeCustomers(survivorId: $survivor, duplicateId: $duplicate) { __typename }
}
"""
EXPORT = "query($id: ID!) { exportCustomerData(id: $id) }"
ERASE = """
mutation($id: ID!) {
  eraseCustomer(id: $id) { __typename ... on UserError { code } }
}
"""
READ = "query($id: ID!) { customer(id: $id) { id name email birthday } }"


async def _merged_pair(api: Api, state: AppState, n: int) -> tuple[uuid.UUID, uuid.UUID]:
    survivor = await make_customer(state, name=f"存活{n}", email=None, birthday=None)
    duplicate = await make_customer(state, name=f"重复{n}", email=f"dup{n}@example.com")
    merged = await api.gql(
        MERGE,
        {"survivor": str(survivor), "duplicate": str(duplicate)},
        token=api.token("agent", subject="agent-1", team="east"),
    )
    assert merged["data"]["mergeCustomers"]["__typename"] == "CustomersMerged", merged
    return survivor, duplicate


async def _shredded(state: AppState, customer_id: uuid.UUID) -> bool:
    async with state.sessions() as session:
        key = (
            await session.execute(
                select(CustomerKey.kek_version, CustomerKey.wrapped_dek).where(
                    CustomerKey.customer_id == customer_id
                )
            )
        ).one()
        erased = await session.scalar(select(Customer.erased_at).where(Customer.id == customer_id))
    try:
        state.services.vault.open_data_key(customer_id, key.kek_version, key.wrapped_dek)
    except VaultError:
        return erased is not None
    return False


def _nothing_personal(body: dict[str, Any]) -> bool:
    node = (body.get("data") or {}).get("customer")
    if node is None:
        return True
    return all(node.get(f) is None for f in ("name", "email", "birthday"))


async def test_the_survivors_export_and_erasure_reach_the_merged_duplicate(
    api: Api, state: AppState
) -> None:
    survivor, duplicate = await _merged_pair(api, state, 1)
    compliance = api.token("compliance", subject="c-1")

    # Export by either id: the survivor's file, with the duplicate's own values in it.
    for asked in (survivor, duplicate):
        body = await api.gql(EXPORT, {"id": str(asked)}, token=compliance, purpose="compliance")
        assert "errors" not in body, body
        export = body["data"]["exportCustomerData"]
        assert export["customer"]["id"] == str(survivor)
        assert "重复1" in str(export)
        assert "dup1@example.com" in str(export)

    erased = await api.gql(ERASE, {"id": str(survivor)}, token=compliance, purpose="compliance")
    assert erased["data"]["eraseCustomer"]["__typename"] == "CustomerErased"
    assert await _shredded(state, survivor)
    assert await _shredded(state, duplicate)
    for token in (compliance, api.token("agent", subject="agent-1", team="east")):
        shown = await api.gql(READ, {"id": str(duplicate)}, token=token, purpose="support")
        assert _nothing_personal(shown), shown


@pytest.mark.parametrize("asked", ["duplicate", "survivor"])
async def test_erasing_by_the_duplicates_id_erases_the_whole_file(
    api: Api, state: AppState, asked: str
) -> None:
    survivor, duplicate = await _merged_pair(api, state, 2)
    target = duplicate if asked == "duplicate" else survivor
    erased = await api.gql(
        ERASE, {"id": str(target)}, token=api.token("compliance"), purpose="compliance"
    )
    assert erased["data"]["eraseCustomer"]["__typename"] == "CustomerErased", erased
    assert await _shredded(state, survivor)
    assert await _shredded(state, duplicate)
