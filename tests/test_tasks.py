"""Tasks and reminders through the API: care-queue items done and snoozed, at-risk
customers and the manager's team queue, task scope and assignment, complaint follow-up
tasks, and the retention playbook with its won-back counts."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from server.app import AppState
from server.clock import FixedClock
from server.data.models import Customer, Task
from tests.analytics_factories import make_order, make_product
from tests.conftest import Api
from tests.factories import make_customer
from tests.ops_helpers import manager

# Wednesday 10 June 2026, 17:00 in Beijing.
NOW = datetime(2026, 6, 10, 9, 0, tzinfo=UTC)
QUEUE = """
query($owner: String, $days: Int!, $team: Boolean!) {
  careQueue(ownerId: $owner, days: $days, team: $team) {
    customerId ownerId reason dueOn detail key taskId snoozedUntil
  }
}
"""
TASK_FIELDS = """id customerId assigneeId team title note kind source sourceKey status dueAt
overdue snoozed snoozedUntil doneAt doneBy createdBy action signal"""
RESULT = f"""__typename ... on TaskSaved {{ task {{ {TASK_FIELDS} }} }}
... on UserError {{ code message field }}"""
COMPLETE_ITEM = f"""
mutation($c: ID!, $k: String!) {{ completeCareItem(customerId: $c, key: $k) {{ {RESULT} }} }}
"""
SNOOZE_ITEM = f"""
mutation($c: ID!, $k: String!, $u: DateTime!) {{
  snoozeCareItem(customerId: $c, key: $k, until: $u) {{ {RESULT} }}
}}
"""
CREATE = f"""
mutation($input: CreateTaskInput!) {{ createTask(input: $input) {{ {RESULT} }} }}
"""
MY_TASKS = f"""
query($filter: TaskFilterInput) {{
  myTasks(filter: $filter) {{ totalCount nodes {{ {TASK_FIELDS} }} }}
}}
"""
TEAM_TASKS = """
query($filter: TaskFilterInput) {
  teamTasks(filter: $filter) { totalCount nodes { id assigneeId title overdue dueAt } }
}
"""


def agent(api: Api, subject: str = "agent-1") -> str:
    return api.token("agent", subject=subject, team="east")


async def queue(api: Api, token: str, *, days: int = 7, team: bool = False) -> list[Any]:
    # Birthdays are sensitive: the queue shows them only under a stated purpose.
    body = await api.gql(QUEUE, {"days": days, "team": team}, token=token, purpose="support")
    assert "errors" not in body, body
    items: list[Any] = body["data"]["careQueue"]
    return items


def keys(items: list[Any], customer: uuid.UUID) -> set[str]:
    return {i["key"] for i in items if i["customerId"] == str(customer)}


async def test_care_items_can_be_done_and_snoozed(api: Api, state: AppState) -> None:
    state.services.clock = FixedClock(NOW)
    new = await make_customer(state, created_at=NOW - timedelta(days=3), birthday=None)
    born = await make_customer(
        state, created_at=datetime(2024, 1, 5, tzinfo=UTC), birthday=date(1990, 6, 12)
    )
    token = agent(api)
    items = await queue(api, token)
    assert "cadence:2026-06-10" in keys(items, new)
    assert "birthday:2026-06-12" in keys(items, born)

    done = await api.gql(COMPLETE_ITEM, {"c": str(new), "k": "cadence:2026-06-10"}, token=token)
    task = done["data"]["completeCareItem"]["task"]
    assert (task["status"], task["source"], task["doneBy"]) == ("DONE", "CARE", "agent-1")
    until = datetime(2026, 6, 14, 2, 0, tzinfo=UTC)  # Sunday 10:00 in Beijing
    snoozed = await api.gql(
        SNOOZE_ITEM,
        {"c": str(born), "k": "birthday:2026-06-12", "u": until.isoformat()},
        token=token,
    )
    assert snoozed["data"]["snoozeCareItem"]["task"]["snoozed"] is True

    # The done contact restarts the weekly cadence; the snoozed birthday is gone for now.
    items = await queue(api, token, days=3)
    assert keys(items, new) == set()
    assert "birthday:2026-06-12" not in keys(items, born)
    # It comes back on the day the snooze ends, with its task.
    later = await queue(api, token, days=7)
    back = [i for i in later if i["key"] == "birthday:2026-06-12"]
    assert [(i["dueOn"], i["snoozedUntil"] is not None) for i in back] == [("2026-06-14", True)]
    assert {i["key"] for i in later if i["customerId"] == str(new)} == {"cadence:2026-06-17"}

    # Completing twice is a conflict; another agent cannot touch the customer's items.
    again = await api.gql(COMPLETE_ITEM, {"c": str(new), "k": "cadence:2026-06-10"}, token=token)
    assert again["data"]["completeCareItem"]["code"] == "TASK_NOT_OPEN"
    other = await api.gql(
        COMPLETE_ITEM, {"c": str(new), "k": "cadence:2026-06-10"}, token=agent(api, "agent-2")
    )
    assert other["data"]["completeCareItem"]["code"] == "NOT_FOUND"
    bad = await api.gql(COMPLETE_ITEM, {"c": str(new), "k": "whatever"}, token=token)
    assert bad["data"]["completeCareItem"]["field"] == "key"


async def test_at_risk_customers_feed_the_queue(api: Api, state: AppState) -> None:
    state.services.clock = FixedClock(NOW)
    risky = await make_customer(state, created_at=datetime(2024, 1, 5, tzinfo=UTC), birthday=None)
    async with state.sessions() as session, session.begin():
        await session.execute(
            update(Customer).where(Customer.id == risky).values(lifecycle="at_risk")
        )
    token = agent(api)
    items = await queue(api, token)
    assert [(i["reason"], i["dueOn"]) for i in items if i["key"].startswith("at_risk")] == [
        ("AT_RISK", "2026-06-10")
    ]
    await api.gql(COMPLETE_ITEM, {"c": str(risky), "k": "at_risk:2026-06-10"}, token=token)
    assert not any(i["reason"] == "AT_RISK" for i in await queue(api, token))
    # Handled at-risk customers come back after CUSTOS_CARE_AT_RISK_REPEAT_DAYS (30).
    state.services.clock = FixedClock(NOW + timedelta(days=30))
    assert any(i["key"] == "at_risk:2026-07-10" for i in await queue(api, token))


async def test_a_manager_has_a_team_queue(api: Api, state: AppState) -> None:
    state.services.clock = FixedClock(NOW)
    mine = await make_customer(state, owner_id="agent-1", birthday=None)
    theirs = await make_customer(state, owner_id="agent-2", birthday=None)
    west = await make_customer(state, owner_id="agent-9", team="west", birthday=None)
    team = await queue(api, manager(api), team=True)
    owners = {(i["customerId"], i["ownerId"]) for i in team if i["reason"] == "CADENCE"}
    assert owners == {(str(mine), "agent-1"), (str(theirs), "agent-2")}
    assert str(west) not in {i["customerId"] for i in team}
    # For an agent the team queue is its own row scope: its own customers only.
    own = await queue(api, agent(api), team=True)
    assert {i["customerId"] for i in own} == {str(mine)}


async def test_tasks_mine_team_scope_and_assignment(api: Api, state: AppState) -> None:
    state.services.clock = FixedClock(NOW)
    customer = await make_customer(state, owner_id="agent-1")
    due = (NOW + timedelta(days=1)).isoformat()
    token = agent(api)
    created = await api.gql(
        CREATE,
        {
            "input": {
                "title": "Send the quote",
                "dueAt": due,
                "kind": "EMAIL",
                "customerId": str(customer),
                "note": "王先生 wants it by Friday",
            }
        },
        token=token,
        purpose="sales",
    )
    task = created["data"]["createTask"]["task"]
    assert (task["assigneeId"], task["team"], task["note"]) == (
        "agent-1",
        "east",
        "王先生 wants it by Friday",
    )
    async with state.sessions() as session:
        stored = await session.scalar(select(Task.note).where(Task.id == uuid.UUID(task["id"])))
    assert stored is not None
    assert "王先生".encode() not in stored

    # An agent may not hand work to others, nor see the team view.
    refused = await api.gql(
        CREATE, {"input": {"title": "x", "dueAt": due, "assigneeId": "agent-2"}}, token=token
    )
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    team_view = await api.gql(TEAM_TASKS, {}, token=token)
    assert team_view["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    # The manager plans an overdue task for agent-2 and sees the team's tasks, overdue first.
    mgr = manager(api)
    overdue = await api.gql(
        CREATE,
        {
            "input": {
                "title": "Call back",
                "dueAt": (NOW - timedelta(hours=3)).isoformat(),
                "customerId": str(customer),
                "assigneeId": "agent-2",
            }
        },
        token=mgr,
    )
    overdue_id = overdue["data"]["createTask"]["task"]["id"]
    board = (await api.gql(TEAM_TASKS, {}, token=mgr))["data"]["teamTasks"]
    assert [(n["id"], n["overdue"]) for n in board["nodes"]] == [
        (overdue_id, True),
        (task["id"], False),
    ]
    west = api.token("manager", subject="mgr-west", team="west")
    assert (await api.gql(TEAM_TASKS, {}, token=west))["data"]["teamTasks"]["totalCount"] == 0
    hidden = await api.gql(
        "query($id: ID!) { task(id: $id) { id } }", {"id": task["id"]}, token=west
    )
    assert hidden["errors"][0]["extensions"]["code"] == "NOT_FOUND"

    # My tasks: only the caller's; done, reopened, reassigned back to oneself.
    mine = (await api.gql(MY_TASKS, {}, token=token))["data"]["myTasks"]
    assert [n["id"] for n in mine["nodes"]] == [task["id"]]
    complete = f"mutation($id: ID!) {{ completeTask(id: $id) {{ {RESULT} }} }}"
    reopen = f"mutation($id: ID!) {{ reopenTask(id: $id) {{ {RESULT} }} }}"
    reassign = f"""mutation($id: ID!, $a: String!) {{
      reassignTask(id: $id, assigneeId: $a) {{ {RESULT} }} }}"""
    done = await api.gql(complete, {"id": task["id"]}, token=token)
    assert done["data"]["completeTask"]["task"]["status"] == "DONE"
    assert (await api.gql(MY_TASKS, {}, token=token))["data"]["myTasks"]["totalCount"] == 0
    reopened = await api.gql(reopen, {"id": task["id"]}, token=token)
    assert reopened["data"]["reopenTask"]["task"]["status"] == "OPEN"
    taken = await api.gql(reassign, {"id": overdue_id, "a": "agent-1"}, token=token)
    assert taken["data"]["reassignTask"]["task"]["assigneeId"] == "agent-1"
    given = await api.gql(reassign, {"id": overdue_id, "a": "agent-3"}, token=mgr)
    assert given["data"]["reassignTask"]["task"]["assigneeId"] == "agent-3"
    unknown = await api.gql(complete, {"id": str(uuid.uuid4())}, token=token)
    assert unknown["data"]["completeTask"]["code"] == "NOT_FOUND"


async def test_a_resolved_complaint_becomes_a_follow_up_task(api: Api, state: AppState) -> None:
    state.services.clock = FixedClock(NOW)
    customer = await make_customer(state, owner_id="agent-1")
    token = agent(api)
    opened = await api.gql(
        """mutation($c: ID!) { openComplaint(input: {customerId: $c, category: DELIVERY,
             severity: "normal", description: "Late"}) {
             ... on ComplaintPayload { complaint { id } } } }""",
        {"c": str(customer)},
        token=token,
    )
    complaint = opened["data"]["openComplaint"]["complaint"]["id"]
    for move in ("acknowledgeComplaint", "startComplaintWork"):
        await api.gql(
            f"mutation($id: ID!) {{ {move}(id: $id) {{ __typename }} }}",
            {"id": complaint},
            token=token,
        )
    resolved = await api.gql(
        """mutation($id: ID!) { resolveComplaint(id: $id, input: {resolution: "Resent",
             rootCause: DELIVERY}) { __typename } }""",
        {"id": complaint},
        token=token,
    )
    assert resolved["data"]["resolveComplaint"]["__typename"] == "ComplaintPayload", resolved
    tasks = (await api.gql(MY_TASKS, {}, token=token))["data"]["myTasks"]["nodes"]
    assert [(t["source"], t["kind"], t["sourceKey"]) for t in tasks] == [
        ("COMPLAINT", "FOLLOW_UP", f"complaint_follow_up:{complaint}")
    ]
    # Business hours: resolved Wednesday 17:00 in Beijing, 24 working hours later is
    # Monday 14:00 (09:00-18:00, no holiday that week).
    assert tasks[0]["dueAt"] == "2026-06-15T06:00:00+00:00"
    complete = f"mutation($id: ID!) {{ completeTask(id: $id) {{ {RESULT} }} }}"
    await api.gql(complete, {"id": tasks[0]["id"]}, token=token)
    followed = await api.gql(
        "query($id: ID!) { complaint(id: $id) { status followedUpAt } }",
        {"id": complaint},
        token=token,
    )
    assert followed["data"]["complaint"]["status"] == "FOLLOWED_UP"
    assert followed["data"]["complaint"]["followedUpAt"] is not None


async def test_retention_playbook_plans_tasks_and_counts_won_back(
    api: Api, state: AppState
) -> None:
    state.services.clock = FixedClock(NOW)
    product = await make_product(state, "TEA", "100", "60")
    lapsed = await make_customer(
        state, owner_id="agent-1", created_at=datetime(2024, 1, 1, tzinfo=UTC)
    )
    for month in range(1, 13):
        await make_order(state, lapsed, f"2025-{month:02d}-03", [(product, 1, "100", "60")])
    mgr = manager(api)
    plan = """mutation { planRetention(asOf: "2026-06-10", minScore: 0.3) {
      ... on RetentionPlanned { planned tasks { assigneeId source action signal dueAt } }
      ... on UserError { code message } } }"""
    body = await api.gql(plan, token=mgr)
    planned = body["data"]["planRetention"]
    assert planned["planned"] >= 1
    actions = {(t["action"], t["signal"]) for t in planned["tasks"]}
    assert ("check_in_call", "frequency_falling") in actions
    assert {t["assigneeId"] for t in planned["tasks"]} == {"agent-1"}
    # Planning again adds nothing while the actions are open.
    again = await api.gql(plan, token=mgr)
    assert again["data"]["planRetention"]["planned"] == 0
    refused = await api.gql(plan, token=agent(api))
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    # The agent calls; the customer buys again within 30 days: won back.
    tasks = await api.gql(MY_TASKS, {"filter": {"source": "RETENTION"}}, token=agent(api))
    call = next(t for t in tasks["data"]["myTasks"]["nodes"] if t["action"] == "check_in_call")
    complete = f"mutation($id: ID!) {{ completeTask(id: $id) {{ {RESULT} }} }}"
    await api.gql(complete, {"id": call["id"]}, token=agent(api))
    await make_order(state, lapsed, "2026-06-20", [(product, 1, "100", "60")])
    outcomes = await api.gql(
        """{ retentionOutcomes(from: "2026-06-01", to: "2026-06-30") {
             action signal suggested done wonBack wonBackRate } }""",
        token=mgr,
    )
    rows = {r["action"]: r for r in outcomes["data"]["retentionOutcomes"]}
    assert rows["check_in_call"] == {
        "action": "check_in_call",
        "signal": "frequency_falling",
        "suggested": 1,
        "done": 1,
        "wonBack": 1,
        "wonBackRate": 1.0,
    }
    assert all(r["done"] == 0 for a, r in rows.items() if a != "check_in_call")


async def test_an_at_risk_customer_comes_with_suggested_actions(api: Api, state: AppState) -> None:
    """Walk-through gap: no retention suggestion for an at-risk customer. Each churn
    signal reads as the playbook's actions, before anything is planned."""
    state.services.clock = FixedClock(NOW)
    product = await make_product(state, "TEA", "100", "60")
    lapsed = await make_customer(
        state, owner_id="agent-1", created_at=datetime(2024, 1, 1, tzinfo=UTC)
    )
    for month in range(1, 13):
        await make_order(state, lapsed, f"2025-{month:02d}-03", [(product, 1, "100", "60")])
    body = await api.gql(
        """{ atRiskCustomers(asOf: "2026-06-10", minScore: 0.3) { nodes { risk {
             signals { code } suggestedActions { signal action kind title dueInWorkingDays }
           } } } }""",
        token=manager(api),
    )
    assert "errors" not in body, body
    (node,) = body["data"]["atRiskCustomers"]["nodes"]
    signals = {s["code"] for s in node["risk"]["signals"]}
    suggested = node["risk"]["suggestedActions"]
    assert {a["signal"] for a in suggested} <= signals
    call = next(a for a in suggested if a["action"] == "check_in_call")
    assert call == {
        "signal": "frequency_falling",
        "action": "check_in_call",
        "kind": "call",
        "title": "Check-in call: ask what changed, mention what is new",
        "dueInWorkingDays": 3,
    }
    # Suggesting plans nothing.
    tasks = await api.gql(MY_TASKS, {"filter": {"source": "RETENTION"}}, token=agent(api))
    assert tasks["data"]["myTasks"]["totalCount"] == 0
