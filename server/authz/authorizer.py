"""Policy decisions below GraphQL.

`Authorizer` owns the casbin enforcer for the process and reloads it when the policy
version in the database moves. `AccessDecisions` answers for one request's principal;
every (object, action) is enforced once and memoised, so a 1,000-row list costs the same
handful of casbin calls as a single row. Domain services never ask it directly: they ask
the request's `Gate` (`server/authz/gate.py`), which audits every refusal.
"""

from __future__ import annotations

import enum
import time
from pathlib import Path

import casbin
from casbin.util import key_match
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import Principal
from server.authz.repository import PolicyRepository, Rule
from server.data.base import DataClass

POLICY_DIR = Path(__file__).resolve().parents[2] / "policies"
MODEL_PATH = POLICY_DIR / "model.conf"
DEFAULT_POLICY_PATH = POLICY_DIR / "policy.csv"
# Another worker's policy change shows here within this many seconds.
VERSION_POLL_SECONDS = 0.25


class FieldMode(enum.StrEnum):
    CLEAR = "clear"
    MASKED = "masked"
    NONE = "none"


class RowScope(enum.StrEnum):
    ALL = "all"
    TEAM = "team"
    OWN = "own"


def read_policy_file(path: Path = DEFAULT_POLICY_PATH) -> list[Rule]:
    rules: list[Rule] = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            rules.append(tuple(part.strip() for part in line.split(",")))
    return rules


def subject_node(principal: Principal) -> str:
    """The policy subject for rules about this one caller: `apikey:<id>` or `user:<sub>`.

    Prefixed so that a token whose subject happens to equal a role name (`sub: admin`)
    never inherits that role's rules.
    """
    if principal.api_key_id is not None:
        return f"apikey:{principal.api_key_id}"
    return f"user:{principal.subject}"


class Authorizer:
    """Process-wide: the enforcer, its policy version and a decision memo."""

    def __init__(self) -> None:
        self.enforcer = casbin.Enforcer(str(MODEL_PATH))
        self.version = -1
        self._checked_at = 0.0
        # A version this process changed the policy to and must load before throttling.
        self._must_reach = 0
        self._memo: dict[tuple[str, str, str], bool] = {}
        self._principal_nodes: set[str] = set()
        self.enforce_calls = 0

    async def ensure_seeded(self, session: AsyncSession) -> None:
        repo = PolicyRepository(session)
        if await repo.count() == 0:
            try:
                async with session.begin_nested():
                    await repo.add(read_policy_file())
                    await repo.bump_version()
            except IntegrityError:
                # Another worker starting at the same time seeded it first.
                pass

    async def refresh(self, session: AsyncSession, *, force: bool = False) -> None:
        """Reload the rules if the database's policy version moved (polled, throttled)."""
        now = time.monotonic()
        if (
            not force
            and self.version >= self._must_reach
            and now - self._checked_at < VERSION_POLL_SECONDS
        ):
            return
        repo = PolicyRepository(session)
        version = await repo.version()
        self._checked_at = now
        if version == self.version and not force:
            return
        rules = await repo.all_rules()
        self._load(rules)
        self.version = version

    def _load(self, rules: list[Rule]) -> None:
        enforcer = casbin.Enforcer(str(MODEL_PATH))
        p_rules = [list(rule[1:]) for rule in rules if rule[0] == "p"]
        g_rules = [list(rule[1:]) for rule in rules if rule[0] == "g"]
        if p_rules:
            enforcer.add_named_policies("p", p_rules)
        if g_rules:
            enforcer.add_named_grouping_policies("g", g_rules)
        self.enforcer = enforcer
        self._memo = {}
        self._principal_nodes = set()

    def invalidate(self) -> None:
        """This process is changing the policy: reload as soon as the change is visible.

        Called before the change commits, so the version is checked on every request
        (no throttle) until it moves past the one loaded now; a concurrent request that
        reloads the old rules in between cannot make this process wait for the next poll.
        """
        self._must_reach = max(self._must_reach, self.version + 1)

    def decisions(self, principal: Principal) -> AccessDecisions:
        return AccessDecisions(self, principal)

    def _node(self, principal: Principal) -> str:
        """A casbin subject standing for this principal: its subject plus its roles."""
        node = f"principal:{principal.subject}|{','.join(sorted(principal.role_set))}"
        if node not in self._principal_nodes:
            members = [[node, role] for role in principal.role_set]
            members.append([node, subject_node(principal)])
            self.enforcer.add_named_grouping_policies("g", members)
            self._principal_nodes.add(node)
        return node

    def enforce(self, principal: Principal, obj: str, act: str) -> bool:
        node = self._node(principal)
        key = (node, obj, act)
        decision = self._memo.get(key)
        if decision is None:
            self.enforce_calls += 1
            decision = bool(self.enforcer.enforce(node, obj, act))
            self._memo[key] = decision
        return decision

    def explain(
        self, principal: Principal, obj: str, act: str
    ) -> tuple[bool, list[str] | None, list[list[str]]]:
        """The decision, the rule casbin names as deciding it, and every rule that matched.

        With deny-overrides, any matching deny decides; otherwise any matching allow.
        """
        node = self._node(principal)
        allowed, deciding = self.enforcer.enforce_ex(node, obj, act)
        subjects = {node, *self.enforcer.get_implicit_roles_for_user(node)}
        matching = [
            list(rule)
            for rule in self.enforcer.get_policy()
            if rule[0] in subjects and key_match(obj, rule[1]) and key_match(act, rule[2])
        ]
        return bool(allowed), list(deciding) if deciding else None, matching


class AccessDecisions:
    """One request's view of the policy; every answer is computed at most once.

    Plain answers that record nothing: only the `Gate` wrapping it may turn them into
    refusals (and audit them)."""

    def __init__(self, authorizer: Authorizer, principal: Principal) -> None:
        self.authorizer = authorizer
        self.principal = principal
        self._cache: dict[tuple[str, str], bool] = {}
        self.enforce_calls = 0

    def allows(self, obj: str, action: str) -> bool:
        key = (obj, action)
        decision = self._cache.get(key)
        if decision is None:
            self.enforce_calls += 1
            decision = self.authorizer.enforce(self.principal, obj, action)
            self._cache[key] = decision
        return decision

    def row_scope(self, obj: str, action: str = "read") -> RowScope | None:
        if not self.allows(obj, action):
            return None
        for scope in RowScope:
            if self.allows(obj, f"scope:{scope.value}"):
                return scope
        return None

    def purpose_allowed(self) -> bool:
        purpose = self.principal.purpose
        return purpose is not None and self.allows(f"purpose:{purpose}", "use")

    def field_mode(self, obj: str, field: str, data_class: DataClass) -> FieldMode:
        """Mode for reading one field. Unsealed fields follow the type; sealed need a rule.

        A `sensitive` field is shown in clear only with a stated purpose the policy
        allows; without one it falls back to masked (if masked is allowed).
        """
        if not data_class.sealed:
            return FieldMode.CLEAR if self.allows(obj, "read") else FieldMode.NONE
        target = f"{obj}.{field}"
        if self.allows(target, "read:clear") and (
            data_class is DataClass.PERSONAL or self.purpose_allowed()
        ):
            return FieldMode.CLEAR
        if self.allows(target, "read:masked") or self.allows(target, "read:clear"):
            return FieldMode.MASKED
        return FieldMode.NONE
