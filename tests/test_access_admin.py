"""The access admin API: rules, role assignments, API keys, explanations, validation, audit."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select

from server.app import AppState
from server.authz.repository import PolicyRepository
from server.data.models import ApiKey, AuditAccess, AuditEvent, PolicyRule, RoleAssignment
from tests.conftest import Api
from tests.factories import make_customer

ADD = """
mutation($input: PolicyInput!) {
  addPolicy(input: $input) {
    __typename
    ... on PolicyAdded { rule { id subject object action effect } }
    ... on UserError { code message }
  }
}
"""
REMOVE = """
mutation($input: PolicyInput!) {
  removePolicy(input: $input) {
    __typename
    ... on PolicyRemoved { rule { subject object action effect } }
    ... on UserError { code }
  }
}
"""
ASSIGN = """
mutation($subject: String!, $role: String!) {
  assignRole(subject: $subject, role: $role) {
    __typename
    ... on RoleAssigned { assignment { subject role assignedBy } }
    ... on UserError { code }
  }
}
"""
REVOKE = """
mutation($subject: String!, $role: String!) {
  revokeRole(subject: $subject, role: $role) {
    __typename
    ... on UserError { code }
  }
}
"""
CREATE_KEY = """
mutation($input: CreateApiKeyInput!) {
  createApiKey(input: $input) {
    __typename
    ... on ApiKeyCreated { secret apiKey { id subject prefix roles revokedAt } }
    ... on UserError { code }
  }
}
"""
REVOKE_KEY = """
mutation($id: ID!) {
  revokeApiKey(id: $id) {
    __typename
    ... on ApiKeyRevoked { apiKey { revokedAt } }
    ... on UserError { code }
  }
}
"""
EXPLAIN = """
query($subject: String!, $roles: [String!], $object: String!, $action: String!) {
  explainAccess(subject: $subject, roles: $roles, object: $object, action: $action) {
    allowed decision roles
    decidingRule { id subject object action effect }
    matchingRules { subject object action effect }
  }
}
"""
COUNT = "{ customers(first: 10) { totalCount edges { node { id name } } } }"


async def _rule_count(state: AppState) -> int:
    async with state.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(PolicyRule)) or 0)


async def _version(state: AppState) -> int:
    async with state.sessions() as session:
        return await PolicyRepository(session).version()


async def _accesses(state: AppState, object_type: str) -> list[AuditAccess]:
    async with state.sessions() as session:
        rows = await session.scalars(
            select(AuditAccess).where(AuditAccess.object_type == object_type)
        )
        return list(rows.all())


def _rule(subject: str, obj: str, action: str | None = None, **extra: str) -> dict[str, Any]:
    return {"input": {"subject": subject, "object": obj, "action": action, **extra}}


async def test_added_rule_applies_on_the_next_request_and_removal_withdraws_it(
    api: Api, state: AppState
) -> None:
    await make_customer(state)
    admin = api.token("admin", subject="root")
    integrator = api.token("integrator", subject="int-1")
    denied = await api.gql(COUNT, token=integrator)
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    version = await _version(state)

    body = await api.gql(ADD, _rule("integrator", "customer", "read", scope="all"), token=admin)
    assert body["data"]["addPolicy"]["rule"]["action"] == "read:all"
    body = await api.gql(ADD, _rule("integrator", "customer.name", mode="MASKED"), token=admin)
    assert body["data"]["addPolicy"]["rule"]["action"] == "read:masked"
    assert await _version(state) == version + 2

    allowed = await api.gql(COUNT, token=integrator)
    assert allowed["data"]["customers"]["totalCount"] == 1
    assert "*" in allowed["data"]["customers"]["edges"][0]["node"]["name"]

    again = await api.gql(ADD, _rule("integrator", "customer", "read:all"), token=admin)
    assert again["data"]["addPolicy"] == {
        "__typename": "UserError",
        "code": "POLICY_EXISTS",
        "message": "this rule already exists",
    }
    removed = await api.gql(REMOVE, _rule("integrator", "customer", "read:all"), token=admin)
    assert removed["data"]["removePolicy"]["__typename"] == "PolicyRemoved"
    assert (await api.gql(COUNT, token=integrator))["data"] is None
    missing = await api.gql(REMOVE, _rule("integrator", "customer", "read:all"), token=admin)
    assert missing["data"]["removePolicy"]["code"] == "POLICY_NOT_FOUND"

    audited = await _accesses(state, "policy")
    assert [(a.action, a.changed_fields) for a in audited] == [
        ("add", ["p, integrator, customer, read:all, allow"]),
        ("add", ["p, integrator, customer.name, read:masked, allow"]),
        ("remove", ["p, integrator, customer, read:all, allow"]),
    ]


async def test_invalid_rules_are_refused_with_a_code_and_change_nothing(
    api: Api, state: AppState
) -> None:
    admin = api.token("admin", subject="root")
    before, version = await _rule_count(state), await _version(state)
    cases = [
        (_rule("agent", "customer_typo", "read"), "UNKNOWN_OBJECT"),
        (_rule("agent", "customer.shoe_size", "read:clear"), "UNKNOWN_OBJECT"),
        (_rule("agent", "purpose:curiosity", "use"), "UNKNOWN_OBJECT"),
        (_rule("agent", "customer", "peek"), "UNKNOWN_ACTION"),
        (_rule("agent", "customer", "read:clear"), "UNKNOWN_ACTION"),
        (_rule("agent", "customer.phone", "scope:all"), "UNKNOWN_ACTION"),
        (_rule("agent", "customer", "update"), "SCOPE_REQUIRED"),
        (_rule("agent", "customer", "update:*"), "SCOPE_REQUIRED"),
        (_rule("agent", "customer", "update", scope="everyone"), "UNKNOWN_SCOPE"),
        (_rule("agent", "product", "read", scope="own"), "UNKNOWN_SCOPE"),
        (_rule("agent", "customer", "scope:all"), "UNKNOWN_ACTION"),
        (_rule("agent", "role:no such", "grant"), "UNKNOWN_OBJECT"),
        (_rule("agent", "role:admin", "read"), "UNKNOWN_ACTION"),
        (_rule("user:a:b", "customer", "read:all"), "INVALID_SUBJECT"),
        (_rule("agent", "customer", mode="CLEAR"), "UNKNOWN_MODE"),
        (_rule("a b", "customer", "read"), "INVALID_SUBJECT"),
        (_rule("apikey:nope", "customer", "read"), "INVALID_SUBJECT"),
    ]
    for variables, code in cases:
        body = await api.gql(ADD, variables, token=admin)
        assert body["data"]["addPolicy"]["__typename"] == "UserError", variables
        assert body["data"]["addPolicy"]["code"] == code, variables
    # An effect or a mode outside its enum never reaches the service.
    for variables in (
        _rule("agent", "customer", "read", effect="maybe"),
        _rule("agent", "customer.phone", mode="blurred"),
    ):
        refused = await api.post(ADD, variables, token=admin)
        assert refused.status_code == 400
        assert refused.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert await _rule_count(state) == before
    assert await _version(state) == version
    assert await _accesses(state, "policy") == []


async def test_admin_api_needs_policy_manage_and_a_denied_change_changes_nothing(
    api: Api, state: AppState
) -> None:
    before, version = await _rule_count(state), await _version(state)
    for role in ("manager", "agent", "support", "analyst", "compliance", "integrator"):
        token = api.token(role, subject=f"user-{role}", team="east")
        for query, variables in (
            (ADD, _rule(role, "policy", "manage")),
            (ASSIGN, {"subject": f"user-{role}", "role": "admin"}),
            (CREATE_KEY, {"input": {"name": "mine", "roles": ["admin"]}}),
            ("{ policies { id } }", None),
            ("{ roleAssignments { id } }", None),
            (EXPLAIN, {"subject": "x", "object": "customer", "action": "read"}),
        ):
            body = await api.gql(query, variables, token=token)
            assert body["data"] is None, (role, query)
            assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await _rule_count(state) == before
    assert await _version(state) == version
    async with state.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(RoleAssignment)) == 0
        assert await session.scalar(select(func.count()).select_from(ApiKey)) == 0
        denied = await session.scalars(select(AuditEvent.outcome).where(AuditEvent.subject != ""))
        assert set(denied.all()) == {"denied"}
    assert {a.action for a in await _accesses(state, "policy")} == {"manage"}


async def test_assigned_role_joins_token_roles_until_revoked(api: Api, state: AppState) -> None:
    await make_customer(state, owner_id="carol")
    await make_customer(state, owner_id="dave")
    admin = api.token("admin", subject="root")
    carol = api.token(subject="carol")
    assert (await api.gql(COUNT, token=carol))["data"] is None

    body = await api.gql(ASSIGN, {"subject": "carol", "role": "agent"}, token=admin)
    assert body["data"]["assignRole"]["assignment"] == {
        "subject": "carol",
        "role": "agent",
        "assignedBy": "root",
    }
    seen = await api.gql(COUNT, token=carol)
    assert seen["data"]["customers"]["totalCount"] == 1
    me = await api.gql("{ me { roles } }", token=carol)
    assert me["data"]["me"]["roles"] == ["agent"]
    listed = await api.gql("{ roleAssignments { subject role } }", token=admin)
    assert listed["data"]["roleAssignments"] == [{"subject": "carol", "role": "agent"}]

    for variables, code in (
        ({"subject": "carol", "role": "agent"}, "ASSIGNMENT_EXISTS"),
        ({"subject": "carol", "role": "overlord"}, "UNKNOWN_ROLE"),
        ({"subject": "manager", "role": "admin"}, "INVALID_SUBJECT"),
    ):
        refused = await api.gql(ASSIGN, variables, token=admin)
        assert refused["data"]["assignRole"]["code"] == code

    revoked = await api.gql(REVOKE, {"subject": "carol", "role": "agent"}, token=admin)
    assert revoked["data"]["revokeRole"]["__typename"] == "RoleRevoked"
    assert (await api.gql(COUNT, token=carol))["data"] is None
    again = await api.gql(REVOKE, {"subject": "carol", "role": "agent"}, token=admin)
    assert again["data"]["revokeRole"]["code"] == "ASSIGNMENT_NOT_FOUND"
    assert [a.action for a in await _accesses(state, "role_assignment")] == ["assign", "revoke"]


async def test_roles_and_policies_list_the_default_policy(api: Api) -> None:
    admin = api.token("admin", subject="root")
    roles = (await api.gql("{ roles { name ruleCount } }", token=admin))["data"]["roles"]
    names = {r["name"] for r in roles}
    assert names == {
        "admin",
        "manager",
        "agent",
        "support",
        "analyst",
        "compliance",
        "integrator",
        "cli_operator",
    }
    assert all(r["ruleCount"] > 0 for r in roles)
    query = '{ policies(subject: "analyst") { object action effect } }'
    policies = (await api.gql(query, token=admin))["data"]["policies"]
    assert {"object": "customer.*", "action": "read:*", "effect": "DENY"} in policies
    assert {"object": "purpose:analytics", "action": "use", "effect": "ALLOW"} in policies


async def test_explain_access_names_the_deciding_and_matching_rules(api: Api) -> None:
    admin = api.token("admin", subject="root")
    denied = await api.gql(
        EXPLAIN,
        {
            "subject": "ann",
            "roles": ["analyst"],
            "object": "customer.phone",
            "action": "read:clear",
        },
        token=admin,
    )
    answer = denied["data"]["explainAccess"]
    assert answer["allowed"] is False
    assert answer["decision"] == "DENY"
    deny_rule = {"subject": "analyst", "object": "customer.*", "action": "read:*", "effect": "DENY"}
    assert {k: answer["decidingRule"][k] for k in deny_rule} == deny_rule
    assert answer["decidingRule"]["id"] > 0
    assert answer["matchingRules"] == [deny_rule]

    allowed = await api.gql(
        EXPLAIN,
        {"subject": "bob", "roles": ["agent"], "object": "customer", "action": "read:own"},
        token=admin,
    )
    assert allowed["data"]["explainAccess"]["allowed"] is True
    assert allowed["data"]["explainAccess"]["decidingRule"]["subject"] == "agent"

    nothing = await api.gql(
        EXPLAIN, {"subject": "nobody", "object": "customer", "action": "read"}, token=admin
    )
    assert nothing["data"]["explainAccess"]["decidingRule"] is None
    assert nothing["data"]["explainAccess"]["matchingRules"] == []


async def test_api_key_lifecycle_scoped_by_its_own_rules(api: Api, state: AppState) -> None:
    await make_customer(state, phone="13812345678")
    admin = api.token("admin", subject="root")
    created = await api.gql(
        CREATE_KEY, {"input": {"name": "shop sync", "roles": ["integrator"]}}, token=admin
    )
    result = created["data"]["createApiKey"]
    secret, key = result["secret"], result["apiKey"]
    assert secret.startswith("ck_" + key["prefix"])
    other = await api.gql(
        CREATE_KEY, {"input": {"name": "other", "roles": ["integrator"]}}, token=admin
    )
    other_secret = other["data"]["createApiKey"]["secret"]

    listed = await api.gql("{ apiKeys { id name } }", token=admin)
    assert secret not in str(listed)
    async with state.sessions() as session:
        stored = await session.scalar(
            select(ApiKey.key_hash).where(ApiKey.id == uuid.UUID(key["id"]))
        )
    assert stored is not None
    assert secret not in stored

    assert (await api.gql(COUNT, token=secret))["data"] is None
    why = {"subject": key["subject"], "object": "product", "action": "read"}
    explained = (await api.gql(EXPLAIN, why, token=admin))["data"]["explainAccess"]
    assert explained["roles"] == ["integrator"]
    assert explained["decidingRule"]["subject"] == "integrator"
    for rule in (
        _rule(key["subject"], "customer", "read:all"),
        _rule(key["subject"], "customer.name", mode="MASKED"),
    ):
        added = await api.gql(ADD, rule, token=admin)
        assert added["data"]["addPolicy"]["__typename"] == "PolicyAdded"
    granted = await api.gql(COUNT, token=secret)
    assert granted["data"]["customers"]["totalCount"] == 1
    phone = await api.gql("{ customers(first: 1) { nodes { phone } } }", token=secret)
    assert phone["data"]["customers"]["nodes"] == [{"phone": None}]
    assert phone["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # The grant is the key's own: another key with the same role still sees nothing.
    assert (await api.gql(COUNT, token=other_secret))["data"] is None

    revoked = await api.gql(REVOKE_KEY, {"id": key["id"]}, token=admin)
    assert revoked["data"]["revokeApiKey"]["apiKey"]["revokedAt"] is not None
    response = await api.post(COUNT, token=secret)
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "API_KEY_INVALID"

    unknown = await api.gql(
        CREATE_KEY, {"input": {"name": "bad", "roles": ["overlord"]}}, token=admin
    )
    assert unknown["data"]["createApiKey"]["code"] == "UNKNOWN_ROLE"
    missing = await api.gql(REVOKE_KEY, {"id": "00000000-0000-0000-0000-000000000000"}, token=admin)
    assert missing["data"]["revokeApiKey"]["code"] == "API_KEY_NOT_FOUND"
    assert [a.action for a in await _accesses(state, "apikey")] == ["create", "create", "revoke"]


async def test_several_root_fields_share_the_request_session(api: Api, state: AppState) -> None:
    await make_customer(state)
    admin = api.token("admin", subject="root")
    query = "{ roles { name } policies { id } roleAssignments { id } customers { totalCount } }"
    body = await api.gql(query, token=admin)
    assert "errors" not in body
    assert body["data"]["customers"]["totalCount"] == 1
    assert len(body["data"]["roles"]) == 8  # the seven default roles and cli_operator


async def test_bad_api_key_input_is_refused_and_creates_nothing(api: Api, state: AppState) -> None:
    admin = api.token("admin", subject="root")
    for variables in (
        {"name": "  ", "roles": ["integrator"]},
        {"name": "x" * 129, "roles": ["integrator"]},
        {"name": "k", "roles": ["integrator"], "team": "t" * 65},
        {"name": "k", "roles": ["integrator"], "expiresAt": "2000-01-01T00:00:00+00:00"},
        {"name": "k", "roles": ["no such role"]},
    ):
        body = await api.gql(CREATE_KEY, {"input": variables}, token=admin)
        result = body["data"]["createApiKey"]
        assert result["__typename"] == "UserError", variables
        assert result["code"] in {"BAD_USER_INPUT", "INVALID_ROLE", "UNKNOWN_ROLE"}
    async with state.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(ApiKey)) == 0


EXPLAIN_SCOPES = """
query($subject: String!, $roles: [String!], $object: String!, $action: String!) {
  explainAccess(subject: $subject, roles: $roles, object: $object, action: $action) {
    allowed scope scopes { action scope } decidingRule { subject object action }
  }
}
"""


async def test_explain_access_gives_the_row_scope_of_each_action(api: Api) -> None:
    admin = api.token("admin", subject="root")
    asked = {"subject": "ann", "roles": ["agent", "analyst"], "object": "customer"}
    update = await api.gql(EXPLAIN_SCOPES, {**asked, "action": "update"}, token=admin)
    answer = update["data"]["explainAccess"]
    assert (answer["allowed"], answer["scope"]) == (True, "OWN")
    assert answer["decidingRule"] == {
        "subject": "agent",
        "object": "customer",
        "action": "update:own",
    }
    assert {s["action"]: s["scope"] for s in answer["scopes"]} == {
        "read": "ALL",
        "create": "OWN",
        "update": "OWN",
        "delete": None,
        "erase": None,
        "export": None,
    }
    erase = await api.gql(EXPLAIN_SCOPES, {**asked, "action": "erase"}, token=admin)
    assert (erase["data"]["explainAccess"]["allowed"], erase["data"]["explainAccess"]["scope"]) == (
        False,
        None,
    )
    product = await api.gql(
        EXPLAIN_SCOPES, {**asked, "action": "read", "object": "product"}, token=admin
    )
    assert product["data"]["explainAccess"]["scopes"] == []
    for subject in ("user:ann", "cli:root", "principal:x", "a b", ""):
        refused = await api.gql(
            EXPLAIN_SCOPES, {**asked, "subject": subject, "action": "read"}, token=admin
        )
        assert refused["errors"][0]["extensions"]["code"] == "INVALID_SUBJECT", subject


async def test_compliance_officers_grant_compliance_to_colleagues_only(
    api: Api, state: AppState
) -> None:
    officer = api.token("compliance", subject="dpo")
    given = await api.gql(ASSIGN, {"subject": "ann", "role": "compliance"}, token=officer)
    assert given["data"]["assignRole"]["assignment"]["assignedBy"] == "dpo"
    for subject, role in (("dpo", "compliance"), ("ann", "agent")):
        refused = await api.gql(ASSIGN, {"subject": subject, "role": role}, token=officer)
        assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN", (subject, role)
    admin = api.token("admin", subject="root")
    kept = await api.gql(REVOKE, {"subject": "ann", "role": "compliance"}, token=admin)
    assert kept["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # Nor may an admin hand out the right to grant it, by any rule that covers it.
    for obj in ("role:compliance", "role:*"):
        rule = _rule("user:puppet", obj, "grant")
        assert (await api.gql(ADD, rule, token=admin))["errors"][0]["extensions"]["code"] == (
            "FORBIDDEN"
        )
    taken = await api.gql(REVOKE, {"subject": "ann", "role": "compliance"}, token=officer)
    assert taken["data"]["revokeRole"]["__typename"] == "RoleRevoked"
    async with state.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(RoleAssignment)) == 0
