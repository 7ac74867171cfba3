"""Access management root fields: policies, roles, role assignments, API keys, explain.

Resolvers translate arguments and call `AccessAdminService`; the service authorizes,
validates, audits and bumps the policy version.
"""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from schema.context import GraphQLContext
from schema.cost import assumed, cost
from schema.mutations import run_mutation
from schema.types.access import (
    AccessExplanation,
    ApiKey,
    ApiKeyCreated,
    ApiKeyRevoked,
    CreateApiKeyInput,
    PolicyAdded,
    PolicyInput,
    PolicyRemoved,
    PolicyRule,
    Role,
    RoleAssigned,
    RoleAssignment,
    RoleRevoked,
)
from schema.types.common import UserError, parse_id
from schema.types.enums import domain_value

Ctx = Info[GraphQLContext, None]


@strawberry.type
class AccessQuery:
    @strawberry.field(
        metadata=cost(size=assumed(200)),
        description="Policy rules, optionally of one subject. Needs policy/manage.",
    )
    async def policies(self, info: Ctx, subject: str | None = None) -> list[PolicyRule]:
        ctx = info.context
        rules = await ctx.services.access.policies(ctx.session, ctx.caller, subject)
        return [PolicyRule.of(r) for r in rules]

    @strawberry.field(
        metadata=cost(size=assumed(20)),
        description="Roles named by the policy. Needs policy/manage.",
    )
    async def roles(self, info: Ctx) -> list[Role]:
        ctx = info.context
        return [Role.of(r) for r in await ctx.services.access.roles(ctx.session, ctx.caller)]

    @strawberry.field(
        metadata=cost(size=assumed(100)),
        description="Roles assigned to subjects. Needs policy/manage.",
    )
    async def role_assignments(self, info: Ctx, subject: str | None = None) -> list[RoleAssignment]:
        ctx = info.context
        rows = await ctx.services.access.role_assignments(ctx.session, ctx.caller, subject)
        return [RoleAssignment.of(r) for r in rows]

    @strawberry.field(
        metadata=cost(size=assumed(50)),
        description="Integrator API keys (never their secrets). Needs apikey/manage.",
    )
    async def api_keys(self, info: Ctx) -> list[ApiKey]:
        ctx = info.context
        return [ApiKey.of(k) for k in await ctx.services.access.api_keys(ctx.session, ctx.caller)]

    @strawberry.field(description="Would this subject be allowed? Names the rules that decide.")
    async def explain_access(
        self,
        info: Ctx,
        subject: str,
        object: str,
        action: str,
        roles: list[str] | None = None,
    ) -> AccessExplanation:
        ctx = info.context
        view = await ctx.services.access.explain(
            ctx.session, ctx.caller, subject=subject, roles=roles or [], obj=object, action=action
        )
        return AccessExplanation.of(view)


AddPolicyResult = Annotated[PolicyAdded | UserError, strawberry.union("AddPolicyResult")]
RemovePolicyResult = Annotated[PolicyRemoved | UserError, strawberry.union("RemovePolicyResult")]
AssignRoleResult = Annotated[RoleAssigned | UserError, strawberry.union("AssignRoleResult")]
RevokeRoleResult = Annotated[RoleRevoked | UserError, strawberry.union("RevokeRoleResult")]
CreateApiKeyResult = Annotated[ApiKeyCreated | UserError, strawberry.union("CreateApiKeyResult")]
RevokeApiKeyResult = Annotated[ApiKeyRevoked | UserError, strawberry.union("RevokeApiKeyResult")]


@strawberry.type
class AccessMutation:
    @strawberry.mutation(description="Add a rule; every worker applies it within a second.")
    async def add_policy(self, info: Ctx, input: PolicyInput) -> AddPolicyResult:
        ctx = info.context
        rule = await run_mutation(
            ctx,
            lambda: ctx.services.access.add_policy(
                ctx.session,
                ctx.caller,
                subject=input.subject,
                obj=input.object,
                action=input.action,
                effect=input.effect.value,
                mode=domain_value(input.mode),
                scope=input.scope,
            ),
        )
        if isinstance(rule, UserError):
            return rule
        return PolicyAdded(rule=PolicyRule.of(rule))

    @strawberry.mutation(description="Remove a rule, given exactly as it was added.")
    async def remove_policy(self, info: Ctx, input: PolicyInput) -> RemovePolicyResult:
        ctx = info.context
        rule = await run_mutation(
            ctx,
            lambda: ctx.services.access.remove_policy(
                ctx.session,
                ctx.caller,
                subject=input.subject,
                obj=input.object,
                action=input.action,
                effect=input.effect.value,
                mode=domain_value(input.mode),
                scope=input.scope,
            ),
        )
        if isinstance(rule, UserError):
            return rule
        return PolicyRemoved(rule=PolicyRule.of(rule))

    @strawberry.mutation(description="Give a subject a role on top of its token's roles.")
    async def assign_role(self, info: Ctx, subject: str, role: str) -> AssignRoleResult:
        ctx = info.context
        row = await run_mutation(
            ctx,
            lambda: ctx.services.access.assign_role(
                ctx.session, ctx.caller, subject=subject, role=role
            ),
        )
        if isinstance(row, UserError):
            return row
        return RoleAssigned(assignment=RoleAssignment.of(row))

    @strawberry.mutation(description="Take an assigned role away from a subject.")
    async def revoke_role(self, info: Ctx, subject: str, role: str) -> RevokeRoleResult:
        ctx = info.context
        row = await run_mutation(
            ctx,
            lambda: ctx.services.access.revoke_role(
                ctx.session, ctx.caller, subject=subject, role=role
            ),
        )
        if isinstance(row, UserError):
            return row
        return RoleRevoked(assignment=RoleAssignment.of(row))

    @strawberry.mutation(description="Create an API key; the secret is returned this once only.")
    async def create_api_key(self, info: Ctx, input: CreateApiKeyInput) -> CreateApiKeyResult:
        ctx = info.context
        created = await run_mutation(
            ctx,
            lambda: ctx.services.access.create_api_key(
                ctx.session,
                ctx.caller,
                name=input.name,
                roles=input.roles,
                team=input.team,
                expires_at=input.expires_at,
            ),
        )
        if isinstance(created, UserError):
            return created
        return ApiKeyCreated(api_key=ApiKey.of(created.key), secret=created.secret)

    @strawberry.mutation(description="Revoke an API key; it is rejected from the next request.")
    async def revoke_api_key(self, info: Ctx, id: strawberry.ID) -> RevokeApiKeyResult:
        ctx = info.context
        key = await run_mutation(
            ctx,
            lambda: ctx.services.access.revoke_api_key(ctx.session, ctx.caller, parse_id(id)),
        )
        if isinstance(key, UserError):
            return key
        return ApiKeyRevoked(api_key=ApiKey.of(key))
