"""What a request costs, counted with the statement recorder: a read runs no savepoint
and, once the policy version is loaded, no role-assignment query (and there is no ping
per checkout); a mutation keeps its savepoint; cursors are encoded only when selected."""

from __future__ import annotations

from typing import Any

from schema.paging import Connection, connection
from server.app import AppState
from server.paging import Page
from tests.conftest import Api
from tests.factories import make_customer
from tests.sql_statements import count_statements

BY_ID = "query($id: ID!) { customer(id: $id) { id name phone tier } }"
CREATE = """
mutation { createCustomer(input: {name: "Lean Path"}) { __typename } }
"""


def _request_work(statements: list[str]) -> list[str]:
    """The statements that are not the audit's own (its append is counted elsewhere)."""
    return [s for s in statements if "audit" not in s and not s.startswith("BEGIN")]


async def test_a_read_is_its_one_select_besides_the_audit(api: Api, state: AppState) -> None:
    customer = await make_customer(state, owner_id="agent-1")
    token = api.token("agent", subject="agent-1")
    await api.gql(BY_ID, {"id": str(customer)}, token=token, purpose="support")
    with count_statements(state) as statements:
        body = await api.gql(BY_ID, {"id": str(customer)}, token=token, purpose="support")
    assert body["data"]["customer"]["id"] == str(customer)
    work = _request_work(statements)
    assert len(work) == 1, work
    assert work[0].startswith("SELECT customers.id")


async def test_a_mutation_keeps_its_savepoint(api: Api, state: AppState) -> None:
    token = api.token("agent", subject="agent-1")
    with count_statements(state) as statements:
        body = await api.gql(CREATE, token=token)
    assert body["data"]["createCustomer"]["__typename"] == "CustomerCreated"
    savepoints = [s for s in statements if s.startswith("SAVEPOINT")]
    # The document's, and the mutation runner's own.
    assert len(savepoints) == 2


def test_cursors_are_encoded_only_when_selected() -> None:
    encoded: list[int] = []

    def cursor(item: int) -> str:
        encoded.append(item)
        return f"c{item}"

    page = Page(list(range(1000)), has_next_page=True)
    result: Connection[Any] = connection(Connection[Any], page, after=None, cursor=cursor)
    # Page information needs the two ends only.
    assert encoded == [0, 999]
    assert (result.page_info.start_cursor, result.page_info.end_cursor) == ("c0", "c999")
    edge = result.edges[500]
    assert edge.item == 500
    assert encoded == [0, 999]
