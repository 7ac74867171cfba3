"""Reads of a customer's contact points and notes name the customer in the audit as well
as the records, so the compliance search "who saw customer X" (`auditEvents(filter:
{customerId})`) finds a caller who saw only X's points or notes — e.g. in the payload of
a mutation addressed by the record's own id."""

from __future__ import annotations

import uuid

from server.app import AppState
from tests.conftest import Api
from tests.factories import make_customer

ADD_POINT = """
mutation($customerId: ID!) {
  addContactPoint(customerId: $customerId, input: {kind: WECHAT, value: "zhang_san-1988"}) {
    __typename ... on ContactPointAdded { contactPoint { id value } }
  }
}
"""
ADD_NOTE = """
mutation($customerId: ID!) {
  addCustomerNote(customerId: $customerId, body: "客户喜欢下午联系") {
    __typename ... on CustomerNoteSaved { note { id } }
  }
}
"""
EDIT_NOTE = """
mutation($id: ID!) {
  editCustomerNote(id: $id, body: "已转给华东区王经理跟进") {
    __typename ... on CustomerNoteSaved { note { id body } }
  }
}
"""
WHO_SAW = """
query($customer: ID!) {
  auditEvents(filter: {customerId: $customer}, first: 50) {
    nodes { operationName subject accesses { objectType fields { name } recordIds } }
  }
}
"""


async def _seen_by(api: Api, customer: uuid.UUID) -> list[dict[str, object]]:
    body = await api.gql(
        WHO_SAW,
        {"customer": str(customer)},
        token=api.token("compliance", subject="dpo-1"),
        purpose="compliance",
    )
    assert "errors" not in body, body
    nodes: list[dict[str, object]] = body["data"]["auditEvents"]["nodes"]
    return nodes


async def test_who_saw_a_customer_includes_readers_of_its_points_and_notes(
    api: Api, state: AppState
) -> None:
    customer = await make_customer(state, owner_id="m-1", team="east")
    manager = api.token("manager", subject="m-1", team="east")
    point = await api.gql(ADD_POINT, {"customerId": str(customer)}, token=manager, purpose="sales")
    assert point["data"]["addContactPoint"]["contactPoint"]["value"] == "zhang_san-1988", point
    added = await api.gql(ADD_NOTE, {"customerId": str(customer)}, token=manager)
    note_id = added["data"]["addCustomerNote"]["note"]["id"]
    # Another person edits the note by its own id and reads its text back.
    agent = api.token("manager", subject="m-2", team="east")
    edited = await api.gql(EDIT_NOTE, {"id": note_id}, token=agent)
    assert edited["data"]["editCustomerNote"]["note"]["body"], edited
    events = await _seen_by(api, customer)
    by_subject = {
        (e["subject"], a["objectType"], tuple(sorted(f["name"] for f in a["fields"])))
        for e in events
        for a in e["accesses"]  # type: ignore[attr-defined]
        if str(customer) in a["recordIds"]
    }
    assert ("m-1", "customer", ("contact_points",)) in by_subject
    assert ("m-2", "customer", ("notes",)) in by_subject
