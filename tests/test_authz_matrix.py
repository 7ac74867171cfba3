"""The default policy as data (`authz_matrix.json`), walked through the GraphQL API.

Each case names a role, a type, a field (or none), an action, the stated purpose, and the
expected outcome and mode. Expectations are written from the role descriptions, not
derived from the policy, so a policy change that breaks a role shows here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from server.app import AppState
from server.data.models import AuditAccess, AuditEvent, Customer
from server.vault.masking import mask
from server.vault.normalise import normalise_bank_card, normalise_email, normalise_phone
from tests.conftest import Api
from tests.factories import customer_data, make_customer

MATRIX = json.loads((Path(__file__).parent / "authz_matrix.json").read_text())
CASES: list[dict[str, Any]] = MATRIX["cases"]
GRAPHQL_NAMES = {"national_id": "nationalId", "bank_card": "bankCard"}
OWNER, TEAM = "agent-1", "east"
ADMIN_QUERIES = {"policy": "{ policies { id } }", "apikey": "{ apiKeys { id } }"}
# Type reads of other objects, each through a root field that needs exactly that type.
TYPE_READS = {
    "interaction": "query($i: ID!) { interaction(id: $i) { id } }",
    "complaint": "query($c: ID!) { complaint(id: $c) { id } }",
    "order": "{ orders(first: 1) { totalCount } }",
    "metrics": '{ metrics(from: "2026-01-01", to: "2026-02-01") { total { key } } }',
    "audit": "{ auditEvents(first: 1) { totalCount } }",
}
# Sealed texts of customer-owned records: (root field, id variable, clear value).
RECORD_TEXTS = {
    ("interaction", "notes"): ("interaction", "i", "Asked about the invoice"),
    ("complaint", "description"): ("complaint", "c", "The kettle leaks"),
}
SETUP = """
mutation($customer: ID!) {
  logInteraction(input: {customerId: $customer, channel: PHONE, direction: INBOUND,
                         kind: CONSULTATION, notes: "Asked about the invoice"}) {
    ... on InteractionPayload { interaction { id } }
  }
  openComplaint(input: {customerId: $customer, category: PRODUCT_QUALITY, severity: "normal",
                        description: "The kettle leaks"}) {
    ... on ComplaintPayload { complaint { id } }
  }
}
"""
CREATE = """
mutation($input: CreateCustomerInput!) {
  createCustomer(input: $input) {
    __typename
    ... on CustomerCreated { customer { id } }
    ... on UserError { code }
  }
}
"""


def _token(api: Api, role: str) -> str:
    # Every role sees the matrix customer: the agent owns it, the manager shares its team.
    return api.token(role, subject=OWNER if role == "agent" else f"user-{role}", team=TEAM)


def _clear_values() -> tuple[dict[str, Any], dict[str, str]]:
    data = customer_data(owner_id=OWNER, team=TEAM, region="上海", tier="high")
    assert data.phone
    assert data.email
    assert data.bank_card
    assert data.birthday
    clear = {
        "name": data.name,
        "phone": normalise_phone(data.phone),
        "email": normalise_email(data.email),
        "national_id": data.national_id or "",
        "bank_card": normalise_bank_card(data.bank_card),
        "address": data.address or "",
        "birthday": data.birthday.isoformat(),
        "tier": "HIGH",  # the GraphQL enum value
        "region": "上海",
    }
    return {k: getattr(data, k) for k in data.__dataclass_fields__}, clear


async def _customer_count(state: AppState) -> int:
    async with state.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Customer)) or 0)


async def _check_field_read(
    api: Api, case: dict[str, Any], customer_id: str, clear: dict[str, str]
) -> None:
    field = case["field"]
    name = GRAPHQL_NAMES.get(field, field)
    query = f"query($id: ID!) {{ customer(id: $id) {{ id {name} }} }}"
    body = await api.gql(
        query, {"id": customer_id}, token=_token(api, case["role"]), purpose=case["purpose"]
    )
    node = body["data"]["customer"]
    assert node["id"] == customer_id, case
    if case["outcome"] == "deny":
        assert node[name] is None, case
        assert [e["path"] for e in body["errors"]] == [["customer", name]], case
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", case
        return
    assert "errors" not in body, (case, body)
    expected = clear[field] if case["mode"] == "clear" else mask(field, clear[field])
    assert node[name] == expected, case
    if case["mode"] == "masked":
        assert node[name] != clear[field], case


async def _check_record_text(api: Api, case: dict[str, Any], records: dict[str, str]) -> None:
    root, variable, clear = RECORD_TEXTS[(case["type"], case["field"])]
    field = case["field"]
    query = f"query($id: ID!) {{ {root}(id: $id) {{ id {field} }} }}"
    body = await api.gql(
        query, {"id": records[variable]}, token=_token(api, case["role"]), purpose=case["purpose"]
    )
    node = body["data"][root]
    assert node["id"] == records[variable], (case, body)
    if case["outcome"] == "deny":
        assert node[field] is None, case
        assert [e["path"] for e in body["errors"]] == [[root, field]], case
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", case
        return
    assert "errors" not in body, (case, body)
    assert node[field] == (clear if case["mode"] == "clear" else mask(field, clear)), case


async def _check_type_action(
    api: Api,
    state: AppState,
    case: dict[str, Any],
    new_customer: dict[str, Any],
    records: dict[str, str],
) -> None:
    token = _token(api, case["role"])
    allowed = case["outcome"] == "allow"
    if case["type"] in TYPE_READS:
        query = TYPE_READS[case["type"]]
        variables = {k: v for k, v in records.items() if f"${k}" in query} or None
        body = await api.gql(query, variables, token=token, purpose="support")
    elif case["type"] in ADMIN_QUERIES:
        body = await api.gql(ADMIN_QUERIES[case["type"]], token=token)
    elif case["action"] == "read":
        body = await api.gql("{ customers(first: 5) { totalCount } }", token=token)
    else:
        before = await _customer_count(state)
        body = await api.gql(CREATE, {"input": new_customer}, token=token)
        assert await _customer_count(state) == before + (1 if allowed else 0), case
        if allowed:
            assert body["data"]["createCustomer"]["__typename"] == "CustomerCreated", case
    if allowed:
        assert "errors" not in body, (case, body)
    else:
        # A denied non-null root field nulls `data`; a nullable one is null itself.
        assert body["data"] is None or all(v is None for v in body["data"].values()), case
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"], case


async def test_every_matrix_case_holds_through_the_api(api: Api, state: AppState) -> None:
    values, clear = _clear_values()
    customer_id = str(await make_customer(state, **values))
    setup = await api.gql(SETUP, {"customer": customer_id}, token=_token(api, "agent"))
    records = {
        "i": setup["data"]["logInteraction"]["interaction"]["id"],
        "c": setup["data"]["openComplaint"]["complaint"]["id"],
    }
    counter = 0
    for case in CASES:
        if case["field"] is not None and case["type"] != "customer":
            await _check_record_text(api, case, records)
        elif case["field"] is not None:
            await _check_field_read(api, case, customer_id, clear)
        else:
            counter += 1
            fresh = customer_data()
            new_customer = {
                "name": fresh.name,
                "phone": f"139{counter:08d}",
                "email": f"matrix{counter}@example.com",
            }
            await _check_type_action(api, state, case, new_customer, records)


def test_matrix_covers_every_default_role_for_reads_and_denials() -> None:
    roles = {c["role"] for c in CASES}
    assert roles == {"admin", "manager", "agent", "support", "analyst", "compliance", "integrator"}
    assert {c["outcome"] for c in CASES} == {"allow", "deny"}
    assert {c["mode"] for c in CASES if c["field"]} == {"clear", "masked", "none"}


LOOKUPS: list[dict[str, Any]] = MATRIX["lookups"]
BY_CONTACT = "query($v: String!) {{ customerByContact({name}: $v) {{ id }} }}"


async def _last_accesses(state: AppState) -> list[tuple[str, list[str], dict[str, str]]]:
    async with state.sessions() as session:
        event = await session.scalar(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1))
        assert event is not None
        accesses = await session.scalars(
            select(AuditAccess).where(AuditAccess.event_id == event.id)
        )
        return [(a.action, list(a.denied_fields), dict(a.fields)) for a in accesses]


async def test_every_lookup_field_answers_only_in_clear(api: Api, state: AppState) -> None:
    values, clear = _clear_values()
    customer_id = str(await make_customer(state, **values))
    for case in LOOKUPS:
        field, role = case["field"], case["role"]
        name = GRAPHQL_NAMES.get(field, field)
        token = _token(api, role)
        if role != "integrator":
            # The mode the case names is the mode the role reads the field in.
            read = await api.gql(
                f"query($id: ID!) {{ customer(id: $id) {{ {name} }} }}",
                {"id": customer_id},
                token=token,
                purpose=case["purpose"],
            )
            shown = read["data"]["customer"][name]
            expected = {"clear": clear[field], "masked": mask(field, clear[field])}
            assert shown == expected.get(case["mode"]), case
        body = await api.gql(
            BY_CONTACT.format(name=name), {"v": clear[field]}, token=token, purpose=case["purpose"]
        )
        accesses = await _last_accesses(state)
        if case["outcome"] == "allow":
            assert body["data"]["customerByContact"] == {"id": customer_id}, (case, body)
            assert ("lookup", [], {field: "hit"}) in accesses, case
        else:
            assert body["data"]["customerByContact"] is None, (case, body)
            assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"], case
            refused = "read" if role == "integrator" else f"lookup:{field}"
            assert (refused, ["*"], {}) in accesses, (case, accesses)


def test_lookup_matrix_covers_every_role_field_mode_and_purpose() -> None:
    assert {c["role"] for c in LOOKUPS} == {c["role"] for c in CASES}
    assert {c["field"] for c in LOOKUPS} == {"phone", "email", "national_id"}
    assert {c["mode"] for c in LOOKUPS} == {"clear", "masked", "none"}
    for role in {c["role"] for c in LOOKUPS}:
        purposes = {c["purpose"] for c in LOOKUPS if c["role"] == role}
        assert None in purposes, role
        assert len(purposes) == 2, role
    assert all((c["outcome"] == "allow") is (c["mode"] == "clear") for c in LOOKUPS)


COMBINED: list[dict[str, Any]] = MATRIX["combined_writes"]
WRITES = {
    "update": 'updateCustomer(id: "@T", input: {region: "深圳"})',
    "tag": 'tagCustomer(customerId: "@T", add: ["matrix"])',
    "merge": 'mergeCustomers(survivorId: "@OWN", duplicateId: "@T")',
    "review": 'markReviewed(customerId: "@T")',
    "verify": 'verifyContact(customerId: "@T", channel: PHONE)',
}


async def _file_state(state: AppState, customer_id: Any) -> tuple[Any, ...]:
    async with state.sessions() as session:
        row = (
            await session.execute(
                select(
                    Customer.owner_id,
                    Customer.team,
                    Customer.region,
                    Customer.tags,
                    Customer.reviewed_at,
                    Customer.phone_verified_at,
                    Customer.merged_into_id,
                    Customer.updated_at,
                ).where(Customer.id == customer_id)
            )
        ).one()
    return tuple(row)


async def test_combined_roles_write_only_where_one_role_allows_the_write(
    api: Api, state: AppState
) -> None:
    other = await make_customer(state, owner_id="agent-3", team="west")
    before = await _file_state(state, other)
    problems: list[str] = []
    for case in COMBINED:
        roles = case["roles"]
        subject = "agent-1" if "agent" in roles else f"user-{'-'.join(roles)}"
        token = api.token(*roles, subject=subject, team=TEAM)
        own = await make_customer(state, owner_id=OWNER, team=TEAM)
        target = other if case["target"] == "other_team" else own
        field = WRITES[case["operation"]].replace("@T", str(target)).replace("@OWN", str(own))
        name = field.split("(")[0]
        body = await api.gql(
            f"mutation {{ {field} {{ __typename ... on UserError {{ code }} }} }}", token=token
        )
        result = (body.get("data") or {}).get(name)
        if isinstance(result, dict):
            answer = result.get("code") or "ok"
        else:
            answer = body["errors"][0]["extensions"]["code"]
        if answer != case["outcome"]:
            problems.append(f"{case}: answered {body}")
    assert not problems, "\n".join(problems)
    assert await _file_state(state, other) == before


def test_combined_write_cases_cover_the_attacked_pairs() -> None:
    pairs = {tuple(c["roles"]) for c in COMBINED if c["target"] == "other_team"}
    assert {("agent", "analyst"), ("agent", "support"), ("manager", "support")} <= pairs
    attacked = {c["operation"] for c in COMBINED if c["outcome"] == "NOT_FOUND"}
    assert attacked == set(WRITES)
