"""The authorizer and the policy vocabulary, below GraphQL (real casbin, real database)."""

from __future__ import annotations

from server.app import AppState
from server.audit.recorder import AuditRecorder
from server.auth.principal import Principal
from server.authz.authorizer import FieldMode, RowScope, read_policy_file
from server.authz.gate import Gate
from server.authz.vocabulary import MACHINERY_TABLES, TYPE_TABLES, check_rule, valid_objects
from server.customer.fields import CUSTOMER_FIELD_CLASSES
from server.data.base import Base, DataClass
from tests.conftest import Api
from tests.factories import make_customer


def test_every_table_is_a_policy_type_or_named_machinery() -> None:
    tables = set(Base.metadata.tables)
    assert set(TYPE_TABLES.values()) | MACHINERY_TABLES == tables
    assert not set(TYPE_TABLES.values()) & MACHINERY_TABLES


def test_the_default_policy_speaks_the_vocabulary() -> None:
    for rule in read_policy_file():
        if rule[0] == "p":
            check_rule(rule[1], rule[2], rule[3], rule[4])
    objects = valid_objects()
    assert {"customer.phone", "complaint", "purpose:support", "policy", "apikey"} <= set(objects)


async def test_decisions_are_made_once_per_object_and_action(state: AppState) -> None:
    async with state.sessions() as session:
        await state.services.authorizer.refresh(session, force=True)
    principal = Principal(subject="agent-1", roles=("agent",), purpose="support")
    access = state.services.authorizer.decisions(principal)
    casbin_before = state.services.authorizer.enforce_calls
    for _ in range(1000):
        assert access.row_scope("customer") is RowScope.OWN
        for name, data_class in CUSTOMER_FIELD_CLASSES.items():
            access.field_mode("customer", name, data_class)
    asked = access.enforce_calls
    assert asked == len(access._cache)
    assert state.services.authorizer.enforce_calls - casbin_before == asked
    # A second request of the same principal reuses the process memo: no casbin call.
    again = state.services.authorizer.decisions(principal)
    again.row_scope("customer")
    assert state.services.authorizer.enforce_calls - casbin_before == asked
    assert again.field_mode("customer", "phone", DataClass.SENSITIVE) is FieldMode.CLEAR
    gate = Gate(access, AuditRecorder(principal))
    assert gate.field_mode("customer", "national_id", DataClass.SENSITIVE) is FieldMode.MASKED


async def test_a_subject_named_like_a_role_does_not_get_the_role(api: Api, state: AppState) -> None:
    await make_customer(state)
    impostor = api.token(subject="admin")
    body = await api.gql("{ policies { id } }", token=impostor)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    listed = await api.gql("{ customers(first: 5) { totalCount } }", token=impostor)
    assert listed["data"] is None


async def test_a_user_rule_applies_to_that_user_only(api: Api, state: AppState) -> None:
    await make_customer(state)
    admin = api.token("admin", subject="root")
    add = """
    mutation($action: String!) {
      addPolicy(input: {subject: "user:ann", object: "customer", action: $action}) {
        __typename
      }
    }
    """
    for action in ("read:all",):
        added = await api.gql(add, {"action": action}, token=admin)
        assert added["data"]["addPolicy"]["__typename"] == "PolicyAdded"
    query = "{ customers(first: 5) { totalCount } }"
    ann = await api.gql(query, token=api.token(subject="ann"))
    assert ann["data"]["customers"]["totalCount"] == 1
    bob = await api.gql(query, token=api.token(subject="bob"))
    assert bob["data"] is None
