"""Complaints through HTTP: the workflow, every illegal move, deadlines, scope, breakdown."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from server.app import AppState
from server.clock import FixedClock
from server.complaint.states import TRANSITIONS, ComplaintMove, ComplaintStatus, legal_paths_to
from server.config import Settings, load_settings
from server.data.models import AuditAccess
from server.service_levels import ServiceLevels
from tests.conftest import Api
from tests.factories import make_customer

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # These tests pin the timers on wall-clock hours; business-hour clocks are tested in
    # tests/test_business_calendar.py.
    return settings.model_copy(update={"sla_clock": "wall"})


FIELDS = "id status rating escalationLevel compensation rootCause resolution overdue"
RESULT = f"""
  __typename
  ... on ComplaintPayload {{ complaint {{ {FIELDS} events {{ fromStatus toStatus actor }} }} }}
  ... on UserError {{ code message }}
"""
OPEN = f"""
mutation($input: OpenComplaintInput!) {{ openComplaint(input: $input) {{ {RESULT} }} }}
"""
# How each move is called, with valid arguments for it.
MOVES: dict[ComplaintMove, tuple[str, str]] = {
    ComplaintMove.ACKNOWLEDGE: ("acknowledgeComplaint", ""),
    ComplaintMove.START_WORK: ("startComplaintWork", ""),
    ComplaintMove.ESCALATE: ("escalateComplaint", ', assigneeId: "lead-1"'),
    ComplaintMove.RESOLVE: (
        "resolveComplaint",
        ', input: {resolution: "Replaced the kettle", rootCause: PRODUCT_QUALITY, '
        'compensation: "120.50"}',
    ),
    ComplaintMove.FOLLOW_UP: ("followUpComplaint", ', note: "Called back, all fine"'),
    ComplaintMove.RATE: ("rateComplaint", ", rating: 4"),
    ComplaintMove.CLOSE: ("closeComplaint", ""),
    ComplaintMove.REOPEN: ("reopenComplaint", ', note: "Broke again"'),
}
STATUS_NAMES = {s: s.name for s in ComplaintStatus}


def agent(api: Api, subject: str = "agent-1") -> str:
    return api.token("agent", subject=subject, team="east")


async def open_complaint(
    api: Api, token: str, customer_id: uuid.UUID, severity: str = "normal"
) -> dict[str, Any]:
    body = await api.gql(
        OPEN,
        {
            "input": {
                "customerId": str(customer_id),
                "category": "DELIVERY",
                "severity": severity,
                "description": "Parcel arrived crushed",
            }
        },
        token=token,
        purpose="support",
    )
    result: dict[str, Any] = body["data"]["openComplaint"]
    return result


async def move(api: Api, token: str, complaint_id: str, what: ComplaintMove) -> dict[str, Any]:
    name, args = MOVES[what]
    body = await api.gql(
        f'mutation {{ {name}(id: "{complaint_id}"{args}) {{ {RESULT} }} }}',
        token=token,
        purpose="support",
    )
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"][name]
    return result


async def reach(api: Api, token: str, customer_id: uuid.UUID, goal: ComplaintStatus) -> str:
    opened = await open_complaint(api, token, customer_id)
    complaint_id: str = opened["complaint"]["id"]
    for step in legal_paths_to(goal):
        assert (await move(api, token, complaint_id, step))["__typename"] == "ComplaintPayload"
    return complaint_id


async def test_full_workflow_records_every_move(api: Api, state: AppState) -> None:
    customer = await make_customer(state, owner_id="agent-1")
    token = agent(api)
    opened = await open_complaint(api, token, customer)
    assert opened["__typename"] == "ComplaintPayload"
    complaint_id = opened["complaint"]["id"]
    assert opened["complaint"]["status"] == "OPEN"
    path = [
        ComplaintMove.ACKNOWLEDGE,
        ComplaintMove.START_WORK,
        ComplaintMove.ESCALATE,
        ComplaintMove.RESOLVE,
        ComplaintMove.FOLLOW_UP,
        ComplaintMove.RATE,
        ComplaintMove.CLOSE,
        ComplaintMove.REOPEN,
    ]
    for step in path:
        result = await move(api, token, complaint_id, step)
        assert result["__typename"] == "ComplaintPayload", result
    complaint = result["complaint"]
    assert complaint["status"] == "REOPENED"
    # The rating was of the resolution the reopening withdrew.
    assert complaint["rating"] is None
    assert complaint["escalationLevel"] == 1
    assert complaint["compensation"] == "120.50"
    assert complaint["rootCause"] == "PRODUCT_QUALITY"
    assert complaint["resolution"] == "Replaced the kettle"
    moves = [(e["fromStatus"], e["toStatus"]) for e in complaint["events"]]
    assert moves == [
        (None, "OPEN"),
        ("OPEN", "ACKNOWLEDGED"),
        ("ACKNOWLEDGED", "IN_PROGRESS"),
        ("IN_PROGRESS", "ESCALATED"),
        ("ESCALATED", "RESOLVED"),
        ("RESOLVED", "FOLLOWED_UP"),
        ("FOLLOWED_UP", "FOLLOWED_UP"),
        ("FOLLOWED_UP", "CLOSED"),
        ("CLOSED", "REOPENED"),
    ]
    assert {e["actor"] for e in complaint["events"]} == {"agent-1"}
    async with state.sessions() as session:
        accesses = (
            await session.scalars(select(AuditAccess).where(AuditAccess.object_type == "complaint"))
        ).all()
    resolve = next(a for a in accesses if a.action == "resolve")
    assert {"resolution", "compensation", "root_cause"} <= set(resolve.changed_fields)
    everything = str([(a.fields, a.changed_fields, a.denied_fields) for a in accesses])
    assert "kettle" not in everything
    assert "crushed" not in everything


@pytest.mark.parametrize("status", list(ComplaintStatus))
async def test_every_illegal_move_is_refused_and_changes_nothing(
    api: Api, state: AppState, status: ComplaintStatus
) -> None:
    customer = await make_customer(state, owner_id="agent-1")
    token = agent(api)
    complaint_id = await reach(api, token, customer, status)
    query = f'{{ complaint(id: "{complaint_id}") {{ {FIELDS} events {{ toStatus }} }} }}'
    before = (await api.gql(query, token=token, purpose="support"))["data"]["complaint"]
    illegal = [m for m in ComplaintMove if m not in TRANSITIONS[status]]
    assert illegal, "every state refuses some move"
    for step in illegal:
        result = await move(api, token, complaint_id, step)
        assert result["__typename"] == "UserError"
        assert result["code"] == "ILLEGAL_TRANSITION"
        assert f"from {status.value} " in result["message"]
    after = (await api.gql(query, token=token, purpose="support"))["data"]["complaint"]
    assert after == before
    assert after["status"] == STATUS_NAMES[status]


async def test_bad_details_are_refused_without_a_change(api: Api, state: AppState) -> None:
    customer = await make_customer(state, owner_id="agent-1")
    token = agent(api)
    complaint_id = await reach(api, token, customer, ComplaintStatus.FOLLOWED_UP)
    bad_rating = await api.gql(
        f'mutation {{ rateComplaint(id: "{complaint_id}", rating: 6) {{ {RESULT} }} }}',
        token=token,
    )
    assert bad_rating["data"]["rateComplaint"]["code"] == "BAD_USER_INPUT"
    other = await reach(api, token, customer, ComplaintStatus.IN_PROGRESS)
    bad_money = await api.gql(
        f'mutation {{ resolveComplaint(id: "{other}", input: {{resolution: "x", '
        f'rootCause: BILLING, compensation: "1.005"}}) {{ {RESULT} }} }}',
        token=token,
    )
    assert bad_money["data"]["resolveComplaint"]["code"] == "BAD_USER_INPUT"
    rated = await api.gql(
        f'{{ complaint(id: "{complaint_id}") {{ rating events {{ toStatus }} }} }}', token=token
    )
    assert rated["data"]["complaint"]["rating"] is None
    assert len(rated["data"]["complaint"]["events"]) == 4
    resolved = await api.gql(
        f'{{ complaint(id: "{other}") {{ status compensation }} }}', token=token
    )
    assert resolved["data"]["complaint"] == {"status": "IN_PROGRESS", "compensation": None}


OVERDUE = """
query($overdue: Boolean) {
  complaints(filter: {overdue: $overdue}) { totalCount nodes { id overdue } }
}
"""


async def overdue_ids(api: Api, token: str, overdue: bool) -> list[str]:
    body = await api.gql(OVERDUE, {"overdue": overdue}, token=token)
    nodes = body["data"]["complaints"]["nodes"]
    assert all(n["overdue"] is overdue for n in nodes)
    return [n["id"] for n in nodes]


async def test_deadlines_breach_with_the_clock(api: Api, state: AppState) -> None:
    clock = FixedClock(T0)
    state.services.clock = clock
    customer = await make_customer(state, owner_id="agent-1")
    token = agent(api)
    complaint_id = (await open_complaint(api, token, customer))["complaint"]["id"]
    critical = (await open_complaint(api, token, customer, "critical"))["complaint"]["id"]

    clock.advance(timedelta(minutes=90))  # critical: acknowledge within 1 h
    assert await overdue_ids(api, token, True) == [critical]
    clock.advance(timedelta(minutes=31))  # normal: acknowledge within 2 h
    assert set(await overdue_ids(api, token, True)) == {complaint_id, critical}

    await move(api, token, complaint_id, ComplaintMove.ACKNOWLEDGE)
    assert await overdue_ids(api, token, False) == [complaint_id]
    clock.advance(timedelta(hours=22))  # past the 24 h resolution deadline
    assert complaint_id in await overdue_ids(api, token, True)
    await move(api, token, complaint_id, ComplaintMove.RESOLVE)
    assert await overdue_ids(api, token, False) == [complaint_id]
    clock.advance(timedelta(hours=24, seconds=1))  # follow-up due 24 h after resolution
    assert complaint_id in await overdue_ids(api, token, True)
    await move(api, token, complaint_id, ComplaintMove.FOLLOW_UP)
    assert await overdue_ids(api, token, False) == [complaint_id]


async def test_another_agents_complaint_is_not_found(api: Api, state: AppState) -> None:
    theirs = await make_customer(state, owner_id="agent-2")
    complaint_id = (await open_complaint(api, agent(api, "agent-2"), theirs))["complaint"]["id"]
    token = agent(api)
    read = await api.gql(f'{{ complaint(id: "{complaint_id}") {{ id }} }}', token=token)
    assert read["data"]["complaint"] is None
    assert read["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    moved = await move(api, token, complaint_id, ComplaintMove.ACKNOWLEDGE)
    assert moved["code"] == "NOT_FOUND"
    listed = await api.gql("{ complaints { totalCount nodes { id } } }", token=token)
    assert listed["data"]["complaints"] == {"totalCount": 0, "nodes": []}
    assigned = await api.gql(
        '{ complaints(filter: {assignee: "agent-2", status: OPEN, category: DELIVERY}) '
        "{ totalCount } }",
        token=agent(api, "agent-2"),
    )
    assert assigned["data"]["complaints"]["totalCount"] == 1
    opened = await open_complaint(api, token, theirs)
    assert opened["code"] == "NOT_FOUND"
    still = await api.gql(
        f'{{ complaint(id: "{complaint_id}") {{ status }} }}', token=agent(api, "agent-2")
    )
    assert still["data"]["complaint"]["status"] == "OPEN"


async def test_field_modes_follow_policy(api: Api, state: AppState) -> None:
    customer = await make_customer(state, owner_id="agent-1")
    await open_complaint(api, agent(api), customer)
    query = "{ complaints { nodes { category description } } }"
    clear = await api.gql(query, token=agent(api), purpose="support")
    assert clear["data"]["complaints"]["nodes"] == [
        {"category": "DELIVERY", "description": "Parcel arrived crushed"}
    ]
    masked = await api.gql(query, token=api.token("compliance"), purpose="compliance")
    assert masked["data"]["complaints"]["nodes"][0]["description"] == "***"
    denied = await api.gql(query, token=api.token("analyst"))
    assert denied["data"]["complaints"]["nodes"][0] == {"category": "DELIVERY", "description": None}
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_a_reopened_complaint_loses_its_rating(api: Api, state: AppState) -> None:
    customer = await make_customer(state, owner_id="agent-1")
    complaint_id = await reach(api, agent(api), customer, ComplaintStatus.FOLLOWED_UP)
    rated = await move(api, agent(api), complaint_id, ComplaintMove.RATE)
    assert rated["complaint"]["rating"] == 4
    reopened = await move(api, agent(api), complaint_id, ComplaintMove.REOPEN)
    assert reopened["complaint"]["rating"] is None
    for step in (ComplaintMove.ACKNOWLEDGE, ComplaintMove.RESOLVE, ComplaintMove.FOLLOW_UP):
        await move(api, agent(api), complaint_id, step)
    again = await move(api, agent(api), complaint_id, ComplaintMove.RATE)
    assert again["complaint"]["rating"] == 4


async def test_event_notes_are_read_through_the_vault_by_policy(api: Api, state: AppState) -> None:
    customer = await make_customer(state, owner_id="agent-1")
    complaint_id = await reach(api, agent(api), customer, ComplaintStatus.FOLLOWED_UP)
    query = f'{{ complaint(id: "{complaint_id}") {{ events {{ toStatus note }} }} }}'
    clear = await api.gql(query, token=agent(api), purpose="support")
    assert "errors" not in clear, clear
    notes = {e["toStatus"]: e["note"] for e in clear["data"]["complaint"]["events"]}
    assert notes["FOLLOWED_UP"] == "Called back, all fine"
    assert notes["OPEN"] is None
    masked = await api.gql(query, token=api.token("compliance"), purpose="compliance")
    events = masked["data"]["complaint"]["events"]
    assert {e["note"] for e in events} == {None, "***"}
    denied = await api.gql(query, token=api.token("analyst"))
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert denied["errors"][0]["path"][-1] == "note"
    async with state.sessions() as session:
        accesses = (
            await session.scalars(
                select(AuditAccess).where(AuditAccess.object_type == "complaint_event")
            )
        ).all()
    assert any("note" in (a.fields or {}) for a in accesses)
    assert any("note" in (a.denied_fields or []) for a in accesses)
    assert "Called back" not in str([(a.fields, a.denied_fields) for a in accesses])


async def test_breakdown_counts_by_category_and_root_cause(api: Api, state: AppState) -> None:
    state.services.clock = FixedClock(T0)
    customer = await make_customer(state, owner_id="agent-1")
    token = agent(api)
    for _ in range(2):
        await reach(api, token, customer, ComplaintStatus.RESOLVED)
    await open_complaint(api, token, customer)
    body = await api.gql(
        """query($from: DateTime!, $to: DateTime!) { complaintBreakdown(from: $from, to: $to) {
             total byCategory { key count } byRootCause { key count }
             cells { category rootCause count } } }""",
        {"from": (T0 - timedelta(days=1)).isoformat(), "to": (T0 + timedelta(days=1)).isoformat()},
        token=api.token("analyst"),
    )
    breakdown = body["data"]["complaintBreakdown"]
    assert breakdown["total"] == 3
    assert breakdown["byCategory"] == [{"key": "DELIVERY", "count": 3}]
    assert {(c["key"], c["count"]) for c in breakdown["byRootCause"]} == {
        ("PRODUCT_QUALITY", 2),
        (None, 1),
    }
    empty = await api.gql(
        """query($from: DateTime!, $to: DateTime!) { complaintBreakdown(from: $from, to: $to) {
             total } }""",
        {"from": (T0 + timedelta(days=1)).isoformat(), "to": (T0 + timedelta(days=2)).isoformat()},
        token=api.token("analyst"),
    )
    assert empty["data"]["complaintBreakdown"]["total"] == 0


async def test_deadlines_come_from_settings(
    api: Api, state: AppState, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUSTOS_COMPLAINT_DEADLINES", '{"urgent": {"acknowledge": 0.5}}')
    monkeypatch.setenv("CUSTOS_SLA_CLOCK", "wall")
    configured = load_settings()
    state.services.complaints.levels = ServiceLevels.from_settings(configured)
    clock = FixedClock(T0)
    state.services.clock = clock
    customer = await make_customer(state, owner_id="agent-1")
    token = agent(api)
    refused = await open_complaint(api, token, customer, "normal")
    assert refused == {
        "__typename": "UserError",
        "code": "BAD_USER_INPUT",
        "message": "severity must be one of urgent",
    }
    urgent = (await open_complaint(api, token, customer, "urgent"))["complaint"]["id"]
    clock.advance(timedelta(minutes=29))
    assert await overdue_ids(api, token, True) == []
    clock.advance(timedelta(minutes=2))
    assert await overdue_ids(api, token, True) == [urgent]


async def test_roles_without_complaint_create_cannot_open(api: Api, state: AppState) -> None:
    customer = await make_customer(state, owner_id="agent-1")
    body = await api.gql(
        OPEN,
        {
            "input": {
                "customerId": str(customer),
                "category": "OTHER",
                "severity": "low",
                "description": "x",
            }
        },
        token=api.token("analyst", subject="ann"),
    )
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    listed = await api.gql("{ complaints { totalCount } }", token=api.token("admin"))
    assert listed["data"]["complaints"]["totalCount"] == 0
