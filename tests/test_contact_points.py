"""A customer's further contact points: sealed, read per field mode, changed through the
mutation runner under update scope, exported and erased with the file."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from server.app import AppState
from server.data.models import ContactPoint
from tests.conftest import Api, Database
from tests.factories import make_customer

ADD = """
mutation Add($customerId: ID!, $input: ContactPointInput!) {
  addContactPoint(customerId: $customerId, input: $input) {
    __typename
    ... on ContactPointAdded { contactPoint { id kind value personName label } }
    ... on UserError { code message field }
  }
}
"""
UPDATE = """
mutation Update($id: ID!, $input: ContactPointChangesInput!) {
  updateContactPoint(id: $id, input: $input) {
    __typename
    ... on ContactPointUpdated { changedFields contactPoint { value personName label } }
    ... on UserError { code message field }
  }
}
"""
REMOVE = """
mutation Remove($id: ID!) {
  removeContactPoint(id: $id) { __typename ... on UserError { code } }
}
"""
READ = """
query Read($id: ID!) {
  customer(id: $id) { id contactPoints { kind value personName label } }
}
"""
LIST = "{ customers { nodes { id contactPoints { kind value } } } }"
WECHAT = "zhang_san-1988"
PERSON = "采购经理李娜"


async def _add(api: Api, token: str, customer: uuid.UUID, **point: Any) -> dict[str, Any]:
    body = await api.gql(
        ADD, {"customerId": str(customer), "input": point}, token=token, purpose="sales"
    )
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["addContactPoint"]
    return result


async def _file(state: AppState, api: Api) -> tuple[uuid.UUID, str, list[str]]:
    customer = await make_customer(state, name="张三", team="east")
    token = api.token("manager", subject="m-1", team="east")
    ids = []
    for point in (
        {"kind": "MOBILE", "value": "139 1234 5678"},
        {"kind": "LANDLINE", "value": "010-6552 9988 转 123", "label": "office"},
        {"kind": "WECHAT", "value": WECHAT},
        {"kind": "CONTACT_PERSON", "personName": PERSON, "value": "13800001111"},
    ):
        added = await _add(api, token, customer, **point)
        assert added["__typename"] == "ContactPointAdded", added
        ids.append(added["contactPoint"]["id"])
    return customer, token, ids


async def test_points_are_added_normalised_and_read_in_clear(api: Api, state: AppState) -> None:
    customer, token, _ids = await _file(state, api)
    body = await api.gql(READ, {"id": str(customer)}, token=token, purpose="sales")
    assert body["data"]["customer"]["contactPoints"] == [
        {"kind": "MOBILE", "value": "+8613912345678", "personName": None, "label": None},
        {
            "kind": "LANDLINE",
            "value": "+861065529988;ext=123",
            "personName": None,
            "label": "office",
        },
        {"kind": "WECHAT", "value": WECHAT, "personName": None, "label": None},
        {"kind": "CONTACT_PERSON", "value": "+8613800001111", "personName": PERSON, "label": None},
    ]
    # Stored sealed: no value in any column in clear.
    async with state.sessions() as session:
        stored = (await session.scalars(select(ContactPoint))).all()
    assert all(isinstance(p.value, bytes) and WECHAT.encode() not in p.value for p in stored)


async def test_values_follow_the_mode_of_phone_and_name(api: Api, state: AppState) -> None:
    customer, _token, _ids = await _file(state, api)
    admin = api.token("admin", subject="root")
    body = await api.gql(READ, {"id": str(customer)}, token=admin)
    points = body["data"]["customer"]["contactPoints"]
    assert [p["value"] for p in points] == ["139****5678", "010****9988", "***", "138****1111"]
    assert points[3]["personName"] == "采**"
    assert WECHAT not in str(body)
    analyst = api.token("analyst")
    body = await api.gql(READ, {"id": str(customer)}, token=analyst, purpose="analytics")
    assert {e["extensions"]["code"] for e in body["errors"]} == {"FORBIDDEN"}
    assert WECHAT not in str(body)
    assert PERSON not in str(body)


async def test_bad_points_are_typed_value_free_errors_and_change_nothing(
    api: Api, state: AppState
) -> None:
    customer = await make_customer(state, team="east")
    token = api.token("manager", subject="m-1", team="east")
    cases = [
        ({"kind": "MOBILE", "value": "12345"}, "INVALID_PHONE", "value"),
        ({"kind": "MOBILE", "value": "010-6552 9988"}, "INVALID_PHONE", "value"),
        ({"kind": "LANDLINE", "value": "13912345678"}, "INVALID_PHONE", "value"),
        ({"kind": "WECHAT", "value": "1secret!"}, "INVALID_WECHAT_ID", "value"),
        ({"kind": "WECHAT"}, "BAD_USER_INPUT", "value"),
        ({"kind": "CONTACT_PERSON", "value": "13800001111"}, "BAD_USER_INPUT", "personName"),
        (
            {"kind": "MOBILE", "value": "13800001111", "personName": "x"},
            "BAD_USER_INPUT",
            "personName",
        ),
        ({"kind": "WECHAT", "value": WECHAT, "label": "l" * 65}, "BAD_USER_INPUT", "label"),
    ]
    for point, code, field in cases:
        result = await _add(api, token, customer, **point)
        assert (result["__typename"], result["code"], result["field"]) == (
            "UserError",
            code,
            field,
        ), (point, result)
        assert str(point.get("value", "\0")) not in result["message"]
    async with state.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(ContactPoint)) == 0


async def test_points_change_only_within_update_scope(api: Api, state: AppState) -> None:
    customer, token, ids = await _file(state, api)
    west = api.token("manager", subject="m-2", team="west")
    added = await _add(api, west, customer, kind="WECHAT", value="another_id")
    assert added["__typename"] == "UserError"
    assert added["code"] == "NOT_FOUND"
    for query, variables in (
        (UPDATE, {"id": ids[0], "input": {"label": "x"}}),
        (REMOVE, {"id": ids[0]}),
    ):
        body = await api.gql(query, variables, token=west, purpose="sales")
        result = next(iter(body["data"].values()))
        assert result["__typename"] == "UserError", body
        assert result["code"] == "NOT_FOUND"
    # Nor do other teams see them in their lists.
    listed = await api.gql(LIST, token=west, purpose="sales")
    assert listed["data"]["customers"]["nodes"] == []
    # Within scope: change a value and a label, then remove.
    body = await api.gql(
        UPDATE,
        {"id": ids[2], "input": {"value": "new_wechat_id", "label": "personal"}},
        token=token,
        purpose="sales",
    )
    assert body["data"]["updateContactPoint"] == {
        "__typename": "ContactPointUpdated",
        "changedFields": ["label", "value"],
        "contactPoint": {"value": "new_wechat_id", "personName": None, "label": "personal"},
    }
    body = await api.gql(
        UPDATE, {"id": ids[2], "input": {"value": "!!"}}, token=token, purpose="sales"
    )
    assert body["data"]["updateContactPoint"]["code"] == "INVALID_WECHAT_ID"
    body = await api.gql(REMOVE, {"id": ids[1]}, token=token, purpose="sales")
    assert body["data"]["removeContactPoint"] == {"__typename": "ContactPointRemoved"}
    body = await api.gql(READ, {"id": str(customer)}, token=token, purpose="sales")
    assert [p["kind"] for p in body["data"]["customer"]["contactPoints"]] == [
        "MOBILE",
        "WECHAT",
        "CONTACT_PERSON",
    ]


async def test_export_has_the_points_and_erasure_removes_them(
    api: Api, state: AppState, database: Database
) -> None:
    customer, _token, _ids = await _file(state, api)
    compliance = api.token("compliance", subject="c-1")
    body = await api.gql(
        "query X($id: ID!) { exportCustomerData(id: $id) }",
        {"id": str(customer)},
        token=compliance,
        purpose="compliance",
    )
    exported = body["data"]["exportCustomerData"]["customer_contact_points"]
    assert {p["value"] for p in exported} >= {WECHAT, "+8613800001111"}
    assert PERSON in {p["person_name"] for p in exported}
    # The points' blind indexes are search handles, not facts about the person.
    assert not {"value_bidx", "bidx_key_version"} & {k for p in exported for k in p}
    erased = await api.gql(
        "mutation($id: ID!) { eraseCustomer(id: $id) { __typename } }",
        {"id": str(customer)},
        token=compliance,
        purpose="compliance",
    )
    assert erased["data"]["eraseCustomer"]["__typename"] == "CustomerErased", erased
    async with state.sessions() as session:
        left = await session.scalar(select(func.count()).select_from(ContactPoint))
    assert left == 0
    if database.backend == "sqlite":
        path = Path(database.url.removeprefix("sqlite+aiosqlite:///"))
        raw = b"".join(
            p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists()
        )
        for text in (WECHAT, PERSON, "13800001111", "65529988"):
            assert text.encode() not in raw


async def test_a_merge_moves_points_and_notes_to_the_survivor_resealed(
    api: Api, state: AppState
) -> None:
    duplicate, token, _ids = await _file(state, api)
    survivor = await make_customer(state, name="张三", team="east")
    noted = await api.gql(
        'mutation($id: ID!) { addCustomerNote(customerId: $id, body: "老客户") { __typename } }',
        {"id": str(duplicate)},
        token=token,
    )
    assert noted["data"]["addCustomerNote"]["__typename"] == "CustomerNoteSaved", noted
    merged = await api.gql(
        """mutation($s: ID!, $d: ID!) { mergeCustomers(survivorId: $s, duplicateId: $d) {
             __typename } }""",
        {"s": str(survivor), "d": str(duplicate)},
        token=token,
        purpose="sales",
    )
    assert merged["data"]["mergeCustomers"]["__typename"] == "CustomersMerged", merged
    body = await api.gql(
        """query($id: ID!) { customer(id: $id) { contactPoints { kind value personName }
             notes { body } } }""",
        {"id": str(survivor)},
        token=token,
        purpose="sales",
    )
    assert "errors" not in body, body
    survivor_file = body["data"]["customer"]
    assert {p["value"] for p in survivor_file["contactPoints"]} >= {WECHAT, "+8613800001111"}
    assert PERSON in {p["personName"] for p in survivor_file["contactPoints"]}
    assert survivor_file["notes"] == [{"body": "老客户"}]
