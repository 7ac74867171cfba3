"""GraphQL types of access management: rules, roles, assignments, API keys, explanations."""

from __future__ import annotations

import datetime

import strawberry

from schema.cost import assumed, cost
from schema.types.enums import FieldMode, PolicyEffect, RowScope, enum_of
from server.authz.service import Explanation, PolicyRuleView, RoleView
from server.data.models import ApiKey as ApiKeyRow
from server.data.models import RoleAssignment as RoleAssignmentRow


@strawberry.type(
    description="One policy rule: subject may (allow) or may not (deny) act on object."
)
class PolicyRule:
    id: int = strawberry.field(description="The rule's number, stable while it exists.")
    subject: str = strawberry.field(description="A role, a user or an API key's subject.")
    object: str = strawberry.field(description="A type, a type.field, or a purpose:name.")
    action: str = strawberry.field(description="An action, with its row scope or mode.")
    effect: PolicyEffect = strawberry.field(description="Allow or deny.")

    @classmethod
    def of(cls, view: PolicyRuleView) -> PolicyRule:
        return cls(
            id=view.id,
            subject=view.subject,
            object=view.object,
            action=view.action,
            effect=PolicyEffect(view.effect),
        )


@strawberry.type(description="A role: the subject of rules that principals are grouped into.")
class Role:
    name: str = strawberry.field(description="The role's name (the subject of its rules).")
    rule_count: int = strawberry.field(description="Rules naming it.")
    inherits: list[str] = strawberry.field(description="Roles whose rules it also has.")
    assigned_subjects: int = strawberry.field(
        description="Subjects assigned it on top of their tokens."
    )

    @classmethod
    def of(cls, view: RoleView) -> Role:
        return cls(
            name=view.name,
            rule_count=view.rule_count,
            inherits=view.inherits,
            assigned_subjects=view.assigned_subjects,
        )


@strawberry.type(description="A role held by a subject in addition to its token's roles.")
class RoleAssignment:
    id: strawberry.ID = strawberry.field(description="The assignment's id.")
    subject: str = strawberry.field(description="Who holds the role.")
    role: str = strawberry.field(description="The role held.")
    assigned_at: datetime.datetime = strawberry.field(description="When it was assigned.")
    assigned_by: str = strawberry.field(description="Who assigned it.")

    @classmethod
    def of(cls, row: RoleAssignmentRow) -> RoleAssignment:
        return cls(
            id=strawberry.ID(str(row.id)),
            subject=row.subject,
            role=row.role,
            assigned_at=row.assigned_at,
            assigned_by=row.assigned_by,
        )


@strawberry.type(description="An integrator API key; the secret itself is never shown again.")
class ApiKey:
    id: strawberry.ID = strawberry.field(
        description="The key's id; its policy subject is apikey:<id>."
    )
    subject: str = strawberry.field(description="The policy subject for key-specific rules.")
    prefix: str = strawberry.field(description="The secret's first characters, to recognise a key.")
    name: str = strawberry.field(description="A label given at creation.")
    roles: list[str] = strawberry.field(description="The roles the key acts with.")
    team: str | None = strawberry.field(description="The team the key acts for (row scope team).")
    created_at: datetime.datetime = strawberry.field(description="When the key was created.")
    created_by: str = strawberry.field(description="Who created it.")
    expires_at: datetime.datetime | None = strawberry.field(
        description="When it stops working; null for never."
    )
    revoked_at: datetime.datetime | None = strawberry.field(
        description="When it was revoked; null while valid."
    )
    last_used_at: datetime.datetime | None = strawberry.field(
        description="When it last authenticated a request."
    )

    @classmethod
    def of(cls, row: ApiKeyRow) -> ApiKey:
        return cls(
            id=strawberry.ID(str(row.id)),
            subject=f"apikey:{row.id}",
            prefix=row.prefix,
            name=row.name,
            roles=list(row.roles),
            team=row.team,
            created_at=row.created_at,
            created_by=row.created_by,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
            last_used_at=row.last_used_at,
        )


@strawberry.type(description="One action on records customers own, and the row scope it covers.")
class ActionScope:
    action: str = strawberry.field(description="The action (read, update, ...).")
    scope: RowScope | None = strawberry.field(
        description="Null when the action is not allowed in any scope."
    )


@strawberry.type(description="Why a subject may or may not act on an object.")
class AccessExplanation:
    allowed: bool = strawberry.field(description="Whether the subject may act on the object.")
    decision: PolicyEffect = strawberry.field(description="Allow or deny: as `allowed`.")
    subject: str = strawberry.field(description="The subject asked about.")
    roles: list[str] = strawberry.field(description="Given roles plus assigned roles.")
    object: str = strawberry.field(description="The object asked about.")
    action: str = strawberry.field(description="The action asked about.")
    deciding_rule: PolicyRule | None = strawberry.field(
        description="The rule that decided; null when no rule matched (deny by default)."
    )
    matching_rules: list[PolicyRule] = strawberry.field(
        metadata=cost(size=assumed(20)),
        description="Every rule that matches the request, deciding or not.",
    )
    scope: RowScope | None = strawberry.field(
        description="On records customers own: the row scope the action "
        "is allowed in; null when it is not allowed or the object has no row scope."
    )
    scopes: list[ActionScope] = strawberry.field(
        metadata=cost(size=assumed(10)),
        description="On records customers own: every scoped action with its row scope.",
    )

    @classmethod
    def of(cls, view: Explanation) -> AccessExplanation:
        return cls(
            allowed=view.allowed,
            decision=PolicyEffect.ALLOW if view.allowed else PolicyEffect.DENY,
            subject=view.subject,
            roles=view.roles,
            object=view.object,
            action=view.action,
            deciding_rule=PolicyRule.of(view.deciding_rule) if view.deciding_rule else None,
            matching_rules=[PolicyRule.of(r) for r in view.matching_rules],
            scope=enum_of(RowScope, view.scope),
            scopes=[
                ActionScope(action=a, scope=enum_of(RowScope, s)) for a, s in view.scopes.items()
            ],
        )


@strawberry.input(description="A rule. Give an action, or for a field read a mode.")
class PolicyInput:
    subject: str = strawberry.field(description="A role, user:<name> or apikey:<id>.")
    object: str = strawberry.field(
        description="A type (customer), a field (customer.phone), or purpose:<name>."
    )
    action: str | None = strawberry.field(
        default=None,
        description="read create update delete erase export manage use grant; on records "
        "customers own with a row scope: read:all read:team read:own (update:own, ...; "
        "read:* for denies); read:clear read:masked on fields; or *.",
    )
    effect: PolicyEffect = strawberry.field(
        default=PolicyEffect.ALLOW, description="Allow or deny."
    )
    mode: FieldMode | None = strawberry.field(
        default=None, description="Shorthand for a field read rule."
    )
    scope: str | None = strawberry.field(
        default=None,
        description="all, team or own (* for denies): shorthand for a scoped action, "
        "action update with scope own is update:own.",
    )


@strawberry.input(description="A new integrator API key.")
class CreateApiKeyInput:
    name: str = strawberry.field(description="A label for people.")
    roles: list[str] = strawberry.field(
        default_factory=list,
        description="The roles it acts with (granting each needs role:<name>/grant).",
    )
    team: str | None = strawberry.field(default=None, description="The team it acts for.")
    expires_at: datetime.datetime | None = strawberry.field(
        default=None, description="When it stops working; null for never."
    )


@strawberry.type(description="A rule was added.")
class PolicyAdded:
    rule: PolicyRule = strawberry.field(description="The rule as stored.")


@strawberry.type(description="A rule was removed.")
class PolicyRemoved:
    rule: PolicyRule = strawberry.field(description="The rule as it was.")


@strawberry.type(description="A role was assigned.")
class RoleAssigned:
    assignment: RoleAssignment = strawberry.field(description="The new assignment.")


@strawberry.type(description="A role assignment was revoked.")
class RoleRevoked:
    assignment: RoleAssignment = strawberry.field(description="The assignment as it was.")


@strawberry.type(description="The new key and its secret, shown this once only.")
class ApiKeyCreated:
    api_key: ApiKey = strawberry.field(description="The new key.")
    secret: str = strawberry.field(
        description="The secret: send it as the bearer token; never shown again."
    )


@strawberry.type(description="A key was revoked: it authenticates nothing from now on.")
class ApiKeyRevoked:
    api_key: ApiKey = strawberry.field(description="The key as revoked.")
