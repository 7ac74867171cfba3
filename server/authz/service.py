"""Managing access: policy rules, role assignments, API keys, and explaining decisions.

Rules need `policy`/`manage`, API keys `apikey`/`manage`; granting a role (assigning it,
or giving it to a new API key) needs `role:<name>`/`grant`, and nobody grants to
themselves. Every operation validates its input against the vocabulary, records an
audit change and bumps the policy version so every worker reloads. Services never
commit; the request does, with the audit row.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.api_keys import generate_api_key
from server.auth.principal import Principal, PrincipalKind
from server.auth.repository import ApiKeyRepository
from server.authz.authorizer import Authorizer
from server.authz.repository import PolicyRepository, RoleAssignmentRepository, Rule
from server.authz.vocabulary import (
    SCOPED_OBJECTS,
    RuleSpec,
    check_request,
    check_role_name,
    check_rule,
    check_user_subject,
    reserved_by,
)
from server.caller import Caller
from server.clock import Clock
from server.data.models import ApiKey, RoleAssignment
from server.errors import ConflictError, NotFoundError, ValidationError

POLICY = "policy"
APIKEY = "apikey"


@dataclass(frozen=True, slots=True)
class PolicyRuleView:
    id: int
    subject: str
    object: str
    action: str
    effect: str


@dataclass(frozen=True, slots=True)
class RoleView:
    name: str
    rule_count: int
    inherits: list[str]
    assigned_subjects: int


@dataclass(frozen=True, slots=True)
class NewApiKeySecret:
    key: ApiKey
    secret: str


@dataclass(frozen=True, slots=True)
class Explanation:
    allowed: bool
    subject: str
    roles: list[str]
    object: str
    action: str
    deciding_rule: PolicyRuleView | None
    matching_rules: list[PolicyRuleView]
    # On an object customers own: the row scope the action is allowed in (None if it is
    # not), and every scoped action on the object with its scope.
    scope: str | None = None
    scopes: dict[str, str | None] = dataclasses.field(default_factory=dict)


def _rule_view(rule_id: int, rule: Rule) -> PolicyRuleView:
    _, subject, obj, action, effect = (*rule, "allow")[:5]
    return PolicyRuleView(rule_id, subject, obj, action, effect)


def _roles_in(rules: Sequence[tuple[int, Rule]], grouping: Sequence[tuple[int, Rule]]) -> set[str]:
    """Roles are the subjects of rules that are neither API keys nor principals' nodes."""
    roles = {rule[1] for _, rule in rules if ":" not in rule[1]}
    roles |= {rule[2] for _, rule in grouping}
    return roles


async def with_assigned_roles(
    session: AsyncSession, principal: Principal, authorizer: Authorizer
) -> Principal:
    """A person's token roles plus the roles assigned to their subject (as of the policy
    version the authorizer has loaded). Only people hold assignments: an API key's roles
    are the ones it was created with."""
    if principal.kind is not PrincipalKind.USER:
        return principal
    assigned = await authorizer.assigned_roles(session, principal.subject)
    if not assigned:
        return principal
    roles = tuple(dict.fromkeys([*principal.roles, *assigned]))
    return dataclasses.replace(principal, roles=roles)


class AccessAdminService:
    def __init__(self, authorizer: Authorizer, clock: Clock) -> None:
        self.authorizer = authorizer
        self.clock = clock

    async def _changed(self, session: AsyncSession) -> None:
        await PolicyRepository(session).bump_version()
        # This process reloads on its next request; others see the version move.
        self.authorizer.invalidate()

    async def policies(
        self, session: AsyncSession, caller: Caller, subject: str | None = None
    ) -> list[PolicyRuleView]:
        caller.gate.require(POLICY, "manage")
        rules = await PolicyRepository(session).rules_with_ids("p")
        return [_rule_view(i, r) for i, r in rules if subject is None or r[1] == subject]

    async def roles(self, session: AsyncSession, caller: Caller) -> list[RoleView]:
        caller.gate.require(POLICY, "manage")
        repo = PolicyRepository(session)
        rules = await repo.rules_with_ids("p")
        grouping = await repo.rules_with_ids("g")
        assignments = await RoleAssignmentRepository(session).list()
        return [
            RoleView(
                name=name,
                rule_count=sum(1 for _, r in rules if r[1] == name),
                inherits=sorted(r[2] for _, r in grouping if r[1] == name),
                assigned_subjects=sum(1 for a in assignments if a.role == name),
            )
            for name in sorted(_roles_in(rules, grouping))
        ]

    async def role_assignments(
        self, session: AsyncSession, caller: Caller, subject: str | None = None
    ) -> Sequence[RoleAssignment]:
        caller.gate.require(POLICY, "manage")
        return await RoleAssignmentRepository(session).list(subject)

    async def add_policy(
        self,
        session: AsyncSession,
        caller: Caller,
        *,
        subject: str,
        obj: str,
        action: str | None,
        effect: str,
        mode: str | None,
        scope: str | None = None,
    ) -> PolicyRuleView:
        caller.gate.require(POLICY, "manage")
        spec = check_rule(subject, obj, action, effect, mode, scope)
        self._check_widening(caller, spec, adding=True)
        repo = PolicyRepository(session)
        rule = spec.as_rule()
        if await repo.find(rule) is not None:
            raise ConflictError("this rule already exists", code="POLICY_EXISTS")
        await repo.add([rule])
        rule_id = await repo.find(rule)
        assert rule_id is not None
        caller.audit.change(POLICY, "add", None, [", ".join(rule)])
        await self._changed(session)
        return _rule_view(rule_id, rule)

    async def remove_policy(
        self,
        session: AsyncSession,
        caller: Caller,
        *,
        subject: str,
        obj: str,
        action: str | None,
        effect: str,
        mode: str | None,
        scope: str | None = None,
    ) -> PolicyRuleView:
        caller.gate.require(POLICY, "manage")
        spec = check_rule(subject, obj, action, effect, mode, scope)
        self._check_widening(caller, spec, adding=False)
        repo = PolicyRepository(session)
        rule = spec.as_rule()
        rule_id = await repo.find(rule)
        if rule_id is None:
            raise NotFoundError("no such rule", code="POLICY_NOT_FOUND")
        await repo.remove(rule)
        caller.audit.change(POLICY, "remove", None, [", ".join(rule)])
        await self._changed(session)
        return _rule_view(rule_id, rule)

    def _check_widening(self, caller: Caller, spec: RuleSpec, *, adding: bool) -> None:
        """Adding an allow, or removing a deny, widens access: if it covers a capability
        reserved to a role's stewards (export, erasure, the compliance purpose), it takes
        the right to grant that role; a rule for the caller's own subject is a self-grant."""
        if (spec.effect == "allow") != adding:
            return
        stewards = sorted(reserved_by(spec))
        if spec.subject == caller.principal.node:
            caller.gate.require_grant(stewards, to_subject=caller.principal.subject)
        caller.gate.require_grant(stewards)

    async def _known_roles(self, session: AsyncSession) -> set[str]:
        repo = PolicyRepository(session)
        return _roles_in(await repo.rules_with_ids("p"), await repo.rules_with_ids("g"))

    async def _check_roles(self, session: AsyncSession, roles: Sequence[str]) -> list[str]:
        names = [check_role_name(r) for r in roles]
        unknown = sorted(set(names) - await self._known_roles(session))
        if unknown:
            raise ValidationError(f"unknown role: {', '.join(unknown)}", code="UNKNOWN_ROLE")
        return list(dict.fromkeys(names))

    async def assign_role(
        self, session: AsyncSession, caller: Caller, *, subject: str, role: str
    ) -> RoleAssignment:
        """Give a person a role: needs `role:<role>`/`grant`, and never to oneself."""
        role = check_role_name(role)
        subject = check_user_subject(subject)
        caller.gate.require_grant([role], to_subject=subject)
        (role,) = await self._check_roles(session, [role])
        if subject in await self._known_roles(session):
            # A role is not a member of another role through assignments; that is a
            # grouping rule in the policy, reviewed as such.
            raise ValidationError("subject is a role name", code="INVALID_SUBJECT")
        repo = RoleAssignmentRepository(session)
        if await repo.find(subject, role) is not None:
            raise ConflictError("this role is already assigned", code="ASSIGNMENT_EXISTS")
        assignment = RoleAssignment(
            subject=subject,
            role=role,
            assigned_at=self.clock.now(),
            assigned_by=caller.principal.subject,
        )
        await repo.add(assignment)
        caller.audit.change("role_assignment", "assign", assignment.id, [f"g, {subject}, {role}"])
        await self._changed(session)
        return assignment

    async def revoke_role(
        self, session: AsyncSession, caller: Caller, *, subject: str, role: str
    ) -> RoleAssignment:
        """Take a role away: who may grant a role may revoke it."""
        caller.gate.require_grant([check_role_name(role)])
        repo = RoleAssignmentRepository(session)
        assignment = await repo.find(subject.strip(), role.strip())
        if assignment is None:
            raise NotFoundError("no such role assignment", code="ASSIGNMENT_NOT_FOUND")
        await repo.remove(assignment)
        caller.audit.change(
            "role_assignment", "revoke", assignment.id, [f"g, {assignment.subject}, {role}"]
        )
        await self._changed(session)
        return assignment

    async def api_keys(self, session: AsyncSession, caller: Caller) -> Sequence[ApiKey]:
        caller.gate.require(APIKEY, "manage")
        return await ApiKeyRepository(session).list()

    async def create_api_key(
        self,
        session: AsyncSession,
        caller: Caller,
        *,
        name: str,
        roles: Sequence[str],
        team: str | None,
        expires_at: datetime | None,
    ) -> NewApiKeySecret:
        """A new key; its secret is returned here once and stored only as a hash."""
        caller.gate.require(APIKEY, "manage")
        name = name.strip()
        if not name or len(name) > 128:
            raise ValidationError("name must be 1 to 128 characters", field="name")
        if team is not None and not 0 < len(team.strip()) <= 64:
            raise ValidationError("team must be 1 to 64 characters", field="team")
        checked = await self._check_roles(session, roles)
        # A key's roles are granted to it: the caller must hold each grant right, so no
        # one mints a key with powers they may not hand out (an admin, compliance).
        caller.gate.require_grant(checked)
        now = self.clock.now()
        if expires_at is not None and expires_at <= now:
            raise ValidationError("expiresAt must be in the future", field="expires_at")
        generated = generate_api_key()
        key = ApiKey(
            id=uuid.uuid4(),
            prefix=generated.prefix,
            key_hash=generated.key_hash,
            name=name,
            roles=checked,
            team=team,
            created_at=now,
            created_by=caller.principal.subject,
            expires_at=expires_at,
        )
        await ApiKeyRepository(session).add(key)
        granted = [f"g, apikey:{key.id}, {role}" for role in checked]
        caller.audit.change(
            APIKEY, "create", key.id, ["name", "roles", "team", "expires_at", *granted]
        )
        await self._changed(session)
        return NewApiKeySecret(key=key, secret=generated.secret)

    async def revoke_api_key(
        self, session: AsyncSession, caller: Caller, key_id: uuid.UUID
    ) -> ApiKey:
        caller.gate.require(APIKEY, "manage")
        repo = ApiKeyRepository(session)
        key = await repo.get(key_id)
        if key is None:
            raise NotFoundError("API key not found", code="API_KEY_NOT_FOUND")
        if key.revoked_at is None:
            now = self.clock.now()
            await repo.revoke(key_id, now)
            key.revoked_at = now
            caller.audit.change(APIKEY, "revoke", key.id, ["revoked_at"])
            await self._changed(session)
        return key

    async def explain(
        self,
        session: AsyncSession,
        caller: Caller,
        *,
        subject: str,
        roles: Sequence[str],
        obj: str,
        action: str,
    ) -> Explanation:
        """Why `subject` (with these token roles plus its assigned ones) may or may not.

        `subject` is a person's subject (the same rule as a token's `sub`) or an API
        key's typed subject `apikey:<id>` (as `ApiKey.subject` shows it). On an object
        customers own, the answer also gives the row scope of the action and of every
        scoped action on the object."""
        caller.gate.require(POLICY, "manage")
        subject = subject.strip()
        obj, action = check_request(obj, action)
        api_key_id = None
        kind = PrincipalKind.USER
        if subject.startswith("apikey:"):
            try:
                api_key_id = uuid.UUID(subject.removeprefix("apikey:"))
            except ValueError:
                raise ValidationError(
                    "apikey:<id> needs a valid id", code="INVALID_SUBJECT", field="subject"
                ) from None
            subject, kind = f"apikey:{api_key_id}", PrincipalKind.API_KEY
            key = await ApiKeyRepository(session).get(api_key_id)
            if key is not None:
                # A key's roles are stored with it, as authentication would read them.
                roles = [*roles, *key.roles]
        else:
            subject = check_user_subject(subject)
        await self.authorizer.refresh(session)
        principal = await with_assigned_roles(
            session,
            Principal(subject=subject, roles=tuple(roles), api_key_id=api_key_id, kind=kind),
            self.authorizer,
        )
        allowed, deciding, matching = self.authorizer.explain(principal, obj, action)
        ids = dict((r, i) for i, r in await PolicyRepository(session).rules_with_ids("p"))

        def view(rule: list[str]) -> PolicyRuleView:
            full = ("p", *rule)
            return _rule_view(ids.get(full, 0), full)

        scopes: dict[str, str | None] = {}
        if obj in SCOPED_OBJECTS:
            decisions = self.authorizer.decisions(principal)
            scopes = {
                verb: scope.value if scope is not None else None
                for verb, scope in decisions.scopes(obj).items()
            }
        verb, _, asked = action.partition(":")
        return Explanation(
            allowed=allowed,
            subject=subject,
            roles=sorted(principal.role_set),
            object=obj,
            action=action,
            deciding_rule=view(deciding) if deciding else None,
            matching_rules=[view(r) for r in matching],
            scope=(asked or scopes[verb]) if allowed and verb in scopes else None,
            scopes=scopes,
        )
