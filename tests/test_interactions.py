"""Interactions through HTTP: logging with sealed notes, response timers and breaches,
row scope, a customer's paged interactions without N+1, and the merged timeline."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from schema.types.interaction import CURSORS
from server.app import AppState
from server.clock import FixedClock
from server.config import Settings
from server.data.base import new_id
from server.data.models import Interaction, Order
from tests.conftest import Api
from tests.factories import make_customer, make_interactions
from tests.sql_statements import count_statements

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # These tests pin the timers on wall-clock hours; business-hour clocks are tested in
    # tests/test_business_calendar.py.
    return settings.model_copy(update={"sla_clock": "wall"})


LOG = """
mutation($input: LogInteractionInput!) {
  logInteraction(input: $input) {
    __typename
    ... on InteractionPayload { interaction {
      id channel direction kind agentId subject notes firstResponseDueAt solutionDueAt
      firstResponseBreached solutionBreached } }
    ... on UserError { code message }
  }
}
"""
BREACHES = """
query($kind: InteractionBreachKind!) {
  interactionBreaches(kind: $kind) { totalCount nodes { id } }
}
"""


def agent(api: Api, subject: str = "agent-1") -> str:
    return api.token("agent", subject=subject, team="east")


def consultation(customer_id: Any, **extra: Any) -> dict[str, Any]:
    return {
        "input": {
            "customerId": str(customer_id),
            "channel": "WECHAT",
            "direction": "INBOUND",
            "kind": "CONSULTATION",
            "subject": "Warranty question",
            "notes": "Asks whether the warranty covers the motor",
            **extra,
        }
    }


async def breach_ids(api: Api, token: str, kind: str) -> list[str]:
    body = await api.gql(BREACHES, {"kind": kind}, token=token)
    page = body["data"]["interactionBreaches"]
    assert page["totalCount"] == len(page["nodes"])
    return [n["id"] for n in page["nodes"]]


async def test_log_interaction_seals_notes_and_starts_timers(api: Api, state: AppState) -> None:
    state.services.clock = FixedClock(T0)
    customer = await make_customer(state, owner_id="agent-1")
    body = await api.gql(LOG, consultation(customer), token=agent(api), purpose="support")
    interaction = body["data"]["logInteraction"]["interaction"]
    assert interaction["channel"] == "WECHAT"
    assert interaction["kind"] == "CONSULTATION"
    assert interaction["agentId"] == "agent-1"
    assert interaction["notes"] == "Asks whether the warranty covers the motor"
    assert interaction["firstResponseDueAt"] == (T0 + timedelta(hours=2)).isoformat()
    assert interaction["solutionDueAt"] == (T0 + timedelta(hours=24)).isoformat()
    async with state.sessions() as session:
        row = await session.get(Interaction, uuid.UUID(interaction["id"]))
        assert row is not None
        assert row.notes is not None
        assert b"warranty" not in row.notes
    masked = await api.gql(
        "query($id: ID!) { interaction(id: $id) { notes } }",
        {"id": interaction["id"]},
        token=api.token("compliance"),
        purpose="compliance",
    )
    assert masked["data"]["interaction"]["notes"] == "***"
    outbound = await api.gql(
        LOG,
        consultation(customer, direction="OUTBOUND", kind="CARE"),
        token=agent(api),
    )
    assert outbound["data"]["logInteraction"]["interaction"]["firstResponseDueAt"] is None


async def test_bad_input_is_a_user_error_and_writes_nothing(api: Api, state: AppState) -> None:
    state.services.clock = FixedClock(T0)
    customer = await make_customer(state, owner_id="agent-1")
    future = (T0 + timedelta(days=1)).isoformat()
    body = await api.gql(LOG, consultation(customer, occurredAt=future), token=agent(api))
    assert body["data"]["logInteraction"]["code"] == "BAD_USER_INPUT"
    listed = await api.gql(
        "query($id: ID!) { customer(id: $id) { interactions { nodes { id } } } }",
        {"id": str(customer)},
        token=agent(api),
    )
    assert listed["data"]["customer"]["interactions"]["nodes"] == []


async def test_response_timers_breach_on_the_clock(api: Api, state: AppState) -> None:
    clock = FixedClock(T0)
    state.services.clock = clock
    customer = await make_customer(state, owner_id="agent-1")
    token = agent(api)
    late = (await api.gql(LOG, consultation(customer), token=token))["data"]["logInteraction"]
    fast = (await api.gql(LOG, consultation(customer), token=token))["data"]["logInteraction"]
    late_id, fast_id = late["interaction"]["id"], fast["interaction"]["id"]
    respond = 'mutation { respondToInteraction(id: "%s") { __typename ... on UserError { code } } }'
    solve = 'mutation { solveInteraction(id: "%s") { __typename ... on UserError { code } } }'

    clock.advance(timedelta(minutes=30))
    await api.gql(respond % fast_id, token=token)
    assert await breach_ids(api, token, "FIRST_RESPONSE") == []
    clock.advance(timedelta(hours=2))
    assert await breach_ids(api, token, "FIRST_RESPONSE") == [late_id]
    # Answering late does not clear the breach: it happened.
    answered = await api.gql(respond % late_id, token=token)
    assert answered["data"]["respondToInteraction"]["__typename"] == "InteractionPayload"
    assert await breach_ids(api, token, "FIRST_RESPONSE") == [late_id]
    again = await api.gql(respond % late_id, token=token)
    assert again["data"]["respondToInteraction"] == {
        "__typename": "UserError",
        "code": "ALREADY_DONE",
    }

    await api.gql(solve % fast_id, token=token)
    assert await breach_ids(api, token, "SOLUTION") == []
    clock.advance(timedelta(hours=22))
    assert await breach_ids(api, token, "SOLUTION") == [late_id]
    care = await api.gql(LOG, consultation(customer, kind="CARE"), token=token)
    care_id = care["data"]["logInteraction"]["interaction"]["id"]
    refused = await api.gql(solve % care_id, token=token)
    assert refused["data"]["solveInteraction"]["code"] == "NO_RESPONSE_TIMER"


async def test_row_scope_hides_other_agents_interactions(api: Api, state: AppState) -> None:
    state.services.clock = FixedClock(T0)
    theirs = await make_customer(state, owner_id="agent-2")
    other = agent(api, "agent-2")
    logged = await api.gql(LOG, consultation(theirs), token=other)
    interaction_id = logged["data"]["logInteraction"]["interaction"]["id"]
    state.services.clock = FixedClock(T0 + timedelta(days=2))
    token = agent(api)
    read = await api.gql(
        "query($id: ID!) { interaction(id: $id) { id } }", {"id": interaction_id}, token=token
    )
    assert read["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert await breach_ids(api, token, "FIRST_RESPONSE") == []
    assert await breach_ids(api, other, "FIRST_RESPONSE") == [interaction_id]
    solved = await api.gql(
        "mutation($id: ID!) { solveInteraction(id: $id) { ... on UserError { code } } }",
        {"id": interaction_id},
        token=token,
    )
    assert solved["data"]["solveInteraction"]["code"] == "NOT_FOUND"
    logged_here = await api.gql(LOG, consultation(theirs), token=token)
    assert logged_here["data"]["logInteraction"]["code"] == "NOT_FOUND"


NESTED = """
query($customers: Int!, $interactions: Int!) {
  customers(first: $customers) { edges { node { id name
    interactions(first: $interactions) {
      pageInfo { hasNextPage endCursor } edges { node { id channel notes } } }
    timeline(first: $interactions) { edges { node { kind recordId } } } } } }
}
"""


async def test_nested_interactions_cost_a_constant_number_of_statements(
    api: Api, state: AppState
) -> None:
    customers = [await make_customer(state, owner_id="agent-1") for _ in range(50)]
    for customer in customers:
        await make_interactions(state, customer, 20)
    token = agent(api)
    # A person's assigned roles are read once per policy version: warm, as a server is.
    await api.gql("{ me { subject } }", token=token)

    with count_statements(state) as small:
        body = await api.gql(NESTED, {"customers": 2, "interactions": 3}, token=token)
    assert len(body["data"]["customers"]["edges"]) == 2
    with count_statements(state) as large:
        body = await api.gql(
            NESTED, {"customers": 50, "interactions": 20}, token=token, purpose="support"
        )
    edges = body["data"]["customers"]["edges"]
    assert "errors" not in body
    assert len(edges) == 50
    assert all(len(e["node"]["interactions"]["edges"]) == 20 for e in edges)
    assert all(
        [t["node"]["recordId"] for t in e["node"]["timeline"]["edges"]]
        == [i["node"]["id"] for i in e["node"]["interactions"]["edges"]]
        for e in edges
    )
    assert edges[0]["node"]["interactions"]["edges"][0]["node"]["notes"] == "note 19"
    assert len(large) == len(small)
    # Three reads (customers, their interactions, their timelines) and the audit writes
    # (one access per object type and field set), whatever the number of rows.
    assert len(large) <= 16, "\n".join(s.split("\n")[0][:60] for s in large)


async def test_interaction_pages_follow_cursors(api: Api, state: AppState) -> None:
    customer = await make_customer(state, owner_id="agent-1")
    ids = await make_interactions(state, customer, 5)
    query = """query($id: ID!, $after: String) { customer(id: $id) {
      interactions(first: 2, after: $after) {
        pageInfo { hasNextPage endCursor } nodes { id } } } }"""
    seen: list[str] = []
    after = None
    while True:
        body = await api.gql(query, {"id": str(customer), "after": after}, token=agent(api))
        page = body["data"]["customer"]["interactions"]
        seen += [n["id"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [str(i) for i in reversed(ids)]


PAGES = """
query($first: Int!, $after: String) { customers(first: 10) { nodes { id
  interactions(first: $first, after: $after) {
    pageInfo { hasNextPage endCursor } edges { node { id notes } } } } } }
"""
AGENT_EVENTS = """
query($subject: String!) { auditEvents(filter: {subject: $subject}, first: 1) {
  nodes { operationName accesses { objectType action recordIds } } } }
"""


async def test_nested_pages_are_each_customers_newest_ties_by_id_in_scope_and_audited(
    api: Api, state: AppState
) -> None:
    tie = T0 - timedelta(hours=1)
    a = await make_customer(state, owner_id="agent-1")
    b = await make_customer(state, owner_id="agent-1")
    empty = await make_customer(state, owner_id="agent-1")
    other = await make_customer(state, owner_id="agent-2")
    await make_interactions(state, a, 3, occurred_at=tie)  # a three-way tie, broken by id
    await make_interactions(state, a, 2, occurred_at=tie - timedelta(hours=1))
    for hours in (0, 2, 3, 5):
        await make_interactions(state, b, 1, occurred_at=T0 - timedelta(hours=hours))
    await make_interactions(state, other, 3, occurred_at=tie)
    async with state.sessions() as session:
        rows = (
            await session.execute(
                select(Interaction.customer_id, Interaction.occurred_at, Interaction.id)
            )
        ).all()
    newest_first = sorted(rows, key=lambda r: (r.occurred_at, r.id), reverse=True)

    def expected(customer: uuid.UUID, after: tuple[datetime, uuid.UUID] | None) -> list[str]:
        return [
            str(r.id)
            for r in newest_first
            if r.customer_id == customer and (after is None or (r.occurred_at, r.id) < after)
        ]

    token = agent(api)
    first = await api.gql(PAGES, {"first": 2}, token=token, purpose="support")
    assert "errors" not in first
    pages = {n["id"]: n["interactions"] for n in first["data"]["customers"]["nodes"]}
    assert set(pages) == {str(a), str(b), str(empty)}  # agent-2's customer is out of scope
    for customer in (a, b, empty):
        page = pages[str(customer)]
        assert [e["node"]["id"] for e in page["edges"]] == expected(customer, None)[:2]
        assert page["pageInfo"]["hasNextPage"] == (len(expected(customer, None)) > 2)
    assert pages[str(empty)]["pageInfo"]["endCursor"] is None

    # One cursor for every customer of the page (a's second entry, inside the tie).
    cursor = pages[str(a)]["pageInfo"]["endCursor"]
    after = CURSORS.decode(cursor)
    rest = await api.gql(PAGES, {"first": 3, "after": cursor}, token=token, purpose="support")
    assert "errors" not in rest
    shown: list[str] = []
    for node in rest["data"]["customers"]["nodes"]:
        ids = [e["node"]["id"] for e in node["interactions"]["edges"]]
        assert ids == expected(uuid.UUID(node["id"]), after)[:3]
        assert all(e["node"]["notes"].startswith("note ") for e in node["interactions"]["edges"])
        shown += ids
    assert shown

    # The read's audit entry lists exactly the interactions returned.
    events = await api.gql(AGENT_EVENTS, {"subject": "agent-1"}, token=api.token("compliance"))
    [event] = events["data"]["auditEvents"]["nodes"]
    read = [x for x in event["accesses"] if x["objectType"] == "interaction"]
    assert [x["action"] for x in read] == ["read"]
    assert sorted(read[0]["recordIds"]) == sorted(shown)


async def test_timeline_merges_interactions_orders_complaints(api: Api, state: AppState) -> None:
    clock = FixedClock(T0)
    state.services.clock = clock
    customer = await make_customer(state, owner_id="agent-1")
    token = agent(api)
    await api.gql(LOG, consultation(customer), token=token)
    async with state.sessions() as session, session.begin():
        session.add(
            Order(
                id=new_id(),
                customer_id=customer,
                ordered_at=T0 + timedelta(hours=1),
                status="paid",
                channel="web",
                total=Decimal("1299.00"),
                cost_total=Decimal("800.00"),
            )
        )
    clock.advance(timedelta(hours=2))
    await api.gql(
        """mutation($id: ID!) { openComplaint(input: {customerId: $id, category: DELIVERY,
           severity: "normal", description: "Late"}) { __typename } }""",
        {"id": str(customer)},
        token=token,
    )
    query = """query($id: ID!, $after: String) { customer(id: $id) {
      timeline(first: 2, after: $after) {
        pageInfo { hasNextPage endCursor } edges { node { kind title status amount at } } } } }"""
    first = await api.gql(query, {"id": str(customer)}, token=token)
    page = first["data"]["customer"]["timeline"]
    assert [e["node"]["kind"] for e in page["edges"]] == ["COMPLAINT", "ORDER"]
    assert page["edges"][1]["node"]["amount"] == "1299.00"
    assert page["pageInfo"]["hasNextPage"] is True
    rest = await api.gql(
        query, {"id": str(customer), "after": page["pageInfo"]["endCursor"]}, token=token
    )
    nodes = [e["node"] for e in rest["data"]["customer"]["timeline"]["edges"]]
    assert nodes == [
        {
            "kind": "INTERACTION",
            "title": "wechat inbound",
            "status": "consultation",
            "amount": None,
            "at": T0.isoformat(),
        }
    ]


async def test_support_answers_consultations_of_any_customer(api: Api, state: AppState) -> None:
    state.services.clock = FixedClock(T0)
    customer = await make_customer(state, owner_id="agent-2")
    logged = await api.gql(LOG, consultation(customer), token=agent(api, "agent-2"))
    interaction_id = logged["data"]["logInteraction"]["interaction"]["id"]
    body = await api.gql(
        """mutation($id: ID!) { respondToInteraction(id: $id) {
             ... on InteractionPayload { interaction { firstRespondedAt } } } }""",
        {"id": interaction_id},
        token=api.token("support", subject="s-1"),
    )
    assert body["data"]["respondToInteraction"]["interaction"]["firstRespondedAt"] == (
        T0.isoformat()
    )
