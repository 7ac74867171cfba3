"""Row scope and denial paths: what a caller cannot see never shows, not even indirectly."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from server.app import AppState
from server.data.models import AuditAccess, AuditEvent
from tests.conftest import Api
from tests.factories import make_customer

LIST = """
query($first: Int!) {
  customers(first: $first) {
    totalCount
    edges { node { id name phone tier } }
    nodes { id name }
  }
}
"""
BY_ID = "query($id: ID!) { customer(id: $id) { id name phone tier } }"
BY_PHONE = "query($phone: String!) { customerByContact(phone: $phone) { id name phone } }"


async def _seed(state: AppState) -> dict[str, list[str]]:
    owners = {
        "agent-1": ("east", "13800000001"),
        "agent-1b": ("east", "13800000002"),
        "agent-2": ("west", "13800000003"),
    }
    made: dict[str, list[str]] = {}
    for n, (owner, (team, phone)) in enumerate(owners.items()):
        for i in range(2 if owner == "agent-1" else 1):
            customer_id = await make_customer(
                state,
                owner_id=owner,
                team=team,
                name=f"秘密{n}{i}",
                phone=phone if i == 0 else f"1390000000{n}",
            )
            made.setdefault(owner, []).append(str(customer_id))
    return made


def _ids(body: dict[str, Any]) -> list[str]:
    return [edge["node"]["id"] for edge in body["data"]["customers"]["edges"]]


async def test_agent_list_and_total_hold_only_their_own(api: Api, state: AppState) -> None:
    made = await _seed(state)
    token = api.token("agent", subject="agent-1", team="east")
    body = await api.gql(LIST, {"first": 50}, token=token, purpose="support")
    assert sorted(_ids(body)) == sorted(made["agent-1"])
    assert body["data"]["customers"]["totalCount"] == 2
    assert sorted(n["id"] for n in body["data"]["customers"]["nodes"]) == sorted(made["agent-1"])
    assert "errors" not in body


async def test_another_agents_customer_is_not_found_and_reveals_nothing(
    api: Api, state: AppState
) -> None:
    made = await _seed(state)
    token = api.token("agent", subject="agent-1", team="east")
    theirs = made["agent-2"][0]
    for customer_id in (theirs, str(uuid.uuid4())):
        response = await api.post(BY_ID, {"id": customer_id}, token=token, purpose="support")
        body = response.json()
        assert body["data"] == {"customer": None}
        assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"]
        assert "秘密" not in response.text
        assert "13800000003" not in response.text
    # Looking them up by contact finds nothing either: same answer as an unknown phone.
    for phone in ("13800000003", "13700000000"):
        response = await api.post(BY_PHONE, {"phone": phone}, token=token, purpose="support")
        body = response.json()
        assert body["data"] == {"customerByContact": None}
        assert set(body) == {"data", "extensions"}


async def test_manager_sees_their_team_only(api: Api, state: AppState) -> None:
    made = await _seed(state)
    east = api.token("manager", subject="mona", team="east")
    body = await api.gql(LIST, {"first": 50}, token=east, purpose="sales")
    assert sorted(_ids(body)) == sorted(made["agent-1"] + made["agent-1b"])
    assert body["data"]["customers"]["totalCount"] == 3
    west_customer = await api.gql(BY_ID, {"id": made["agent-2"][0]}, token=east)
    assert west_customer["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    # A manager without a team sees no rows, not every row.
    teamless = api.token("manager", subject="drifter")
    empty = await api.gql(LIST, {"first": 50}, token=teamless)
    assert empty["data"]["customers"]["totalCount"] == 0
    assert _ids(empty) == []


async def test_denied_fields_are_null_at_every_path_and_counts_stay_right(
    api: Api, state: AppState
) -> None:
    await _seed(state)
    token = api.token("analyst", subject="ann")
    response = await api.post(LIST, {"first": 50}, token=token, purpose="analytics")
    body = response.json()
    page = body["data"]["customers"]
    assert page["totalCount"] == 4
    assert len(page["edges"]) == 4
    assert all(e["node"]["name"] is None and e["node"]["phone"] is None for e in page["edges"])
    assert all(e["node"]["tier"] == "MID" for e in page["edges"])
    assert all(n["name"] is None for n in page["nodes"])
    paths = {tuple(e["path"]) for e in body["errors"]}
    assert {e["extensions"]["code"] for e in body["errors"]} == {"FORBIDDEN"}
    for i in range(4):
        assert ("customers", "edges", i, "node", "name") in paths
        assert ("customers", "edges", i, "node", "phone") in paths
        assert ("customers", "nodes", i, "name") in paths
    assert "秘密" not in response.text
    assert "1380000000" not in response.text
    async with state.sessions() as session:
        access = await session.scalar(
            select(AuditAccess)
            .join(AuditEvent, AuditEvent.id == AuditAccess.event_id)
            .where(AuditEvent.subject == "ann")
        )
    assert access is not None
    assert access.denied_fields == ["name", "phone"]
    assert access.record_count == 4


async def test_lookup_by_a_field_the_caller_cannot_read_is_forbidden_without_the_value(
    api: Api, state: AppState
) -> None:
    await _seed(state)
    token = api.token("analyst", subject="ann")
    response = await api.post(BY_PHONE, {"phone": "13800000001"}, token=token)
    body = response.json()
    assert body["data"] == {"customerByContact": None}
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "13800000001" not in response.text


async def test_a_role_without_customer_read_gets_no_rows_and_no_count(
    api: Api, state: AppState
) -> None:
    await _seed(state)
    token = api.token("integrator", subject="int-1")
    response = await api.post(LIST, {"first": 50}, token=token)
    body = response.json()
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    assert "totalCount" not in response.text


async def test_sensitive_clear_needs_a_purpose_the_policy_allows_and_is_audited(
    api: Api, state: AppState
) -> None:
    await make_customer(state, owner_id="agent-1", phone="13812345678")
    token = api.token("agent", subject="agent-1", team="east")
    query = "{ customers(first: 1) { nodes { phone } } }"
    seen: dict[str | None, str] = {}
    for purpose in ("support", "marketing", None):
        body = await api.gql(query, token=token, purpose=purpose)
        seen[purpose] = body["data"]["customers"]["nodes"][0]["phone"]
    assert seen == {"support": "+8613812345678", "marketing": "138****5678", None: "138****5678"}
    async with state.sessions() as session:
        rows = await session.execute(
            select(AuditEvent.purpose, AuditAccess.fields)
            .join(AuditAccess, AuditAccess.event_id == AuditEvent.id)
            .where(AuditEvent.subject == "agent-1")
            .order_by(AuditEvent.seq)
        )
        audited = [tuple(r) for r in rows.all()]
    # The list's sort key travels inside each cursor, so it is recorded as read too.
    assert audited == [
        ("support", {"phone": "clear", "created_at": "clear"}),
        ("marketing", {"phone": "masked", "created_at": "clear"}),
        (None, {"phone": "masked", "created_at": "clear"}),
    ]
