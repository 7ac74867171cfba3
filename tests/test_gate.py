"""The gate: every refusal is audited as it is decided, over the whole API.

Unit-level tests drive a `Gate` with the real default policy (seeded from
`policies/policy.csv`) and a real `AuditRecorder` committed to the database; the walk
calls every root query and mutation of the schema over HTTP with a role the policy
denies it, and reads the request's audit event.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from graphql import GraphQLField, GraphQLUnionType, get_named_type, is_leaf_type
from sqlalchemy import select

from schema.build import build_schema
from server.app import AppState
from server.auth.principal import Principal
from server.authz.authorizer import FieldMode, RowScope
from server.caller import Caller, caller_for
from server.customer.fields import CUSTOMER_FIELD_CLASSES
from server.data.base import DataClass
from server.data.models import AuditAccess, AuditEvent
from server.errors import ForbiddenError, NotFoundError
from tests.conftest import Api
from tests.factories import make_customer

# --- reading the audit ----------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    object_type: str
    action: str
    denied_fields: list[str]
    record_ids: set[uuid.UUID]

    @property
    def denied(self) -> bool:
        return self.denied_fields == ["*"]


async def _accesses(state: AppState, event_id: uuid.UUID) -> list[Access]:
    async with state.sessions() as session:
        rows = (
            await session.scalars(
                select(AuditAccess).where(AuditAccess.event_id == event_id).order_by(AuditAccess.id)
            )
        ).all()
        out = []
        for row in rows:
            ids = row.record_ids
            out.append(Access(row.object_type, row.action, list(row.denied_fields), set(ids)))
        return out


async def _last_event(state: AppState) -> tuple[AuditEvent, list[Access]]:
    async with state.sessions() as session:
        event = (
            await session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1))
        ).one()
    return event, await _accesses(state, event.id)


async def _committed(state: AppState, caller: Caller) -> list[Access]:
    """Append the caller's recorder as one event, as the edge does; its accesses."""
    async with state.sessions() as session, session.begin():
        event_id = await caller.audit.commit(
            session, operation_type="cli", operation_name="gate", query=None, outcome="ok"
        )
    return await _accesses(state, event_id)


async def _caller(state: AppState, *roles: str, purpose: str | None = None) -> Caller:
    async with state.sessions() as session:
        await state.services.authorizer.refresh(session, force=True)
    principal = Principal(subject="gate-test", roles=roles, team="east", purpose=purpose)
    return caller_for(principal, state.services.authorizer)


# --- the gate itself ------------------------------------------------------------------


async def test_a_refusal_is_recorded_with_object_action_and_target(state: AppState) -> None:
    caller = await _caller(state, "agent")
    target = uuid.uuid4()
    with pytest.raises(ForbiddenError):
        caller.gate.require("customer", "erase", target=target)
    caller.gate.require("customer", "update")  # allowed: nothing recorded
    assert await _committed(state, caller) == [Access("customer", "erase", ["*"], {target})]


async def test_a_refusal_without_a_target_names_no_record(state: AppState) -> None:
    caller = await _caller(state, "analyst")
    with pytest.raises(ForbiddenError):
        caller.gate.require("customer", "create")
    assert await _committed(state, caller) == [Access("customer", "create", ["*"], set())]


async def test_row_scope_requires_the_action_and_a_scope(state: AppState) -> None:
    agent = await _caller(state, "agent")
    assert agent.gate.row_scope("interaction", "create") is RowScope.OWN
    assert agent.gate.row_scope("customer", "update") is RowScope.OWN
    with pytest.raises(ForbiddenError):
        agent.gate.row_scope("complaint", "erase")
    assert await _committed(state, agent) == [Access("complaint", "erase", ["*"], set())]
    # The integrator may read products but sees no customer: no scope is a refusal too.
    integrator = await _caller(state, "integrator")
    target = uuid.uuid4()
    with pytest.raises(ForbiddenError):
        integrator.gate.row_scope("product", "read", target=target)
    assert await _committed(state, integrator) == [Access("product", "read", ["*"], {target})]


async def test_not_found_records_the_target_and_answers_like_an_unknown_id(
    state: AppState,
) -> None:
    caller = await _caller(state, "agent")
    customer, order = uuid.uuid4(), uuid.uuid4()
    error = caller.gate.not_found("interaction", "create", customer, what="customer")
    assert isinstance(error, NotFoundError)
    assert (error.code, error.message) == ("NOT_FOUND", "customer not found")
    assert caller.gate.not_found("order", "read", order).message == "order not found"
    assert await _committed(state, caller) == [
        Access("interaction", "create", ["*"], {customer}),
        Access("order", "read", ["*"], {order}),
    ]


async def test_allows_and_field_mode_record_nothing(state: AppState) -> None:
    caller = await _caller(state, "analyst")
    assert caller.gate.allows("interaction", "read")
    assert not caller.gate.allows("complaint", "create")
    assert not caller.gate.allows("audit", "read")
    assert caller.gate.field_mode("customer", "phone", DataClass.SENSITIVE) is FieldMode.NONE
    assert caller.gate.field_mode("customer", "tier", DataClass.INTERNAL) is FieldMode.CLEAR
    assert await _committed(state, caller) == []


async def test_a_purpose_bound_action_needs_an_allowed_purpose(state: AppState) -> None:
    target = uuid.uuid4()
    without = await _caller(state, "compliance", purpose="marketing")
    with pytest.raises(ForbiddenError):
        without.gate.require("customer", "export", target=target)
    assert await _committed(state, without) == [Access("customer", "export", ["*"], {target})]
    stated = await _caller(state, "compliance", purpose="compliance")
    stated.gate.require("customer", "export", target=target)
    assert await _committed(state, stated) == []


async def test_a_field_an_operation_needs_is_required_in_some_mode(state: AppState) -> None:
    support = await _caller(state, "support", purpose="support")
    classes = CUSTOMER_FIELD_CLASSES
    mode = support.gate.require_field("customer", "phone", classes["phone"], action="lookup")
    assert mode is FieldMode.CLEAR
    with pytest.raises(ForbiddenError):
        support.gate.require_field(
            "customer", "national_id", classes["national_id"], action="lookup"
        )
    assert await _committed(state, support) == [
        Access("customer", "lookup:national_id", ["*"], set())
    ]


# --- every root field, refused and audited ----------------------------------------------

ID = str(uuid.UUID("01900000-0000-7000-8000-00000000a1d0"))
OTHER = str(uuid.UUID("01900000-0000-7000-8000-00000000b2e0"))


@dataclass(frozen=True)
class Refused:
    """A root field called with minimal valid arguments by a role the policy denies it.

    `args` is GraphQL argument text in which `@id` and `@other` stand for two ids; with
    `target`, the denial must name `@id` as its record.
    """

    role: str
    args: str
    object_type: str
    action: str
    target: bool = False


QUERIES: dict[str, Refused] = {
    "customers": Refused("integrator", "(first: 1)", "customer", "read"),
    "customersNeedingReview": Refused("integrator", "(first: 1)", "customer", "read"),
    "duplicateCandidates": Refused("support", "(customerId: @id)", "customer", "update"),
    "duplicateFlags": Refused("integrator", "(first: 1)", "customer", "read"),
    "customer": Refused("integrator", "(id: @id)", "customer", "read"),
    "customerByContact": Refused("integrator", '(phone: "13800000000")', "customer", "read"),
    "policies": Refused("agent", "", "policy", "manage"),
    "roles": Refused("agent", "", "policy", "manage"),
    "roleAssignments": Refused("agent", "", "policy", "manage"),
    "apiKeys": Refused("agent", "", "apikey", "manage"),
    "explainAccess": Refused(
        "agent", '(subject: "ann", object: "customer", action: "read")', "policy", "manage"
    ),
    "exportCustomerData": Refused("analyst", "(id: @id)", "customer", "export", target=True),
    "complaints": Refused("integrator", "(first: 1)", "complaint", "read"),
    "complaint": Refused("integrator", "(id: @id)", "complaint", "read"),
    "complaintBreakdown": Refused(
        "integrator",
        '(from: "2026-01-01T00:00:00Z", to: "2026-02-01T00:00:00Z")',
        "complaint",
        "read",
    ),
    "interaction": Refused("integrator", "(id: @id)", "interaction", "read"),
    "interactionBreaches": Refused(
        "integrator", "(kind: FIRST_RESPONSE, first: 1)", "interaction", "read"
    ),
    "auditEvents": Refused("agent", "(first: 1)", "audit", "read"),
    "auditEvent": Refused("agent", "(id: @id)", "audit", "read"),
    "auditProof": Refused("agent", "(eventId: @id)", "audit", "read"),
    "products": Refused("compliance", "(first: 1)", "product", "read"),
    "order": Refused("integrator", "(id: @id)", "order", "read"),
    "orders": Refused("integrator", "(first: 1)", "order", "read"),
    "campaign": Refused("support", "(id: @id)", "campaign", "read", target=True),
    "campaignResults": Refused("support", "(id: @id)", "campaign", "read", target=True),
    "careQueue": Refused("integrator", "(days: 7)", "customer", "read"),
    "metrics": Refused("agent", '(from: "2026-01-01", to: "2026-02-01")', "metrics", "read"),
    "salesBreakdown": Refused(
        "agent", '(from: "2026-01-01", to: "2026-02-01", by: REGION)', "metrics", "read"
    ),
    "segments": Refused("agent", "(by: TIER)", "segment", "read"),
    "churnModel": Refused("agent", "", "segment", "read"),
    "atRiskCustomers": Refused("agent", "(first: 1, minScore: 0.5)", "segment", "read"),
    "frequentlyBoughtWith": Refused("agent", "(productId: @id, first: 1)", "metrics", "read"),
    "likelyBuyers": Refused("agent", "(productId: @id, first: 1)", "segment", "read"),
    "myTasks": Refused("integrator", "(first: 1)", "task", "read"),
    "teamTasks": Refused("agent", "(first: 1)", "task", "manage"),
    "task": Refused("integrator", "(id: @id)", "task", "read"),
    "retentionOutcomes": Refused(
        "integrator", '(from: "2026-01-01", to: "2026-02-01")', "task", "read"
    ),
}
# Root fields every authenticated caller may call, and why.
NOT_GATED: dict[str, str] = {
    "me": "who the caller is, as the server sees them: nothing beyond the caller's own token",
}
# Root fields gated by the kind of record their argument names, through that kind's own
# root field: a refusal answers NOT_FOUND (as for an id nothing holds), never FORBIDDEN.
GATED_BY_KIND: dict[str, str] = {
    "node": "any record by id, as its type's root field: tests/test_node.py",
}
COMPLAINT_MOVE = Refused("analyst", "(id: @id)", "complaint", "update")
TASK_MOVE = Refused("analyst", "(id: @id)", "task", "update")
MUTATIONS: dict[str, Refused] = {
    "createCustomer": Refused("analyst", '(input: {name: "Ann"})', "customer", "create"),
    "updateCustomer": Refused("support", '(id: @id, input: {name: "Ann"})', "customer", "update"),
    "verifyContact": Refused("support", "(customerId: @id, channel: PHONE)", "customer", "update"),
    "tagCustomer": Refused("support", '(customerId: @id, add: ["vip"])', "customer", "update"),
    "markReviewed": Refused("support", "(customerId: @id)", "customer", "update"),
    "addContactPoint": Refused(
        "support",
        '(customerId: @id, input: {kind: WECHAT, value: "abcdef1"})',
        "customer",
        "update",
    ),
    "updateContactPoint": Refused(
        "support", '(id: @id, input: {label: "x"})', "customer", "update"
    ),
    "removeContactPoint": Refused("support", "(id: @id)", "customer", "update"),
    "addCustomerNote": Refused("support", '(customerId: @id, body: "x")', "customer", "update"),
    "editCustomerNote": Refused("support", '(id: @id, body: "x")', "customer", "update"),
    "mergeCustomers": Refused(
        "support", "(survivorId: @id, duplicateId: @other)", "customer", "update"
    ),
    "addPolicy": Refused(
        "agent", '(input: {subject: "agent", object: "audit", action: "read"})', "policy", "manage"
    ),
    "removePolicy": Refused(
        "agent",
        '(input: {subject: "agent", object: "customer", action: "read:own"})',
        "policy",
        "manage",
    ),
    "assignRole": Refused("agent", '(subject: "ann", role: "admin")', "role:admin", "grant"),
    "revokeRole": Refused("agent", '(subject: "ann", role: "agent")', "role:agent", "grant"),
    "createApiKey": Refused("agent", '(input: {name: "sync"})', "apikey", "manage"),
    "revokeApiKey": Refused("agent", "(id: @id)", "apikey", "manage"),
    "eraseCustomer": Refused("analyst", "(id: @id)", "customer", "erase", target=True),
    "grantConsent": Refused(
        "support",
        '(customerId: @id, purpose: MARKETING, source: "web")',
        "consent",
        "update",
        target=True,
    ),
    "withdrawConsent": Refused(
        "support", "(customerId: @id, purpose: MARKETING)", "consent", "update", target=True
    ),
    "openComplaint": Refused(
        "analyst",
        '(input: {customerId: @id, category: BILLING, severity: "normal", description: "x"})',
        "complaint",
        "create",
    ),
    "acknowledgeComplaint": COMPLAINT_MOVE,
    "startComplaintWork": COMPLAINT_MOVE,
    "resolveComplaint": Refused(
        "analyst",
        '(id: @id, input: {resolution: "refunded", rootCause: BILLING})',
        "complaint",
        "update",
    ),
    "followUpComplaint": COMPLAINT_MOVE,
    "rateComplaint": Refused("analyst", "(id: @id, rating: 5)", "complaint", "update"),
    "closeComplaint": COMPLAINT_MOVE,
    "reopenComplaint": COMPLAINT_MOVE,
    "escalateComplaint": COMPLAINT_MOVE,
    "logInteraction": Refused(
        "analyst",
        "(input: {customerId: @id, channel: PHONE, direction: OUTBOUND, kind: CARE})",
        "interaction",
        "create",
    ),
    "respondToInteraction": Refused("analyst", "(id: @id)", "interaction", "update"),
    "solveInteraction": Refused("analyst", "(id: @id)", "interaction", "update"),
    "createProduct": Refused(
        "agent",
        '(input: {sku: "S-1", name: "Tea", category: "drinks", unitPrice: "9.90", '
        'unitCost: "4.00"})',
        "product",
        "manage",
    ),
    "updateProduct": Refused("agent", "(id: @id, input: {active: false})", "product", "manage"),
    "deactivateProduct": Refused("agent", "(id: @id)", "product", "manage"),
    "createOrder": Refused(
        "support", "(customerId: @id, items: [{productId: @other, quantity: 1}])", "order", "create"
    ),
    "updateOrderStatus": Refused("support", "(orderId: @id, status: PAID)", "order", "update"),
    "setOrderPromise": Refused("support", "(orderId: @id, promisedAt: null)", "order", "update"),
    "redeemPoints": Refused("support", "(customerId: @id, points: 10)", "loyalty", "update"),
    "recordReferral": Refused(
        "support", "(referrerId: @id, referredId: @other)", "referral", "create"
    ),
    "createCampaign": Refused("agent", '(input: {name: "Spring"})', "campaign", "create"),
    "recordCampaignResponse": Refused(
        "agent", "(campaignId: @id, customerId: @other)", "campaign", "update"
    ),
    "recordCampaignConversion": Refused(
        "agent", "(campaignId: @id, customerId: @other, orderId: @other)", "campaign", "update"
    ),
    "importCustomers": Refused(
        "support", '(rows: [{name: "Ann"}], strict: true)', "import", "create"
    ),
    "importOrders": Refused(
        "support",
        '(rows: [{customerRef: "C-1", date: "2024-01-01", amount: "9"}], strict: true)',
        "import",
        "create",
    ),
    "refreshSegments": Refused("agent", "", "segment", "manage"),
    "createTask": Refused(
        "analyst", '(input: {title: "Call", dueAt: "2026-01-01T00:00:00Z"})', "task", "create"
    ),
    "completeTask": TASK_MOVE,
    "snoozeTask": Refused("analyst", '(id: @id, until: "2026-01-01T00:00:00Z")', "task", "update"),
    "reassignTask": Refused("analyst", '(id: @id, assigneeId: "ann")', "task", "update"),
    "reopenTask": TASK_MOVE,
    "takeCareItem": Refused(
        "analyst", '(customerId: @id, key: "cadence:2026-01-01")', "task", "create"
    ),
    "completeCareItem": Refused(
        "analyst", '(customerId: @id, key: "cadence:2026-01-01")', "task", "update"
    ),
    "snoozeCareItem": Refused(
        "analyst",
        '(customerId: @id, key: "cadence:2026-01-01", until: "2026-01-02T00:00:00Z")',
        "task",
        "update",
    ),
    "planRetention": Refused("agent", "", "task", "manage"),
}


def _root_fields() -> dict[str, dict[str, GraphQLField]]:
    schema = build_schema()._schema
    assert schema.query_type is not None
    assert schema.mutation_type is not None
    return {"query": schema.query_type.fields, "mutation": schema.mutation_type.fields}


def _selection(field: GraphQLField) -> str:
    named = get_named_type(field.type)
    if is_leaf_type(named):
        return ""
    if isinstance(named, GraphQLUnionType) and "UserError" in {t.name for t in named.types}:
        return "{ __typename ... on UserError { code } }"
    return "{ __typename }"


def test_every_root_field_has_a_refusal_case_or_a_reason_to_be_open() -> None:
    roots = _root_fields()
    assert set(roots["query"]) == set(QUERIES) | set(NOT_GATED) | set(GATED_BY_KIND)
    assert not set(QUERIES) & set(NOT_GATED)
    assert set(roots["mutation"]) == set(MUTATIONS)


def _codes(body: dict[str, Any], name: str) -> set[str]:
    codes = {e["extensions"]["code"] for e in body.get("errors") or []}
    result = (body.get("data") or {}).get(name)
    if isinstance(result, dict) and "code" in result:
        codes.add(result["code"])
    return codes


async def test_every_root_field_refused_is_answered_forbidden_and_audited(
    api: Api, state: AppState
) -> None:
    roots = _root_fields()
    problems: list[str] = []
    for operation, cases in (("query", QUERIES), ("mutation", MUTATIONS)):
        for name, case in cases.items():
            args = case.args.replace("@id", f'"{ID}"').replace("@other", f'"{OTHER}"')
            document = f"{operation} {{ {name}{args} {_selection(roots[operation][name])} }}"
            response = await api.post(
                document, token=api.token(case.role, subject=f"{case.role}-1", team="east")
            )
            body = response.json()
            if "FORBIDDEN" not in _codes(body, name):
                problems.append(f"{name}: answered {body}")
                continue
            event, accesses = await _last_event(state)
            assert event.request_id == response.headers["x-request-id"]
            denied = [
                a
                for a in accesses
                if a.denied and (a.object_type, a.action) == (case.object_type, case.action)
            ]
            if not denied:
                problems.append(f"{name}: no denied {case.object_type}/{case.action} in {accesses}")
            elif case.target and not any(uuid.UUID(ID) in a.record_ids for a in denied):
                problems.append(f"{name}: the denial does not name its target: {denied}")
    assert not problems, "\n".join(problems)


async def test_the_open_root_fields_answer_every_role(api: Api) -> None:
    for name in NOT_GATED:
        for role in ("integrator", "analyst", "admin"):
            body = await api.gql(f"{{ {name} {{ __typename }} }}", token=api.token(role))
            assert "errors" not in body, body


# --- refusals a client sees, and what the audit keeps -------------------------------------

CREATE = """
mutation($input: CreateCustomerInput!) {
  createCustomer(input: $input) { __typename ... on UserError { code } }
}
"""
UPDATE = """
mutation($id: ID!) {
  updateCustomer(id: $id, input: {region: "上海"}) {
    __typename ... on UserError { code message } ... on CustomerUpdated { changedFields }
  }
}
"""
LOG = """
mutation($customer: ID!) {
  logInteraction(input: {customerId: $customer, channel: PHONE, direction: OUTBOUND, kind: CARE})
  { __typename ... on UserError { code message } }
}
"""


async def test_an_analysts_create_customer_leaves_a_denied_access(
    api: Api, state: AppState
) -> None:
    body = await api.gql(CREATE, {"input": {"name": "李雷"}}, token=api.token("analyst"))
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    event, accesses = await _last_event(state)
    assert event.outcome == "denied"
    assert accesses == [Access("customer", "create", ["*"], set())]


async def test_an_out_of_scope_update_answers_like_an_unknown_id_and_is_audited(
    api: Api, state: AppState
) -> None:
    theirs = await make_customer(state, owner_id="agent-2", team="west")
    mine = await make_customer(state, owner_id="agent-1", team="east")
    token = api.token("agent", subject="agent-1", team="east")
    unknown = uuid.uuid4()
    answers = []
    for target in (theirs, unknown):
        body = await api.gql(UPDATE, {"id": str(target)}, token=token)
        answers.append(body)
        event, accesses = await _last_event(state)
        assert event.outcome == "denied"
        assert Access("customer", "update", ["*"], {target}) in accesses
        assert not [a for a in accesses if a.action == "update" and not a.denied]
    refused = {"__typename": "UserError", "code": "NOT_FOUND", "message": "customer not found"}
    assert answers[0] == answers[1]
    assert answers[0]["data"] == {"updateCustomer": refused}
    assert "errors" not in answers[0]
    # In scope, the same request changes the file and records no denial.
    body = await api.gql(UPDATE, {"id": str(mine)}, token=token)
    assert body["data"]["updateCustomer"]["changedFields"] == ["region"]
    _, accesses = await _last_event(state)
    assert not [a for a in accesses if a.denied]


async def test_an_owned_record_for_an_out_of_scope_customer_is_refused_with_its_target(
    api: Api, state: AppState
) -> None:
    theirs = await make_customer(state, owner_id="agent-2", team="west")
    token = api.token("agent", subject="agent-1", team="east")
    answers = []
    for target in (theirs, uuid.uuid4()):
        body = await api.gql(LOG, {"customer": str(target)}, token=token)
        answers.append(body)
        _, accesses = await _last_event(state)
        assert Access("interaction", "create", ["*"], {target}) in accesses
    assert answers[0] == answers[1]
    assert answers[0]["data"]["logInteraction"]["code"] == "NOT_FOUND"


async def test_a_write_outside_the_scope_and_a_self_grant_are_recorded_refusals(
    state: AppState,
) -> None:
    from server.errors import ValidationError

    agent = await _caller(state, "agent")
    error = agent.gate.out_of_scope("customer", "create", "owner_id")
    assert isinstance(error, ValidationError)
    assert (error.code, error.field) == ("OUT_OF_SCOPE", "owner_id")
    assert agent.gate.refusals == 1
    admin = await _caller(state, "admin")
    admin.gate.require_grant(["manager"], to_subject="ann")
    with pytest.raises(ForbiddenError):
        admin.gate.require_grant(["manager"], to_subject="gate-test")
    with pytest.raises(ForbiddenError):
        admin.gate.require_grant(["compliance"])
    assert await _committed(state, agent) == [Access("customer", "create", ["*"], set())]
    assert await _committed(state, admin) == [
        Access("role:manager", "grant", ["*"], set()),
        Access("role:compliance", "grant", ["*"], set()),
    ]


async def test_a_required_purpose_is_checked_with_the_scope(state: AppState) -> None:
    target = uuid.uuid4()
    unstated = await _caller(state, "compliance")
    with pytest.raises(ForbiddenError):
        unstated.gate.row_scope("customer", "erase", target=target)
    assert await _committed(state, unstated) == [Access("customer", "erase", ["*"], {target})]
    stated = await _caller(state, "compliance", purpose="compliance")
    assert stated.gate.row_scope("customer", "erase", target=target) is RowScope.ALL
