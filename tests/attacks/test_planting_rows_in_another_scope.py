"""Attack 6: planting rows in another's scope.

An agent's `createCustomer(input: {ownerId: "agent-3", team: "west"})` answered
NOT_FOUND, but the row was committed (agent-3 saw it); a manager's `importCustomers` row
for another team landed too.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from server.app import AppState
from server.data.models import AuditEvent, Customer
from tests.conftest import Api
from tests.factories import make_customer

CREATE = """
mutation($input: CreateCustomerInput!) {
  createCustomer(input: $input) {
    __typename ... on UserError { code field }
  }
}
"""
IMPORT = """
mutation($rows: [ImportCustomerRowInput!]!) {
  importCustomers(rows: $rows) { accepted rejected { row reason } written }
}
"""
UPDATE = """
mutation($id: ID!, $input: UpdateCustomerInput!) {
  updateCustomer(id: $id, input: $input) { __typename ... on UserError { code field } }
}
"""


async def _customers(state: AppState) -> list[tuple[str | None, str | None]]:
    async with state.sessions() as session:
        rows = await session.execute(select(Customer.owner_id, Customer.team))
        return sorted((r.owner_id, r.team) for r in rows)


async def _last_outcome(state: AppState) -> str:
    async with state.sessions() as session:
        return str(
            await session.scalar(
                select(AuditEvent.outcome).order_by(AuditEvent.seq.desc()).limit(1)
            )
        )


async def test_a_create_outside_the_callers_scope_writes_nothing(api: Api, state: AppState) -> None:
    agent = api.token("agent", subject="agent-1", team="east")
    manager = api.token("manager", subject="m-1", team="east")
    for token, values, field in (
        (agent, {"ownerId": "agent-3", "team": "west"}, "ownerId"),
        (agent, {"ownerId": "agent-3"}, "ownerId"),
        (manager, {"team": "west"}, "team"),
    ):
        body = await api.gql(CREATE, {"input": {"name": "种子", **values}}, token=token)
        assert body["data"]["createCustomer"] == {
            "__typename": "UserError",
            "code": "OUT_OF_SCOPE",
            "field": field,
        }, body
        assert await _last_outcome(state) == "denied"
    assert await _customers(state) == []
    # Within scope the same request lands.
    body = await api.gql(CREATE, {"input": {"name": "种子", "ownerId": "agent-2"}}, token=manager)
    assert body["data"]["createCustomer"]["__typename"] == "CustomerCreated"


async def test_an_import_with_a_row_for_another_team_writes_nothing(
    api: Api, state: AppState
) -> None:
    manager = api.token("manager", subject="m-1", team="east")
    rows: list[dict[str, Any]] = [
        {"name": "东一", "phone": "13700000001"},
        {"name": "西二", "phone": "13700000002", "team": "west"},
    ]
    body = await api.gql(IMPORT, {"rows": rows}, token=manager)
    assert body.get("data") is None, body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "OUT_OF_SCOPE"
    assert error["extensions"]["field"] == "rows.1.team"
    assert await _customers(state) == []
    assert await _last_outcome(state) == "denied"


async def test_a_file_is_not_handed_out_of_the_callers_update_scope(
    api: Api, state: AppState
) -> None:
    mine = await make_customer(state, owner_id="agent-1", team="east")
    agent = api.token("agent", subject="agent-1", team="east")
    manager = api.token("manager", subject="m-1", team="east")
    for token, change, field in (
        (agent, {"ownerId": "agent-3"}, "ownerId"),
        (manager, {"team": "west"}, "team"),
    ):
        body = await api.gql(UPDATE, {"id": str(mine), "input": change}, token=token)
        assert body["data"]["updateCustomer"] == {
            "__typename": "UserError",
            "code": "OUT_OF_SCOPE",
            "field": field,
        }, body
    assert await _customers(state) == [("agent-1", "east")]
    async with state.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Customer)) == 1
