"""The care queue at a fixed instant: cadence, birthdays, anniversaries, holidays,
complaint follow-ups, and the caller's row scope."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from server.app import AppState
from server.care.service import CareRules
from server.clock import FixedClock
from server.data.models import Complaint, Interaction
from tests.conftest import Api
from tests.factories import make_customer
from tests.ops_helpers import manager

NOW = datetime(2026, 6, 10, 9, 0, tzinfo=UTC)
QUEUE = """
query($owner: String, $days: Int!) {
  careQueue(ownerId: $owner, days: $days) { customerId reason dueOn detail }
}
"""


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(hour=10, tzinfo=UTC)


async def _contact(state: AppState, customer: uuid.UUID, when: datetime) -> None:
    async with state.sessions() as session, session.begin():
        session.add(
            Interaction(
                customer_id=customer,
                occurred_at=when,
                channel="phone",
                direction="outbound",
                kind="care",
            )
        )


async def _complaint(state: AppState, customer: uuid.UUID, follow_up_due: datetime) -> uuid.UUID:
    complaint = Complaint(
        customer_id=customer,
        opened_at=at("2026-06-01"),
        category="delivery",
        severity="normal",
        status="resolved",
        resolved_at=at("2026-06-10"),
        follow_up_due_at=follow_up_due,
    )
    async with state.sessions() as session, session.begin():
        session.add(complaint)
    return complaint.id


async def _world(state: AppState) -> dict[str, uuid.UUID]:
    state.services.clock = FixedClock(NOW)
    people = {
        "new": await make_customer(state, created_at=at("2026-05-20"), birthday=None),
        "established": await make_customer(
            state, created_at=at("2024-06-12"), birthday=date(1990, 6, 14)
        ),
        "lapsed": await make_customer(
            state, created_at=at("2023-01-01"), birthday=date(1980, 12, 1)
        ),
        "colleagues": await make_customer(
            state, owner_id="agent-2", created_at=at("2025-01-01"), birthday=date(1985, 6, 15)
        ),
    }
    await _contact(state, people["established"], at("2026-06-01"))
    await _contact(state, people["lapsed"], at("2026-05-05"))
    await _contact(state, people["colleagues"], at("2026-06-09"))
    await _complaint(state, people["lapsed"], at("2026-06-11"))
    # Already followed up: not due any more.
    done = await _complaint(state, people["established"], at("2026-06-09"))
    async with state.sessions() as session, session.begin():
        row = await session.get(Complaint, done)
        assert row is not None
        row.followed_up_at = at("2026-06-09")
    return people


async def test_queue_lists_what_is_due_and_why(api: Api, state: AppState) -> None:
    people = await _world(state)
    names = {str(v): k for k, v in people.items()}
    agent = api.token("agent", subject="agent-1", team="east")
    body = await api.gql(QUEUE, {"days": 7}, token=agent, purpose="support")
    queue = [(names[i["customerId"]], i["reason"], i["dueOn"]) for i in body["data"]["careQueue"]]
    assert queue == [
        ("lapsed", "CADENCE", "2026-06-04"),
        ("new", "CADENCE", "2026-06-10"),
        ("lapsed", "COMPLAINT_FOLLOW_UP", "2026-06-11"),
        ("established", "ANNIVERSARY", "2026-06-12"),
        ("established", "BIRTHDAY", "2026-06-14"),
    ]
    details = {
        (names[i["customerId"]], i["reason"]): i["detail"] for i in body["data"]["careQueue"]
    }
    assert details[("new", "CADENCE")] == "new customer: no contact yet"
    assert details[("lapsed", "CADENCE")].startswith("established customer: contact every 30")
    assert details[("established", "ANNIVERSARY")] == "2 years as a customer"

    # A week later the new customer's weekly cadence and more fall due; a wider window too.
    state.services.clock = FixedClock(datetime(2026, 6, 20, 9, 0, tzinfo=UTC))
    later = await api.gql(QUEUE, {"days": 0}, token=agent)
    reasons = {(names[i["customerId"]], i["reason"]) for i in later["data"]["careQueue"]}
    assert ("new", "CADENCE") in reasons
    assert ("established", "BIRTHDAY") not in reasons


async def test_queue_respects_row_scope(api: Api, state: AppState) -> None:
    people = await _world(state)
    agent = api.token("agent", subject="agent-1", team="east")
    # An agent asking for a colleague's queue gets an empty queue, as documented.
    theirs = await api.gql(QUEUE, {"owner": "agent-2", "days": 7}, token=agent)
    assert theirs["data"]["careQueue"] == []
    mine = await api.gql(QUEUE, {"days": 7}, token=agent)
    assert str(people["colleagues"]) not in {i["customerId"] for i in mine["data"]["careQueue"]}

    # Their manager (team scope) sees the colleague's queue, birthday included (a birthday
    # item shows month and day: it needs the birthday in clear, so a purpose).
    team = await api.gql(
        QUEUE, {"owner": "agent-2", "days": 7}, token=manager(api), purpose="support"
    )
    assert [(i["reason"], i["dueOn"]) for i in team["data"]["careQueue"]] == [
        ("BIRTHDAY", "2026-06-15")
    ]
    west = api.token("manager", subject="mgr-west", team="west")
    other_team = await api.gql(QUEUE, {"owner": "agent-2", "days": 7}, token=west)
    assert other_team["data"]["careQueue"] == []
    bad = await api.gql(QUEUE, {"days": 1000}, token=agent)
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_holidays_come_from_the_configured_table(api: Api, state: AppState) -> None:
    people = await _world(state)
    state.services.care.rules = CareRules(holidays=((6, 16, "Dragon Boat Festival"),))
    agent = api.token("agent", subject="agent-1", team="east")
    body = await api.gql(QUEUE, {"days": 7}, token=agent)
    holidays = [i for i in body["data"]["careQueue"] if i["reason"] == "HOLIDAY"]
    assert {i["customerId"] for i in holidays} == {
        str(people[n]) for n in ("new", "established", "lapsed")
    }
    assert {(i["dueOn"], i["detail"]) for i in holidays} == {("2026-06-16", "Dragon Boat Festival")}
