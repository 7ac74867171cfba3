"""What each operation records, and the compliance API over the trail."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from server.app import AppState
from server.clock import FixedClock
from server.data.models import AuditAccess, AuditEvent
from server.vault.signing import query_hash
from tests.audit_ledger import AuditLedger
from tests.conftest import Api
from tests.factories import make_customer

BY_ID = "query One($id: ID!) { customer(id: $id) { id name nationalId bankCard } }"
CREATE = """
mutation Create($input: CreateCustomerInput!) {
  createCustomer(input: $input) {
    __typename
    ... on CustomerCreated { customer { id } }
    ... on UserError { code }
  }
}
"""
SEARCH = """
query Search($filter: AuditEventFilter, $first: Int!, $after: String) {
  auditEvents(filter: $filter, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node {
      id seq subject roles purpose operationType operationName outcome occurredAt
      accesses { objectType action fields { name mode } deniedFields changedFields recordIds }
    } }
  }
}
"""
WHO_SAW_NATIONAL_ID = """
query WhoSaw($customer: ID!) {
  auditEvents(filter: {customerId: $customer, field: "nationalId", withinDays: 30}, first: 50) {
    totalCount
    nodes { subject roles purpose occurredAt accesses { fields { name mode } } }
  }
}
"""


async def _events(state: AppState) -> list[tuple[AuditEvent, list[AuditAccess]]]:
    async with state.sessions() as session:
        events = (await session.scalars(select(AuditEvent).order_by(AuditEvent.seq))).all()
        out = []
        for event in events:
            accesses = (
                await session.scalars(
                    select(AuditAccess)
                    .where(AuditAccess.event_id == event.id)
                    .order_by(AuditAccess.id)
                )
            ).all()
            out.append((event, list(accesses)))
        return out


async def test_a_read_records_who_why_what_and_the_mode_of_each_field(
    api: Api, state: AppState
) -> None:
    customer = await make_customer(state, owner_id="agent-1")
    token = api.token("agent", subject="agent-1", team="east")
    response = await api.client.post(
        "/graphql",
        json={"query": BY_ID, "variables": {"id": str(customer)}, "operationName": "One"},
        headers={
            "Authorization": f"Bearer {token}",
            "X-Purpose": "support",
            "User-Agent": "crm-web/2.1",
            "X-Request-Id": "req-one-customer",
        },
    )
    assert response.status_code == 200
    assert response.json()["data"]["customer"]["nationalId"].startswith("*" * 14)

    event, accesses = (await _events(state))[-1]
    assert event.subject == "agent-1"
    assert event.roles == ["agent"]
    assert event.purpose == "support"
    assert (event.operation_type, event.operation_name) == ("query", "One")
    # Keyed (tests/attacks/test_query_hash.py): the plain SHA-256 of the text is not it.
    assert event.query_hash == query_hash(state.services.audit.signer.keys, BY_ID)
    assert event.query_hash != hashlib.sha256(BY_ID.encode()).hexdigest()
    assert event.client_addr == "203.0.113.7"
    assert event.user_agent == "crm-web/2.1"
    assert event.request_id == "req-one-customer"
    assert event.outcome == "ok"
    assert event.api_key_id is None
    [access] = accesses
    assert access.object_type == "customer"
    assert access.action == "read"
    assert access.fields == {"name": "clear", "national_id": "masked", "bank_card": "masked"}
    assert access.record_count == 1
    # No value ever enters the audit: not the name, not the national ID.
    view = response.json()["data"]["customer"]
    dumped = repr((event.__dict__, access.__dict__))
    assert view["name"] not in dumped
    assert view["nationalId"] not in dumped


async def test_a_mutation_records_changed_field_names_never_values(
    api: Api, state: AppState
) -> None:
    token = api.token("agent", subject="agent-1", team="east")
    payload = await api.gql(
        CREATE,
        {"input": {"name": "李雷", "phone": "13800138000", "email": "lilei@example.com"}},
        token=token,
        purpose="sales",
    )
    created = payload["data"]["createCustomer"]["customer"]["id"]
    event, accesses = (await _events(state))[-1]
    assert (event.operation_type, event.outcome) == ("mutation", "ok")
    change = next(a for a in accesses if a.action == "create")
    assert change.object_type == "customer"
    assert {"name", "phone", "email"} <= set(change.changed_fields)
    dumped = repr([a.__dict__ for a in accesses])
    assert "李雷" not in dumped
    assert "13800138000" not in dumped
    assert created in repr(await _record_ids(state, change.id))


async def _record_ids(state: AppState, access_id: int) -> list[str]:
    from server.data.models import AuditAccess

    async with state.sessions() as session:
        ids = await session.scalar(
            select(AuditAccess.record_ids).where(AuditAccess.id == access_id)
        )
        return [str(r) for r in ids or []]


async def test_denied_attempts_are_recorded(api: Api, state: AppState) -> None:
    customer = await make_customer(state)
    payload = await api.gql(
        BY_ID, {"id": str(customer)}, token=api.token("integrator"), purpose="support"
    )
    assert payload["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    event, accesses = (await _events(state))[-1]
    assert event.outcome == "denied"
    assert any(a.denied_fields == ["*"] and a.object_type == "customer" for a in accesses)

    search = await api.gql(SEARCH, {"first": 5}, token=api.token("agent"))
    assert search["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    event, accesses = (await _events(state))[-1]
    assert event.outcome == "denied"
    assert [(a.object_type, a.action, a.denied_fields) for a in accesses] == [
        ("audit", "read", ["*"])
    ]


async def test_who_saw_this_customers_national_id_in_the_last_30_days_is_one_query(
    api: Api, state: AppState
) -> None:
    now = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    state.services.clock = FixedClock(now - timedelta(days=45))
    watched = await make_customer(state, owner_id="agent-1", team="east")
    other = await make_customer(state, owner_id="agent-1", team="east")
    agent = api.token("agent", subject="agent-1", team="east")
    manager = api.token("manager", subject="manager-9", team="east")
    # 45 days ago: outside the window.
    await api.gql(BY_ID, {"id": str(watched)}, token=agent, purpose="support")
    state.services.clock = FixedClock(now - timedelta(days=3))
    await api.gql(BY_ID, {"id": str(watched)}, token=manager, purpose="sales")
    # The same customer without nationalId, and another customer with it: not matches.
    await api.gql(
        "query($id: ID!) { customer(id: $id) { name } }",
        {"id": str(watched)},
        token=agent,
        purpose="support",
    )
    await api.gql(BY_ID, {"id": str(other)}, token=agent, purpose="support")
    state.services.clock = FixedClock(now)

    payload = await api.gql(
        WHO_SAW_NATIONAL_ID,
        {"customer": str(watched)},
        token=api.token("compliance", subject="dpo-1"),
        purpose="compliance",
    )
    found = payload["data"]["auditEvents"]
    assert found["totalCount"] == 1
    [hit] = found["nodes"]
    assert (hit["subject"], hit["roles"], hit["purpose"]) == ("manager-9", ["manager"], "SALES")
    assert {"name": "national_id", "mode": "MASKED"} in hit["accesses"][0]["fields"]


async def test_audit_queries_are_audited_once_and_page_newest_first(
    api: Api, state: AppState
) -> None:
    customer = await make_customer(state)
    support = api.token("support", subject="support-1")
    for _ in range(3):
        await api.gql(BY_ID, {"id": str(customer)}, token=support, purpose="support")
    compliance = api.token("compliance", subject="dpo-1")
    flt: dict[str, Any] = {"subject": "support-1"}
    first = await api.gql(SEARCH, {"filter": flt, "first": 2}, token=compliance)
    page = first["data"]["auditEvents"]
    assert page["totalCount"] == 3
    assert page["pageInfo"]["hasNextPage"] is True
    seqs = [e["node"]["seq"] for e in page["edges"]]
    assert seqs == sorted(seqs, reverse=True)
    rest = await api.gql(
        SEARCH,
        {"filter": flt, "first": 2, "after": page["pageInfo"]["endCursor"]},
        token=compliance,
    )
    rest_seqs = [e["node"]["seq"] for e in rest["data"]["auditEvents"]["edges"]]
    assert len(rest_seqs) == 1
    assert rest_seqs[0] < seqs[-1]

    # The search itself is one event recording which audit events were shown.
    event, accesses = (await _events(state))[-1]
    assert (event.subject, event.outcome) == ("dpo-1", "ok")
    [access] = accesses
    assert (access.object_type, access.action, access.record_count) == ("audit_event", "read", 1)

    one = await api.gql(
        "query($id: ID!) { auditEvent(id: $id) { id subject accesses { recordIds } } }",
        {"id": str(event.id)},
        token=compliance,
    )
    assert one["data"]["auditEvent"]["subject"] == "dpo-1"
    assert one["data"]["auditEvent"]["accesses"][0]["recordIds"] == [
        rest["data"]["auditEvents"]["edges"][0]["node"]["id"]
    ]


async def test_filters_by_role_outcome_object_and_time(api: Api, state: AppState) -> None:
    customer = await make_customer(state)
    await api.gql(BY_ID, {"id": str(customer)}, token=api.token("support"), purpose="support")
    await api.gql(BY_ID, {"id": str(customer)}, token=api.token("integrator"), purpose="support")
    compliance = api.token("compliance")

    async def total(flt: dict[str, Any]) -> int:
        payload = await api.gql(SEARCH, {"filter": flt, "first": 1}, token=compliance)
        assert "errors" not in payload, payload
        count: int = payload["data"]["auditEvents"]["totalCount"]
        return count

    assert await total({"role": "support"}) == 1
    assert await total({"role": "integrator", "outcome": "DENIED"}) == 1
    assert await total({"objectType": "customer", "outcome": "OK"}) == 1
    assert await total({"recordId": str(customer)}) == 2
    assert await total({"until": "2000-01-01T00:00:00Z"}) == 0
    assert await total({"customerId": str(uuid.uuid4())}) == 0
    bad = await api.post(SEARCH, {"filter": {"outcome": "maybe"}, "first": 1}, token=compliance)
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_the_per_test_audit_check_catches_a_request_without_its_event(
    state: AppState,
) -> None:
    ledger = AuditLedger(state)
    await ledger.start()
    request = httpx.Request("POST", "http://custos.test/graphql", headers={"X-Request-Id": "lost"})
    await ledger.note(httpx.Response(200, json={"data": {"customers": None}}, request=request))
    with pytest.raises(AssertionError, match="lost"):
        await ledger.check()


async def test_a_read_with_a_denied_field_is_partial_and_names_the_field(
    api: Api, state: AppState
) -> None:
    customer = await make_customer(state)
    payload = await api.gql(
        "query($id: ID!) { customer(id: $id) { name nationalId } }",
        {"id": str(customer)},
        token=api.token("support"),
        purpose="support",
    )
    assert payload["data"]["customer"]["name"]
    assert payload["errors"][0]["path"] == ["customer", "nationalId"]
    event, [access] = (await _events(state))[-1]
    assert event.outcome == "partial"
    assert access.fields == {"name": "clear"}
    assert access.denied_fields == ["national_id"]


async def test_oversized_client_headers_are_cut_to_fit_not_a_failed_audit(
    api: Api, state: AppState
) -> None:
    long_id = "r" * 100
    response = await api.client.post(
        "/graphql",
        json={"query": "query " + "N" * 200 + " { me { subject } }"},
        headers={
            "Authorization": f"Bearer {api.token('support')}",
            "X-Request-Id": long_id,
            "User-Agent": "u" * 1000,
        },
    )
    assert response.status_code == 200, response.text
    event, _ = (await _events(state))[-1]
    assert event.request_id == long_id[:64]
    assert event.operation_name == "N" * 128
    assert event.user_agent == "u" * 256


async def test_a_denied_lookup_by_national_id_is_recorded_not_a_failed_audit(
    api: Api, state: AppState
) -> None:
    await make_customer(state)
    payload = await api.gql(
        'query { customerByContact(nationalId: "110101199001010015") { id } }',
        token=api.token("support"),
        purpose="support",
    )
    assert payload["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    event, accesses = (await _events(state))[-1]
    assert event.outcome == "denied"
    assert [(a.action, a.denied_fields) for a in accesses] == [("lookup:national_id", ["*"])]
