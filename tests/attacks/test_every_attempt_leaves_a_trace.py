"""Attack 8: attacks left no trace.

Out-of-scope mutations answered with a `UserError` NOT_FOUND were audited `ok` without
the target; reads by id of an owned record did not name its customer, so
`auditEvents(filter: {customerId})` showed none of the attempts; failed authentications
and bad purposes left neither an event nor a log line; a compliance export was invisible
to "who saw this national ID".
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
from sqlalchemy import select, text

from server.app import AppState
from server.data.models import AuditAccess, AuditEvent
from tests.conftest import Api
from tests.factories import make_customer
from tests.ops_helpers import make_order, make_product

RESULT = "{ __typename ... on UserError { code } }"
ATTEMPTS: dict[str, str] = {
    "updateCustomer": 'updateCustomer(id: "@X", input: {region: "x"}) ' + RESULT,
    "mergeCustomers": 'mergeCustomers(survivorId: "@MINE", duplicateId: "@X") ' + RESULT,
    "tagCustomer": 'tagCustomer(customerId: "@X", add: ["x"]) ' + RESULT,
    "verifyContact": 'verifyContact(customerId: "@X", channel: PHONE) ' + RESULT,
    "markReviewed": 'markReviewed(customerId: "@X") ' + RESULT,
    "logInteraction": 'logInteraction(input: {customerId: "@X", channel: PHONE, '
    "direction: OUTBOUND, kind: CARE}) " + RESULT,
    "openComplaint": 'openComplaint(input: {customerId: "@X", category: BILLING, '
    'severity: "normal", description: "x"}) ' + RESULT,
    "createOrder": 'createOrder(customerId: "@X", items: [{productId: "@PRODUCT", '
    "quantity: 1}]) " + RESULT,
    "redeemPoints": 'redeemPoints(customerId: "@X", points: 10) ' + RESULT,
    "recordReferral": 'recordReferral(referrerId: "@MINE", referredId: "@X") ' + RESULT,
    "acknowledgeComplaint": 'acknowledgeComplaint(id: "@COMPLAINT") ' + RESULT,
    "escalateComplaint": 'escalateComplaint(id: "@COMPLAINT") ' + RESULT,
    "closeComplaint": 'closeComplaint(id: "@COMPLAINT") ' + RESULT,
    "resolveComplaint": 'resolveComplaint(id: "@COMPLAINT", input: {resolution: "x", '
    "rootCause: BILLING}) " + RESULT,
    "updateOrderStatus": 'updateOrderStatus(orderId: "@ORDER", status: PAID) ' + RESULT,
    "respondToInteraction": 'respondToInteraction(id: "@INTERACTION") ' + RESULT,
    "solveInteraction": 'solveInteraction(id: "@INTERACTION") ' + RESULT,
}
READS: dict[str, str] = {
    "customer": 'customer(id: "@X") { id }',
    "interaction": 'interaction(id: "@INTERACTION") { id }',
    "complaint": 'complaint(id: "@COMPLAINT") { id }',
    "order": 'order(id: "@ORDER") { id }',
    # By global id, the record's own kind decides: the same refusal, the same trace.
    "node": 'node(id: "@COMPLAINT") { id }',
}
SEARCH = """
query($filter: AuditEventFilter!) {
  auditEvents(first: 100, filter: $filter) { nodes { requestId outcome operationName } }
}
"""


async def _event(state: AppState, request_id: str) -> tuple[str, set[uuid.UUID]]:
    """The request's outcome and every record id of its denied accesses."""
    async with state.sessions() as session:
        event = (
            await session.scalars(select(AuditEvent).where(AuditEvent.request_id == request_id))
        ).one()
        rows = await session.execute(
            select(AuditAccess.record_ids, AuditAccess.denied_fields).where(
                AuditAccess.event_id == event.id
            )
        )
        return event.outcome, {i for r in rows if r.denied_fields == ["*"] for i in r.record_ids}


async def _west_records(api: Api, target: uuid.UUID) -> dict[str, str]:
    """An interaction, a complaint and an order of the other team's customer."""
    west = api.token("manager", subject="m-west", team="west")
    setup = await api.gql(
        """mutation($c: ID!) {
          logInteraction(input: {customerId: $c, channel: PHONE, direction: INBOUND,
                                 kind: CONSULTATION, notes: "n"}) {
            ... on InteractionPayload { interaction { id } } }
          openComplaint(input: {customerId: $c, category: BILLING, severity: "normal",
                                description: "d"}) { ... on ComplaintPayload { complaint { id } } }
        }""",
        {"c": str(target)},
        token=west,
    )
    product = await make_product(api, "TRACE-1", "10.00", "4.00")
    order = await make_order(api, west, target, [{"productId": product, "quantity": 1}])
    return {
        "@INTERACTION": setup["data"]["logInteraction"]["interaction"]["id"],
        "@COMPLAINT": setup["data"]["openComplaint"]["complaint"]["id"],
        "@ORDER": order["order"]["id"],
        "@PRODUCT": product,
    }


async def test_every_attempt_on_an_unseen_customer_is_denied_and_found_by_its_id(
    api: Api, state: AppState
) -> None:
    target = await make_customer(state, owner_id="agent-3", team="west")
    mine = await make_customer(state, owner_id="agent-1", team="east")
    ids = {"@X": str(target), "@MINE": str(mine), **await _west_records(api, target)}
    attacker = api.token("agent", subject="agent-1", team="east")
    attempts: dict[str, str] = {}
    problems: list[str] = []
    for operation, cases in (("mutation", ATTEMPTS), ("query", READS)):
        for name, field in cases.items():
            document = f"{operation} {{ {field} }}"
            for placeholder, value in ids.items():
                document = document.replace(placeholder, value)
            response = await api.post(document, token=attacker, purpose="support")
            body: dict[str, Any] = response.json()
            result = (body.get("data") or {}).get(name)
            codes = {e["extensions"]["code"] for e in body.get("errors", [])}
            if isinstance(result, dict) and "code" in result:
                codes.add(result["code"])
            request_id = response.headers["x-request-id"]
            attempts[request_id] = name
            outcome, denied_ids = await _event(state, request_id)
            if codes != {"NOT_FOUND"}:
                problems.append(f"{name}: answered {body}")
            if outcome != "denied":
                problems.append(f"{name}: audited {outcome}")
            if target not in denied_ids:
                problems.append(f"{name}: the denial does not name the customer")
    assert not problems, "\n".join(problems)

    compliance = api.token("compliance", subject="c-1")
    found = await api.gql(SEARCH, {"filter": {"customerId": str(target)}}, token=compliance)
    seen = {n["requestId"]: n["outcome"] for n in found["data"]["auditEvents"]["nodes"]}
    missing = sorted(name for rid, name in attempts.items() if seen.get(rid) != "DENIED")
    assert not missing, f"not in the customer's trail as denied: {missing}"


async def test_a_refused_root_field_beside_a_successful_one_is_partial(
    api: Api, state: AppState
) -> None:
    theirs = await make_customer(state, owner_id="agent-3", team="west")
    mine = await make_customer(state, owner_id="agent-1", team="east")
    response = await api.post(
        f"""mutation {{
          a: markReviewed(customerId: "{mine}") {RESULT}
          b: markReviewed(customerId: "{theirs}") {RESULT}
        }}""",
        token=api.token("agent", subject="agent-1", team="east"),
    )
    outcome, denied = await _event(state, response.headers["x-request-id"])
    assert (outcome, denied) == ("partial", {theirs})


async def test_failed_authentication_and_bad_purpose_are_logged_counted_and_aggregated(
    api: Api, state: AppState, caplog: pytest.LogCaptureFixture
) -> None:
    from server.counters import AUTHENTICATION_FAILURES, BAD_PURPOSES

    malformed, purposes = AUTHENTICATION_FAILURES.value("TOKEN_MALFORMED"), BAD_PURPOSES.value()
    caplog.set_level(logging.INFO)
    request_ids = []
    for _ in range(5):
        response = await api.post("{ me { subject } }", token="not-a-token-s3cret")
        assert response.status_code == 401
        request_ids.append(response.headers["x-request-id"])
    good = api.token("agent", subject="agent-1", team="east")
    for _ in range(2):
        response = await api.post("{ me { subject } }", token=good, purpose="curiosity")
        assert response.status_code == 400

    lines = [r.getMessage() for r in caplog.records if r.name == "custos.security"]
    assert len(lines) == 7
    assert all("client=203.0.113.7" in line for line in lines)
    assert sum("code=TOKEN_MALFORMED" in line for line in lines) == 5
    assert sum("code=BAD_PURPOSE" in line for line in lines) == 2
    assert all(any(rid in line for line in lines) for rid in request_ids)
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "s3cret" not in logged
    assert "curiosity" not in logged
    assert AUTHENTICATION_FAILURES.value("TOKEN_MALFORMED") - malformed == 5
    assert BAD_PURPOSES.value() - purposes == 2

    async with state.sessions() as session:
        rows = (
            await session.execute(text("SELECT code, client_addr, count FROM security_events"))
        ).all()
        events = await session.scalar(select(AuditEvent.id).limit(1))
    totals: dict[str, int] = {}
    for code, client, count in rows:
        assert client == "203.0.113.7"
        totals[code] = totals.get(code, 0) + count
    # A flood grows a counter per (client, code, minute), not the table.
    assert totals == {"TOKEN_MALFORMED": 5, "BAD_PURPOSE": 2}
    assert len(rows) <= 4
    assert events is None  # nothing of it in the audit chain


async def test_who_saw_a_national_id_finds_the_compliance_export(api: Api, state: AppState) -> None:
    person = await make_customer(state)
    compliance = api.token("compliance", subject="c-1")
    response = await api.post(
        "query($id: ID!) { exportCustomerData(id: $id) }",
        {"id": str(person)},
        token=compliance,
        purpose="compliance",
    )
    assert "errors" not in response.json()
    found = await api.gql(SEARCH, {"filter": {"field": "nationalId"}}, token=compliance)
    ids = {n["requestId"] for n in found["data"]["auditEvents"]["nodes"]}
    assert response.headers["x-request-id"] in ids
    by_customer = await api.gql(
        SEARCH, {"filter": {"customerId": str(person), "field": "national_id"}}, token=compliance
    )
    assert [n["operationName"] for n in by_customer["data"]["auditEvents"]["nodes"]] != []
