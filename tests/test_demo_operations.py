"""Demo data exercises customer files, interactions and complaints through the API:
every complaint state is present and every status history is a legal path."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from server.app import AppState
from server.complaint.states import TRANSITIONS, ComplaintStatus
from server.data.models import Complaint, ComplaintEvent
from server.demo import DemoBuilder
from tests.conftest import Api

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


async def test_demo_complaint_histories_follow_the_state_machine(api: Api, state: AppState) -> None:
    async with state.sessions() as session, session.begin():
        report = await DemoBuilder(state.services.vault, seed=7, now=NOW).run(session, 60)
    assert set(report.complaint_states) == {s.value for s in ComplaintStatus}
    async with state.sessions() as session:
        complaints = (await session.scalars(select(Complaint))).all()
        events = (await session.scalars(select(ComplaintEvent).order_by(ComplaintEvent.at))).all()
    history: dict[object, list[ComplaintEvent]] = {}
    for event in events:
        history.setdefault(event.complaint_id, []).append(event)
    legal_moves = {(a, b) for a, moves in TRANSITIONS.items() for b in moves.values()}
    for complaint in complaints:
        steps = history[complaint.id]
        assert steps[0].from_status is None
        assert steps[0].to_status == "open"
        for step in steps[1:]:
            pair = (ComplaintStatus(step.from_status or ""), ComplaintStatus(step.to_status))
            assert pair in legal_moves
        assert [s.to_status for s in steps[:-1]] == [s.from_status for s in steps[1:]]
        assert steps[-1].to_status == complaint.status

    token = api.token("support", subject="s-1")
    body = await api.gql(
        """{ complaints(first: 200) {
             totalCount nodes { status description events { toStatus } } } }""",
        token=token,
        purpose="support",
    )
    assert "errors" not in body
    page = body["data"]["complaints"]
    assert page["totalCount"] == len(complaints)
    assert {n["description"] for n in page["nodes"]} == {"Customer reported a problem"}
    assert {n["events"][-1]["toStatus"] == n["status"] for n in page["nodes"]} == {True}
    files = await api.gql(
        """{ customers(first: 100, filter: {tag: "vip"}) {
             nodes { tags preferences completeness { score }
                     interactions { nodes { notes } } } } }""",
        token=api.token("manager", subject="m-1", team="east"),
        purpose="support",
    )
    assert "errors" not in files
    nodes = files["data"]["customers"]["nodes"]
    assert nodes
    assert all("vip" in n["tags"] for n in nodes)
    assert {n["preferences"] is not None for n in nodes} == {True, False}
    assert all(0 < n["completeness"]["score"] <= 100 for n in nodes)
