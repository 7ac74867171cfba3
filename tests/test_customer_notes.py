"""Notes on customer files (备注): each version sealed with who and when, read per policy,
written under update scope, exported and erased with the file."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from server.app import AppState
from server.data.models import AuditAccess, CustomerNote
from tests.conftest import Api, Database
from tests.factories import make_customer

ADD = """
mutation Add($customerId: ID!, $body: String!) {
  addCustomerNote(customerId: $customerId, body: $body) {
    __typename
    ... on CustomerNoteSaved { note { id version body createdBy updatedBy } }
    ... on UserError { code message field }
  }
}
"""
EDIT = """
mutation Edit($id: ID!, $body: String!) {
  editCustomerNote(id: $id, body: $body) {
    __typename
    ... on CustomerNoteSaved { note { id version body } }
    ... on UserError { code message field }
  }
}
"""
READ = """
query Read($id: ID!) {
  customer(id: $id) {
    notes { id version body createdBy updatedBy createdAt updatedAt
            history { version body writtenBy writtenAt } }
  }
}
"""
FIRST = "客户喜欢下午联系 不要周一打电话"
SECOND = "客户喜欢下午联系 生日在三月"
THIRD = "已转给华东区王经理跟进"


async def _noted(state: AppState, api: Api) -> tuple[uuid.UUID, str, str]:
    customer = await make_customer(state, owner_id="agent-1", team="east")
    agent = api.token("agent", subject="agent-1", team="east")
    added = await api.gql(ADD, {"customerId": str(customer), "body": FIRST}, token=agent)
    note = added["data"]["addCustomerNote"]
    assert note["__typename"] == "CustomerNoteSaved", added
    assert note["note"]["version"] == 1
    assert note["note"]["body"] == FIRST
    manager = api.token("manager", subject="m-1", team="east")
    for body, token in ((SECOND, manager), (THIRD, agent)):
        edited = await api.gql(EDIT, {"id": note["note"]["id"], "body": body}, token=token)
        assert edited["data"]["editCustomerNote"]["__typename"] == "CustomerNoteSaved", edited
    return customer, agent, note["note"]["id"]


async def test_every_version_is_kept_with_who_and_when(api: Api, state: AppState) -> None:
    customer, agent, note_id = await _noted(state, api)
    body = await api.gql(READ, {"id": str(customer)}, token=agent)
    [note] = body["data"]["customer"]["notes"]
    assert note["id"] == note_id
    assert (note["version"], note["body"]) == (3, THIRD)
    assert (note["createdBy"], note["updatedBy"]) == ("agent-1", "agent-1")
    assert [(v["version"], v["body"], v["writtenBy"]) for v in note["history"]] == [
        (1, FIRST, "agent-1"),
        (2, SECOND, "m-1"),
        (3, THIRD, "agent-1"),
    ]
    times = [v["writtenAt"] for v in note["history"]]
    assert times == sorted(times)
    assert (note["createdAt"], note["updatedAt"]) == (times[0], times[-1])
    # Each version is its own sealed row: no text in clear in the table.
    async with state.sessions() as session:
        rows = (await session.scalars(select(CustomerNote))).all()
    assert len(rows) == 3
    assert all(FIRST.encode() not in r.body and THIRD.encode() not in r.body for r in rows)


async def test_notes_are_read_in_the_mode_the_policy_gives(api: Api, state: AppState) -> None:
    customer, _agent, _note_id = await _noted(state, api)
    compliance = api.token("compliance", subject="c-1")
    body = await api.gql(READ, {"id": str(customer)}, token=compliance, purpose="compliance")
    [note] = body["data"]["customer"]["notes"]
    assert note["body"] == "***"
    assert {v["body"] for v in note["history"]} == {"***"}
    for token in (api.token("admin", subject="root"), api.token("analyst")):
        body = await api.gql(READ, {"id": str(customer)}, token=token, purpose="analytics")
        assert body["errors"], body
        assert {e["extensions"]["code"] for e in body["errors"]} == {"FORBIDDEN"}
        assert FIRST not in str(body)
        assert THIRD not in str(body)
    async with state.sessions() as session:
        modes = (
            await session.execute(
                select(AuditAccess.fields, AuditAccess.denied_fields).where(
                    AuditAccess.object_type == "customer_note", AuditAccess.action == "read"
                )
            )
        ).all()
    assert ({"body": "masked"}, []) in [(m.fields, m.denied_fields) for m in modes]
    assert ({}, ["body"]) in [(m.fields, m.denied_fields) for m in modes]


async def test_notes_are_written_only_within_update_scope_and_checked(
    api: Api, state: AppState
) -> None:
    customer, _agent, note_id = await _noted(state, api)
    other = api.token("agent", subject="agent-2", team="east")
    cases: list[tuple[str, dict[str, Any], str]] = [
        (ADD, {"customerId": str(customer), "body": "x"}, "NOT_FOUND"),
        (EDIT, {"id": note_id, "body": "x"}, "NOT_FOUND"),
        (EDIT, {"id": str(uuid.uuid4()), "body": "x"}, "NOT_FOUND"),
    ]
    for query, variables, code in cases:
        body = await api.gql(query, variables, token=other)
        result = next(iter(body["data"].values()))
        assert (result["__typename"], result["code"]) == ("UserError", code), body
    agent = api.token("agent", subject="agent-1", team="east")
    for text in ("   ", "长" * 4001):
        body = await api.gql(EDIT, {"id": note_id, "body": text}, token=agent)
        result = body["data"]["editCustomerNote"]
        assert (result["code"], result["field"]) == ("BAD_USER_INPUT", "body")
        assert "长长" not in result["message"]
    async with state.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(CustomerNote)) == 3


async def test_export_has_every_version_and_erasure_removes_them(
    api: Api, state: AppState, database: Database
) -> None:
    customer, _agent, _note_id = await _noted(state, api)
    compliance = api.token("compliance", subject="c-1")
    body = await api.gql(
        "query X($id: ID!) { exportCustomerData(id: $id) }",
        {"id": str(customer)},
        token=compliance,
        purpose="compliance",
    )
    exported = body["data"]["exportCustomerData"]["customer_notes"]
    assert [(n["version"], n["body"]) for n in exported] == [(1, FIRST), (2, SECOND), (3, THIRD)]
    erased = await api.gql(
        "mutation($id: ID!) { eraseCustomer(id: $id) { __typename } }",
        {"id": str(customer)},
        token=compliance,
        purpose="compliance",
    )
    assert erased["data"]["eraseCustomer"]["__typename"] == "CustomerErased", erased
    async with state.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(CustomerNote)) == 0
    if database.backend == "sqlite":
        path = Path(database.url.removeprefix("sqlite+aiosqlite:///"))
        raw = b"".join(
            p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists()
        )
        for text in (FIRST, SECOND, THIRD, "下午联系"):
            assert text.encode() not in raw
