"""Attack 7 (weaker finding): an admin minted a compliance key and exported everything in
two calls, and the `createApiKey` event did not name the roles granted.

Granting a role is a policy decision now (`role:<name>`/`grant`); admins hold it for every
role but compliance, and nobody grants to themselves.
"""

from __future__ import annotations

from sqlalchemy import func, select

from server.app import AppState
from server.data.models import ApiKey, AuditAccess, PolicyRule, RoleAssignment
from tests.conftest import Api

CREATE_KEY = """
mutation($roles: [String!]!) {
  createApiKey(input: {name: "dpo export", roles: $roles}) {
    __typename ... on ApiKeyCreated { secret apiKey { id } } ... on UserError { code }
  }
}
"""
ASSIGN = """
mutation($subject: String!, $role: String!) {
  assignRole(subject: $subject, role: $role) { __typename ... on UserError { code } }
}
"""
ADD = """
mutation($subject: String!, $object: String!, $action: String!) {
  addPolicy(input: {subject: $subject, object: $object, action: $action}) {
    __typename ... on UserError { code }
  }
}
"""


def _refused(body: dict[str, object]) -> bool:
    errors = body.get("errors")
    return isinstance(errors, list) and errors[0]["extensions"]["code"] == "FORBIDDEN"


async def test_an_admin_grants_no_compliance_and_nothing_to_itself(
    api: Api, state: AppState
) -> None:
    admin = api.token("admin", subject="root")
    before = await _count(state, PolicyRule)
    for roles in (["compliance"], ["integrator", "compliance"]):
        assert _refused(await api.gql(CREATE_KEY, {"roles": roles}, token=admin)), roles
    for subject, role in (("mallory", "compliance"), ("root", "manager")):
        assigned = await api.gql(ASSIGN, {"subject": subject, "role": role}, token=admin)
        assert _refused(assigned), (subject, role)
    for subject, obj, action in (
        ("integrator", "purpose:compliance", "use"),
        ("user:root", "audit", "read"),
    ):
        variables = {"subject": subject, "object": obj, "action": action}
        assert _refused(await api.gql(ADD, variables, token=admin)), variables
    assert await _count(state, ApiKey) == 0
    assert await _count(state, RoleAssignment) == 0
    assert await _count(state, PolicyRule) == before


async def test_an_api_keys_event_names_the_roles_it_was_granted(api: Api, state: AppState) -> None:
    admin = api.token("admin", subject="root")
    created = await api.gql(CREATE_KEY, {"roles": ["integrator", "analyst"]}, token=admin)
    key_id = created["data"]["createApiKey"]["apiKey"]["id"]
    async with state.sessions() as session:
        access = (
            await session.scalars(
                select(AuditAccess).where(
                    AuditAccess.object_type == "apikey", AuditAccess.action == "create"
                )
            )
        ).one()
    assert f"g, apikey:{key_id}, integrator" in access.changed_fields
    assert f"g, apikey:{key_id}, analyst" in access.changed_fields
    # Assigning a role someone else may hold is an admin's to give.
    assigned = await api.gql(ASSIGN, {"subject": "ann", "role": "agent"}, token=admin)
    assert assigned["data"]["assignRole"]["__typename"] == "RoleAssigned"


async def _count(state: AppState, model: type[object]) -> int:
    async with state.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)
