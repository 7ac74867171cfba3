"""Policy decisions below GraphQL.

`Authorizer` owns the casbin enforcer for the process and reloads it when the policy
version in the database moves. `AccessDecisions` answers for one request's principal;
every (object, action) is enforced once and memoised, so a 1,000-row list costs the same
handful of casbin calls as a single row. On objects whose rows are customers' the
question is asked per row scope (`update:all`, `update:team`, `update:own`), so a
caller's scope for an action comes only from the rules that allow that action. Domain
services never ask it directly: they ask the request's `Gate` (`server/authz/gate.py`),
which audits every refusal.
"""

from __future__ import annotations

import enum
import json
import time
from collections import OrderedDict
from pathlib import Path

import casbin
from casbin.util import key_match
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import Principal
from server.authz.repository import PolicyRepository, Rule
from server.authz.vocabulary import (
    ROW_SCOPES,
    SCOPED_OBJECTS,
    SCOPED_VERBS,
    is_scoped,
    scoped_action,
)
from server.data.base import DataClass

POLICY_DIR = Path(__file__).resolve().parents[2] / "policies"
MODEL_PATH = POLICY_DIR / "model.conf"
DEFAULT_POLICY_PATH = POLICY_DIR / "policy.csv"
# Another worker's policy change shows here within this many seconds.
VERSION_POLL_SECONDS = 0.25
# Bounds on what the process remembers between requests (least recently used goes first).
# Decisions are keyed by role set, not by person, so they stay few whatever the number of
# users; the bounds hold even against a flood of distinct role sets or named subjects.
DECISION_MEMO_SIZE = 50_000
POLICY_NODES = 2_000
ASSIGNED_ROLES_CACHE = 20_000


class FieldMode(enum.StrEnum):
    CLEAR = "clear"
    MASKED = "masked"
    NONE = "none"


class RowScope(enum.StrEnum):
    """Widest first: the order in which a caller's scope for an action is looked for."""

    ALL = "all"
    TEAM = "team"
    OWN = "own"


assert tuple(RowScope) == ROW_SCOPES


def read_policy_file(path: Path = DEFAULT_POLICY_PATH) -> list[Rule]:
    rules: list[Rule] = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            rules.append(tuple(part.strip() for part in line.split(",")))
    return rules


class Authorizer:
    """Process-wide: the enforcer, its policy version and a decision memo."""

    def __init__(
        self,
        *,
        memo_size: int = DECISION_MEMO_SIZE,
        node_limit: int = POLICY_NODES,
        assigned_limit: int = ASSIGNED_ROLES_CACHE,
    ) -> None:
        self.enforcer = casbin.Enforcer(str(MODEL_PATH))
        self.version = -1
        self._checked_at = 0.0
        # A version this process changed the policy to and must load before throttling.
        self._must_reach = 0
        self._memo_size, self._node_limit, self._assigned_limit = (
            memo_size,
            node_limit,
            assigned_limit,
        )
        self._memo: OrderedDict[tuple[str, str, str], bool] = OrderedDict()
        # node -> its grouping rules in the enforcer (removed again when it is evicted).
        self._principal_nodes: OrderedDict[str, list[list[str]]] = OrderedDict()
        # Subjects some rule names (`user:ann`, `apikey:<id>`): only they need a node of
        # their own; everyone else shares the node of their role set.
        self._named_subjects: frozenset[str] = frozenset()
        # subject -> roles assigned in the database, valid for the loaded policy version
        # (an assignment change moves the version, in every worker).
        self._assigned: OrderedDict[str, tuple[str, ...]] = OrderedDict()
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
        self._memo = OrderedDict()
        self._principal_nodes = OrderedDict()
        self._named_subjects = frozenset(
            part for rule in rules for part in rule[1:3] if rule[0] in ("p", "g")
        )
        self._assigned = OrderedDict()

    def invalidate(self) -> None:
        """This process is changing the policy: reload as soon as the change is visible.

        Called before the change commits, so the version is checked on every request
        (no throttle) until it moves past the one loaded now; a concurrent request that
        reloads the old rules in between cannot make this process wait for the next poll.
        """
        self._must_reach = max(self._must_reach, self.version + 1)

    def decisions(self, principal: Principal) -> AccessDecisions:
        return AccessDecisions(self, principal)

    async def assigned_roles(self, session: AsyncSession, subject: str) -> tuple[str, ...]:
        """The roles assigned in the database to a person, read once per policy version
        (call `refresh` first): a request no longer costs a `role_assignments` query."""
        roles = self._assigned.get(subject)
        if roles is not None:
            self._assigned.move_to_end(subject)
            return roles
        version = self.version
        roles = tuple(sorted(await PolicyRepository(session).assigned_roles(subject)))
        # A concurrent request may have loaded a newer version while this one waited:
        # what was read then is not kept for the newer version.
        if self.version == version:
            self._assigned[subject] = roles
            if len(self._assigned) > self._assigned_limit:
                self._assigned.popitem(last=False)
        return roles

    def _node(self, principal: Principal) -> str:
        """A casbin subject standing for this principal: a member of its roles and, when
        some rule names it, of its own typed subject (`user:<sub>`, `apikey:<id>`:
        `Principal.node`, built from its kind). A principal no rule names decides exactly
        as its role set does, so it shares that set's node (and memo) with every other
        person holding the same roles; one that is named gets a node of its own, named by
        kind, subject and roles together (`Principal.identity`), so a principal of one
        kind can never reuse another's node."""
        roles = sorted(principal.role_set)
        if principal.node in self._named_subjects:
            node = f"principal:{principal.identity}"
            members = [[node, role] for role in roles] + [[node, principal.node]]
        else:
            node = f"roles:{json.dumps(roles)}"
            members = [[node, role] for role in roles]
        if node in self._principal_nodes:
            self._principal_nodes.move_to_end(node)
            return node
        if members:
            self.enforcer.add_named_grouping_policies("g", members)
        self._principal_nodes[node] = members
        if len(self._principal_nodes) > self._node_limit:
            # Its memo entries stay right: a node's memberships follow from its name.
            _, evicted = self._principal_nodes.popitem(last=False)
            if evicted:
                self.enforcer.remove_named_grouping_policies("g", evicted)
        return node

    def enforce(self, principal: Principal, obj: str, act: str) -> bool:
        node = self._node(principal)
        key = (node, obj, act)
        decision = self._memo.get(key)
        if decision is None:
            self.enforce_calls += 1
            decision = bool(self.enforcer.enforce(node, obj, act))
            self._memo[key] = decision
            if len(self._memo) > self._memo_size:
                self._memo.popitem(last=False)
        else:
            self._memo.move_to_end(key)
        return decision

    @property
    def remembered(self) -> tuple[int, int, int]:
        """(decisions, policy nodes, people's assigned roles) held between requests."""
        return len(self._memo), len(self._principal_nodes), len(self._assigned)

    def explain(
        self, principal: Principal, obj: str, act: str
    ) -> tuple[bool, list[str] | None, list[list[str]]]:
        """The decision, the rule casbin names as deciding it, and every rule that matched.

        With deny-overrides, any matching deny decides; otherwise any matching allow. A
        plain verb on a scoped object (`customer`, `update`) is explained through its
        scoped forms: allowed in the widest scope allowed, decided by that scope's rule
        (or, if none is allowed, by the first deny that refused one).
        """
        node = self._node(principal)
        acts = [scoped_action(act, s) for s in ROW_SCOPES] if is_scoped(obj, act) else [act]
        allowed, deciding = False, None
        for each in acts:
            ok, rule = self.enforcer.enforce_ex(node, obj, each)
            if ok:
                allowed, deciding = True, rule
                break
            if rule and deciding is None:
                deciding = rule
        subjects = {node, *self.enforcer.get_implicit_roles_for_user(node)}
        matching = [
            list(rule)
            for rule in self.enforcer.get_policy()
            if rule[0] in subjects
            and key_match(obj, rule[1])
            and any(key_match(each, rule[2]) for each in acts)
        ]
        return allowed, list(deciding) if deciding else None, matching


class AccessDecisions:
    """One request's view of the policy; every answer is computed at most once.

    Plain answers that record nothing: only the `Gate` wrapping it may turn them into
    refusals (and audit them)."""

    def __init__(self, authorizer: Authorizer, principal: Principal) -> None:
        self.authorizer = authorizer
        self.principal = principal
        self._cache: dict[tuple[str, str], bool] = {}
        self._scopes: dict[tuple[str, str], RowScope | None] = {}
        self.enforce_calls = 0

    def _enforce(self, obj: str, action: str) -> bool:
        key = (obj, action)
        decision = self._cache.get(key)
        if decision is None:
            self.enforce_calls += 1
            decision = self.authorizer.enforce(self.principal, obj, action)
            self._cache[key] = decision
        return decision

    def allows(self, obj: str, action: str) -> bool:
        """Whether the caller may `action` `obj`; on a scoped object, in some row scope."""
        if is_scoped(obj, action):
            return self.row_scope(obj, action) is not None
        return self._enforce(obj, action)

    def row_scope(self, obj: str, action: str = "read") -> RowScope | None:
        """The widest row scope in which the caller may `action` `obj` (None: none).

        Asked as `action:all`, `action:team`, `action:own`: only a rule allowing this
        action on this object can grant its scope, and a deny of one scope (or of `*`)
        takes that scope away whatever allows it."""
        if obj not in SCOPED_OBJECTS or action not in SCOPED_VERBS:
            raise ValueError(f"{obj}/{action} is not asked per row scope")
        key = (obj, action)
        if key in self._scopes:
            return self._scopes[key]
        found = next(
            (s for s in RowScope if self._enforce(obj, scoped_action(action, s.value))), None
        )
        self._scopes[key] = found
        return found

    def scopes(self, obj: str) -> dict[str, RowScope | None]:
        """Every scoped action on `obj` with the caller's row scope for it."""
        return {verb: self.row_scope(obj, verb) for verb in SCOPED_VERBS}

    def purpose_allowed(self, required: str | None = None) -> bool:
        """The caller stated a purpose (`X-Purpose`) the policy lets it use; with
        `required`, that very purpose."""
        purpose = self.principal.purpose
        if purpose is None or (required is not None and purpose != required):
            return False
        return self.allows(f"purpose:{purpose}", "use")

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
