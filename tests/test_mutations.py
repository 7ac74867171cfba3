"""The mutation runner: expected failures as `UserError` results naming the input field,
the savepoint rolled back with the audit's claims, everything else left to the edge."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from schema.context import GraphQLContext
from schema.mutations import run_mutation
from schema.types.common import UserError
from server.app import AppState
from server.auth.principal import Principal
from server.caller import caller_for
from server.data.models import AuditAccess, Customer
from server.errors import ValidationError
from tests.conftest import Api
from tests.factories import customer_data, make_customer
from tests.ops_helpers import CREATE_PRODUCT, make_product, manager

ERROR = "... on UserError { code message field }"
CREATE_CUSTOMER = f"""
mutation($input: CreateCustomerInput!) {{
  createCustomer(input: $input) {{
    __typename ... on CustomerCreated {{ customer {{ id }} }} {ERROR}
  }}
}}
"""
UPDATE_CUSTOMER = f"""
mutation($id: ID!, $input: UpdateCustomerInput!) {{
  updateCustomer(id: $id, input: $input) {{ __typename {ERROR} }}
}}
"""
TAG = f"""
mutation($id: ID!, $add: [String!]) {{
  tagCustomer(customerId: $id, add: $add) {{ __typename {ERROR} }}
}}
"""
CREATE_ORDER = f"""
mutation($customerId: ID!, $items: [OrderItemInput!]!) {{
  createOrder(customerId: $customerId, items: $items) {{ __typename {ERROR} }}
}}
"""
OPEN_COMPLAINT = f"""
mutation($input: OpenComplaintInput!) {{ openComplaint(input: $input) {{ __typename {ERROR} }} }}
"""
CREATE_API_KEY = f"""
mutation($input: CreateApiKeyInput!) {{ createApiKey(input: $input) {{ __typename {ERROR} }} }}
"""


async def _customer_count(state: AppState) -> int:
    async with state.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Customer)) or 0)


async def _error(api: Api, query: str, variables: dict[str, Any], token: str) -> Any:
    body = await api.gql(query, variables, token=token, purpose="support")
    assert "errors" not in body, body
    (result,) = body["data"].values()
    assert result["__typename"] == "UserError", result
    return {k: v for k, v in result.items() if k != "__typename"}


async def test_bad_phone_is_a_user_error_naming_the_field_and_writes_nothing(
    api: Api, state: AppState
) -> None:
    token = manager(api)
    result = await _error(api, CREATE_CUSTOMER, {"input": {"name": "王明", "phone": "12"}}, token)
    assert result == {
        "code": "INVALID_PHONE",
        "message": "phone is not a valid phone number",
        "field": "phone",
    }
    assert await _customer_count(state) == 0
    # Fields are named as the schema names them (camelCase).
    for values, code, field in (
        ({"nationalId": "123"}, "INVALID_NATIONAL_ID", "nationalId"),
        ({"bankCard": "4111"}, "INVALID_BANK_CARD", "bankCard"),
        ({"email": "nobody"}, "INVALID_EMAIL", "email"),
        ({"name": "  "}, "BAD_USER_INPUT", "name"),
    ):
        result = await _error(api, CREATE_CUSTOMER, {"input": {"name": "王明", **values}}, token)
        assert (result["code"], result["field"]) == (code, field), values
    assert await _customer_count(state) == 0


async def test_fields_of_updates_tags_orders_complaints_and_keys(api: Api, state: AppState) -> None:
    customer = await make_customer(state, owner_id="agent-1", team="east")
    token = manager(api)
    cases: list[tuple[str, dict[str, Any], str, str]] = [
        (UPDATE_CUSTOMER, {"id": "nope", "input": {"region": "x"}}, "BAD_USER_INPUT", "id"),
        (
            UPDATE_CUSTOMER,
            {"id": str(customer), "input": {"name": "  "}},
            "BAD_USER_INPUT",
            "name",
        ),
        (TAG, {"id": str(customer), "add": ['quote"d']}, "BAD_USER_INPUT", "add"),
        (TAG, {"id": "nope", "add": ["vip"]}, "BAD_USER_INPUT", "customerId"),
    ]
    tea = await make_product(api, "TEA-1", "19.99", "12.34")
    item = {"productId": tea, "quantity": 1}
    cases += [
        (CREATE_ORDER, {"customerId": str(customer), "items": []}, "BAD_USER_INPUT", "items"),
        (
            CREATE_ORDER,
            {"customerId": str(customer), "items": [item, {**item, "quantity": 0}]},
            "BAD_USER_INPUT",
            "items.1.quantity",
        ),
        (
            CREATE_ORDER,
            {"customerId": str(customer), "items": [{**item, "unitPrice": "1.999"}]},
            "INVALID_AMOUNT",
            "items.0.unitPrice",
        ),
        (
            CREATE_ORDER,
            {"customerId": str(customer), "items": [{**item, "productId": "x"}]},
            "BAD_USER_INPUT",
            "items.0.productId",
        ),
    ]
    complaint = {
        "customerId": str(customer),
        "category": "DELIVERY",
        "severity": "normal",
        "description": "Parcel arrived crushed",
    }
    cases += [
        (
            OPEN_COMPLAINT,
            {"input": {**complaint, "customerId": "x"}},
            "BAD_USER_INPUT",
            "customerId",
        ),
        (
            OPEN_COMPLAINT,
            {"input": {**complaint, "severity": "dire"}},
            "BAD_USER_INPUT",
            "severity",
        ),
        (
            OPEN_COMPLAINT,
            {"input": {**complaint, "description": " "}},
            "BAD_USER_INPUT",
            "description",
        ),
    ]
    for query, variables, code, field in cases:
        result = await _error(api, query, variables, token)
        assert (result["code"], result["field"]) == (code, field), (variables, result)

    admin = api.token("admin", subject="root")
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    for values, field in (
        ({"name": " "}, "name"),
        ({"name": "ci", "expiresAt": past}, "expiresAt"),
    ):
        result = await _error(api, CREATE_API_KEY, {"input": values}, admin)
        assert (result["code"], result["field"]) == ("BAD_USER_INPUT", field)
    product = await api.gql(
        CREATE_PRODUCT,
        {
            "input": {
                "sku": "C",
                "name": "c",
                "category": "c",
                "unitPrice": "1",
                "unitCost": "1.999",
            }
        },
        token=admin,
    )
    assert product["data"]["createProduct"]["field"] == "unitCost"


async def test_unknown_id_is_not_found_without_a_field(api: Api, state: AppState) -> None:
    await make_customer(state, owner_id="agent-1", team="east")
    result = await _error(
        api, UPDATE_CUSTOMER, {"id": str(uuid.uuid4()), "input": {"region": "x"}}, manager(api)
    )
    assert result == {"code": "NOT_FOUND", "message": "customer not found", "field": None}


async def test_forbidden_stays_an_error_at_the_path(api: Api, state: AppState) -> None:
    body = await api.gql(
        CREATE_CUSTOMER, {"input": {"name": "王明"}}, token=api.token("analyst", subject="ann")
    )
    assert body["data"] is None
    assert body["errors"][0]["path"] == ["createCustomer"]
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await _customer_count(state) == 0


async def test_each_mutation_of_a_document_has_its_own_savepoint(api: Api, state: AppState) -> None:
    both = """
    mutation($good: CreateCustomerInput!, $bad: CreateCustomerInput!) {
      good: createCustomer(input: $good) { __typename }
      bad: createCustomer(input: $bad) { __typename ... on UserError { field } }
    }"""
    variables = {"good": {"name": "王明"}, "bad": {"name": "李雷", "email": "nobody"}}
    body = await api.gql(both, variables, token=manager(api))
    assert body["data"] == {
        "good": {"__typename": "CustomerCreated"},
        "bad": {"__typename": "UserError", "field": "email"},
    }
    assert await _customer_count(state) == 1
    async with state.sessions() as session:
        creates = await session.scalar(
            select(func.count()).select_from(AuditAccess).where(AuditAccess.action == "create")
        )
    assert creates == 1


async def _context(state: AppState, session: Any) -> GraphQLContext:
    principal = Principal(subject="mgr-east", roles=("manager",), team="east")
    await state.services.authorizer.refresh(session)
    caller = caller_for(principal, state.services.authorizer)
    return GraphQLContext(
        session=session, caller=caller, services=state.services, max_page_size=100
    )


async def _commit_audit(ctx: GraphQLContext) -> list[AuditAccess]:
    event_id = await ctx.caller.audit.commit(
        ctx.session, operation_type="mutation", operation_name="test", query=None, outcome="ok"
    )
    rows = await ctx.session.scalars(select(AuditAccess).where(AuditAccess.event_id == event_id))
    return list(rows)


async def test_a_refused_change_is_rolled_back_and_not_claimed(state: AppState) -> None:
    """A change that wrote and then failed leaves no row and no audit claim."""
    async with state.sessions() as session, session.begin():
        ctx = await _context(state, session)
        kept = await run_mutation(
            ctx, lambda: state.services.customers.create(session, ctx.caller, customer_data())
        )
        assert isinstance(kept, uuid.UUID)

        async def create_then_refuse() -> uuid.UUID:
            await state.services.customers.create(session, ctx.caller, customer_data())
            await session.flush()
            raise ValidationError("a later step refused it", field="potential_needs")

        refused = await run_mutation(ctx, create_then_refuse)
        assert refused == UserError(
            code="BAD_USER_INPUT", message="a later step refused it", field="potentialNeeds"
        )
        accesses = await _commit_audit(ctx)
    async with state.sessions() as session:
        ids = list(await session.scalars(select(Customer.id)))
    assert ids == [kept]
    (create,) = [a for a in accesses if a.action == "create"]
    assert create.record_count == 1


async def test_an_unexpected_error_propagates_after_the_rollback(state: AppState) -> None:
    async with state.sessions() as session, session.begin():
        ctx = await _context(state, session)

        async def create_then_break() -> uuid.UUID:
            await state.services.customers.create(session, ctx.caller, customer_data())
            await session.flush()
            raise RuntimeError("a bug")

        with pytest.raises(RuntimeError):
            await run_mutation(ctx, create_then_break)
        accesses = await _commit_audit(ctx)
    assert await _customer_count(state) == 0
    assert [a for a in accesses if a.action == "create"] == []
