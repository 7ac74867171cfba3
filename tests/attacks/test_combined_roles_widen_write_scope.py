"""Attack 2: a read-only role held beside a writing one widened what the caller could write.

agent + analyst updated another team's customer (and kept it after the role was
revoked); agent + support updated them; manager + support tagged them. Each role's scope
now counts only for the actions that role allows.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from server.app import AppState
from server.data.models import Customer
from tests.conftest import Api
from tests.factories import make_customer

ASSIGN = """
mutation($subject: String!, $role: String!) {
  assignRole(subject: $subject, role: $role) { __typename }
}
"""
REVOKE = """
mutation($subject: String!, $role: String!) {
  revokeRole(subject: $subject, role: $role) { __typename }
}
"""
UPDATE = """
mutation($id: ID!, $owner: String!) {
  updateCustomer(id: $id, input: {ownerId: $owner, region: "深圳"}) {
    __typename ... on UserError { code }
  }
}
"""
TAG = """
mutation($id: ID!) {
  tagCustomer(customerId: $id, add: ["stolen"]) { __typename ... on UserError { code } }
}
"""
MERGE = """
mutation($survivor: ID!, $duplicate: ID!) {
  mergeCustomers(survivorId: $survivor, duplicateId: $duplicate) {
    __typename ... on UserError { code }
  }
}
"""


async def _file(state: AppState, customer_id: uuid.UUID) -> tuple[Any, ...]:
    async with state.sessions() as session:
        row = (
            await session.execute(
                select(
                    Customer.owner_id,
                    Customer.team,
                    Customer.region,
                    Customer.tags,
                    Customer.merged_into_id,
                ).where(Customer.id == customer_id)
            )
        ).one()
    return tuple(row)


def _code(body: dict[str, Any], field: str) -> str:
    """The refusal's code, or the result's type name when the write went through."""
    result = (body.get("data") or {}).get(field)
    if isinstance(result, dict):
        return str(result.get("code") or result["__typename"])
    return str(body["errors"][0]["extensions"]["code"])


async def test_a_read_only_role_never_widens_what_a_caller_may_write(
    api: Api, state: AppState
) -> None:
    theirs = await make_customer(state, owner_id="agent-3", team="west")
    mine = await make_customer(state, owner_id="agent-1", team="east")
    before = await _file(state, theirs)
    admin = api.token("admin", subject="root")
    assigned = await api.gql(ASSIGN, {"subject": "agent-1", "role": "analyst"}, token=admin)
    assert assigned["data"]["assignRole"]["__typename"] == "RoleAssigned"
    agent = api.token("agent", subject="agent-1", team="east")

    # The analyst role reads every customer: agent-1 now sees the other team's file...
    listed = await api.gql("{ customers(first: 10) { totalCount } }", token=agent)
    assert listed["data"]["customers"]["totalCount"] == 2
    # ...and writes only its own.
    taken = await api.gql(UPDATE, {"id": str(theirs), "owner": "agent-1"}, token=agent)
    assert _code(taken, "updateCustomer") == "NOT_FOUND"
    tagged = await api.gql(TAG, {"id": str(theirs)}, token=agent)
    assert _code(tagged, "tagCustomer") == "NOT_FOUND"
    merged = await api.gql(MERGE, {"survivor": str(mine), "duplicate": str(theirs)}, token=agent)
    assert _code(merged, "mergeCustomers") == "NOT_FOUND"
    revoked = await api.gql(REVOKE, {"subject": "agent-1", "role": "analyst"}, token=admin)
    assert revoked["data"]["revokeRole"]["__typename"] == "RoleRevoked"
    assert await _file(state, theirs) == before


async def test_support_beside_agent_or_manager_changes_no_other_teams_file(
    api: Api, state: AppState
) -> None:
    theirs = await make_customer(state, owner_id="agent-3", team="west")
    before = await _file(state, theirs)
    for roles, subject in ((("agent", "support"), "agent-1"), (("manager", "support"), "m-1")):
        token = api.token(*roles, subject=subject, team="east")
        # Support reads every customer file: the combination may read the other team's.
        seen = await api.gql(
            "query($id: ID!) { customer(id: $id) { id } }", {"id": str(theirs)}, token=token
        )
        assert seen["data"]["customer"] == {"id": str(theirs)}
        updated = await api.gql(UPDATE, {"id": str(theirs), "owner": subject}, token=token)
        assert _code(updated, "updateCustomer") == "NOT_FOUND", roles
        tagged = await api.gql(TAG, {"id": str(theirs)}, token=token)
        assert _code(tagged, "tagCustomer") == "NOT_FOUND", roles
    assert await _file(state, theirs) == before
