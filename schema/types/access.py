"""GraphQL types of access management: rules, roles, assignments, API keys, explanations."""

from __future__ import annotations

import datetime

import strawberry

from schema.cost import assumed, cost
from server.authz.service import Explanation, PolicyRuleView, RoleView
from server.data.models import ApiKey as ApiKeyRow
from server.data.models import RoleAssignment as RoleAssignmentRow


@strawberry.type(
    description="One policy rule: subject may (allow) or may not (deny) act on object."
)
class PolicyRule:
    id: int
    subject: str
    object: str
    action: str
    effect: str

    @classmethod
    def of(cls, view: PolicyRuleView) -> PolicyRule:
        return cls(
            id=view.id,
            subject=view.subject,
            object=view.object,
            action=view.action,
            effect=view.effect,
        )


@strawberry.type(description="A role: the subject of rules that principals are grouped into.")
class Role:
    name: str
    rule_count: int
    inherits: list[str]
    assigned_subjects: int

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
    id: strawberry.ID
    subject: str
    role: str
    assigned_at: datetime.datetime
    assigned_by: str

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
    id: strawberry.ID
    subject: str = strawberry.field(description="The policy subject for key-specific rules.")
    prefix: str
    name: str
    roles: list[str]
    team: str | None
    created_at: datetime.datetime
    created_by: str
    expires_at: datetime.datetime | None
    revoked_at: datetime.datetime | None
    last_used_at: datetime.datetime | None

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
    action: str
    scope: str | None = strawberry.field(
        description="all, team or own; null when the action is not allowed in any scope."
    )


@strawberry.type(description="Why a subject may or may not act on an object.")
class AccessExplanation:
    allowed: bool
    decision: str = strawberry.field(description="allow or deny")
    subject: str
    roles: list[str] = strawberry.field(description="Given roles plus assigned roles.")
    object: str
    action: str
    deciding_rule: PolicyRule | None = strawberry.field(
        description="The rule that decided; null when no rule matched (deny by default)."
    )
    matching_rules: list[PolicyRule] = strawberry.field(metadata=cost(size=assumed(20)))
    scope: str | None = strawberry.field(
        description="On records customers own: the row scope (all, team, own) the action "
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
            decision="allow" if view.allowed else "deny",
            subject=view.subject,
            roles=view.roles,
            object=view.object,
            action=view.action,
            deciding_rule=PolicyRule.of(view.deciding_rule) if view.deciding_rule else None,
            matching_rules=[PolicyRule.of(r) for r in view.matching_rules],
            scope=view.scope,
            scopes=[ActionScope(action=a, scope=s) for a, s in view.scopes.items()],
        )


@strawberry.input(description="A rule. Give an action, or for a field read a mode.")
class PolicyInput:
    subject: str
    object: str
    action: str | None = strawberry.field(
        default=None,
        description="read create update delete erase export manage use grant; on records "
        "customers own with a row scope: read:all read:team read:own (update:own, ...; "
        "read:* for denies); read:clear read:masked on fields; or *.",
    )
    effect: str = strawberry.field(default="allow", description="allow or deny")
    mode: str | None = strawberry.field(
        default=None, description="clear, masked or none: shorthand for a field read rule."
    )
    scope: str | None = strawberry.field(
        default=None,
        description="all, team or own (* for denies): shorthand for a scoped action, "
        "action update with scope own is update:own.",
    )


@strawberry.input
class CreateApiKeyInput:
    name: str
    roles: list[str] = strawberry.field(default_factory=list)
    team: str | None = None
    expires_at: datetime.datetime | None = None


@strawberry.type
class PolicyAdded:
    rule: PolicyRule


@strawberry.type
class PolicyRemoved:
    rule: PolicyRule


@strawberry.type
class RoleAssigned:
    assignment: RoleAssignment


@strawberry.type
class RoleRevoked:
    assignment: RoleAssignment


@strawberry.type(description="The new key and its secret, shown this once only.")
class ApiKeyCreated:
    api_key: ApiKey
    secret: str


@strawberry.type
class ApiKeyRevoked:
    api_key: ApiKey
