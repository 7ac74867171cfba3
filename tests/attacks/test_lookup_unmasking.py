"""Attack 1: unmasking a masked field through lookups.

An agent sees national IDs masked and birthdays in clear, so only a handful of
check-digit-valid IDs fit the mask; `customerByContact(nationalId:)` with each (aliased in
one request) used to name the true one. An admin recovered a full phone from its 3+4 mask
the same way. A lookup is now allowed only on a field the caller reads in clear under the
request's purpose, and every lookup is audited with the field and hit or miss, never the
value. The duplicate checks of a write are lookups too.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from server.app import AppState
from server.data.models import AuditAccess, AuditEvent
from server.vault.normalise import national_id_check_char
from tests.conftest import Api
from tests.factories import make_customer

BY_NATIONAL_ID = "query($n: String!) { customerByContact(nationalId: $n) { id } }"
BY_PHONE = "query($p: String!) { customerByContact(phone: $p) { id } }"
CREATE = """
mutation($input: CreateCustomerInput!) {
  createCustomer(input: $input) {
    __typename
    ... on CustomerCreated { customer { id } }
    ... on UserError { code }
  }
}
"""
CANDIDATES = """
query($id: ID!) { duplicateCandidates(customerId: $id) { matchedOn customer { id } } }
"""


def _id_with_serial(serial: int) -> str:
    first17 = f"42010119900307{serial:03d}"
    return first17 + national_id_check_char(first17)


async def _last_event(state: AppState) -> tuple[AuditEvent, list[AuditAccess]]:
    async with state.sessions() as session:
        event = await session.scalar(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1))
        assert event is not None
        accesses = (
            await session.scalars(select(AuditAccess).where(AuditAccess.event_id == event.id))
        ).all()
        return event, list(accesses)


def _refused(body: dict[str, Any]) -> bool:
    return body["data"] is None or all(v is None for v in body["data"].values())


async def test_an_agent_cannot_confirm_guesses_of_a_masked_national_id(
    api: Api, state: AppState
) -> None:
    true_id = _id_with_serial(255)
    await make_customer(state, owner_id="agent-1", national_id=true_id)
    agent = api.token("agent", subject="agent-1", team="east")
    shown = await api.gql(
        "{ customers(first: 1) { nodes { nationalId birthday } } }", token=agent, purpose="support"
    )
    assert shown["data"]["customers"]["nodes"][0]["nationalId"].endswith(true_id[-4:])
    # Every guess that fits the mask, aliased in one request, as the attack did.
    guesses = [_id_with_serial(n) for n in range(250, 260)]
    query = (
        "{ "
        + " ".join(
            f'g{i}: customerByContact(nationalId: "{g}") {{ id }}' for i, g in enumerate(guesses)
        )
        + " }"
    )
    body = await api.gql(query, token=agent, purpose="support")
    assert _refused(body), body
    assert {e["extensions"]["code"] for e in body["errors"]} == {"FORBIDDEN"}
    _, accesses = await _last_event(state)
    assert {(a.action, tuple(a.denied_fields)) for a in accesses} == {
        ("lookup:national_id", ("*",))
    }


async def test_an_admin_cannot_recover_a_phone_from_its_mask(api: Api, state: AppState) -> None:
    await make_customer(state, phone="15800002205")
    admin = api.token("admin", subject="root")
    listed = await api.gql("{ customers(first: 1) { nodes { phone } } }", token=admin)
    assert listed["data"]["customers"]["nodes"][0]["phone"] == "158****2205"
    for purpose in (None, "support"):
        body = await api.gql(BY_PHONE, {"p": "15800002205"}, token=admin, purpose=purpose)
        assert _refused(body), body
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_a_lookup_needs_the_field_in_clear_for_the_stated_purpose(
    api: Api, state: AppState
) -> None:
    customer = await make_customer(state, owner_id="agent-1", phone="13900004321")
    manager = api.token("manager", subject="mgr", team="east")
    masked = await api.gql(BY_PHONE, {"p": "13900004321"}, token=manager)
    assert _refused(masked)
    assert masked["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    stated = await api.gql(BY_PHONE, {"p": "13900004321"}, token=manager, purpose="sales")
    assert stated["data"]["customerByContact"] == {"id": str(customer)}


async def test_every_lookup_is_audited_with_field_and_outcome_never_the_value(
    api: Api, state: AppState
) -> None:
    customer = await make_customer(state, phone="13900007777")
    support = api.token("support", subject="sue")
    hit = await api.gql(BY_PHONE, {"p": "13900007777"}, token=support, purpose="support")
    assert hit["data"]["customerByContact"] == {"id": str(customer)}
    event, accesses = await _last_event(state)
    lookups = [(a.action, a.fields, a.record_count) for a in accesses if a.action == "lookup"]
    assert lookups == [("lookup", {"phone": "hit"}, 1)]
    miss = await api.gql(BY_PHONE, {"p": "13900008888"}, token=support, purpose="support")
    assert miss["data"]["customerByContact"] is None
    event, accesses = await _last_event(state)
    assert [(a.action, a.fields, a.record_count) for a in accesses] == [
        ("lookup", {"phone": "miss"}, 0)
    ]
    recorded = str([(a.fields, a.changed_fields, a.denied_fields) for a in accesses])
    recorded += str({k: v for k, v in vars(event).items() if not k.startswith("_")})
    assert "7777" not in recorded
    assert "8888" not in recorded
    # "Who looked up this customer's phone" is a question compliance can ask.
    found = await api.gql(
        """query($c: ID!) { auditEvents(first: 10, filter: {customerId: $c, field: "phone"}) {
             nodes { subject accesses { action fields { name mode } } } } }""",
        {"c": str(customer)},
        token=api.token("compliance", subject="carol"),
        purpose="compliance",
    )
    nodes = found["data"]["auditEvents"]["nodes"]
    assert any(
        n["subject"] == "sue"
        and {"action": "lookup", "fields": [{"name": "phone", "mode": "HIT"}]} in n["accesses"]
        for n in nodes
    ), nodes


async def test_a_duplicate_check_does_not_confirm_a_masked_guess(api: Api, state: AppState) -> None:
    true_id = _id_with_serial(77)
    existing = await make_customer(state, owner_id="agent-1", national_id=true_id)
    agent = api.token("agent", subject="agent-1", team="east")
    answers = set()
    for serial in (76, 77, 78):
        body = await api.gql(
            CREATE,
            {"input": {"name": f"Probe {serial}", "nationalId": _id_with_serial(serial)}},
            token=agent,
            purpose="support",
        )
        answers.add(body["data"]["createCustomer"]["__typename"])
        if serial == 77:
            probe = body["data"]["createCustomer"]["customer"]["id"]
    # The true ID and the wrong guesses answer alike.
    assert answers == {"CustomerCreated"}
    # Nor do the probe file's duplicate candidates name the masked match.
    candidates = await api.gql(CANDIDATES, {"id": probe}, token=agent, purpose="support")
    assert candidates["data"]["duplicateCandidates"] == []
    _, accesses = await _last_event(state)
    assert all(a.fields.get("national_id") is None for a in accesses)
    # The check itself was recorded on the create, naming the file it matched.
    async with state.sessions() as session:
        checks = (
            await session.scalars(
                select(AuditAccess).where(AuditAccess.action == "duplicate_check")
            )
        ).all()
    assert any(a.fields == {"national_id": "hit"} for a in checks)
    assert uuid.UUID(probe) != existing
