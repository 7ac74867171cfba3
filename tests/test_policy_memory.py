"""What the authorizer keeps between requests is bounded and does not grow with the
number of people: decisions are memoised per role set (a person gets a policy node of
their own only when a rule names them), least recently used entries go first, and the
roles assigned to a person are read once per policy version, which every worker sees
move when an assignment changes."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import httpx
import pytest

from server.app import AppState, create_app
from server.auth.principal import Principal
from server.authz.authorizer import Authorizer, FieldMode, RowScope, read_policy_file
from server.authz.repository import PolicyRepository
from server.config import Settings
from server.customer.fields import CUSTOMER_FIELD_CLASSES
from tests.conftest import Api
from tests.sql_statements import count_statements

ROLES = ("admin", "manager", "agent", "support", "analyst", "compliance", "integrator")
ME = "{ me { subject roles } }"
ASSIGN = """
mutation($subject: String!, $role: String!) {
  assignRole(subject: $subject, role: $role) { __typename }
}
"""


def _authorizer(extra: list[tuple[str, ...]] | None = None, **bounds: int) -> Authorizer:
    authorizer = Authorizer(**bounds)
    authorizer._load([*read_policy_file(), *(extra or [])])
    return authorizer


def _ask(authorizer: Authorizer, principal: Principal) -> list[object]:
    access = authorizer.decisions(principal)
    answers: list[object] = [access.row_scope("customer"), access.allows("policy", "manage")]
    answers += [access.field_mode("customer", f, c) for f, c in CUSTOMER_FIELD_CLASSES.items()]
    return answers


def test_decisions_cost_the_same_for_the_ten_thousandth_person() -> None:
    authorizer = _authorizer()
    first = _ask(authorizer, Principal(subject="agent-0", roles=("agent",), purpose="support"))
    calls, remembered = authorizer.enforce_calls, authorizer.remembered
    grouping = len(authorizer.enforcer.get_grouping_policy())
    for n in range(1, 10_000):
        principal = Principal(subject=f"agent-{n}", roles=("agent",), purpose="support")
        assert _ask(authorizer, principal) == first
    # No casbin call, no memo entry, no policy node and no grouping rule per person.
    assert authorizer.enforce_calls == calls
    assert authorizer.remembered == remembered
    assert len(authorizer.enforcer.get_grouping_policy()) == grouping


def test_the_memo_and_the_nodes_are_bounded_and_stay_right() -> None:
    bounded = _authorizer(memo_size=40, node_limit=5)
    unbounded = _authorizer()
    role_sets = [
        combo for size in (1, 2, 3) for combo in itertools.combinations(ROLES, size)
    ]  # 63 distinct role sets
    for round_ in range(2):
        for n, roles in enumerate(role_sets):
            principal = Principal(subject=f"u-{round_}-{n}", roles=roles, purpose="support")
            assert _ask(bounded, principal) == _ask(unbounded, principal)
            memo, nodes, _ = bounded.remembered
            assert memo <= 40
            assert nodes <= 5
    # Evicted nodes left the enforcer too: only the last five role sets' memberships stay.
    kept = {tuple(rule) for rule in bounded.enforcer.get_grouping_policy()}
    assert len(kept) == sum(len(r) for r in role_sets[-5:])


def test_a_rule_naming_a_person_still_decides_for_that_person() -> None:
    authorizer = _authorizer([("p", "user:ann", "customer.phone", "read:*", "deny")])
    ann = Principal(subject="ann", roles=("manager",), purpose="support")
    bob = Principal(subject="bob", roles=("manager",), purpose="support")
    phone = CUSTOMER_FIELD_CLASSES["phone"]
    assert authorizer.decisions(ann).field_mode("customer", "phone", phone) is FieldMode.NONE
    assert authorizer.decisions(bob).field_mode("customer", "phone", phone) is FieldMode.CLEAR
    assert authorizer.decisions(ann).row_scope("customer") is RowScope.TEAM


async def test_assigned_roles_are_read_once_per_policy_version(api: Api, state: AppState) -> None:
    carol = api.token(subject="carol")
    await api.gql(ME, token=carol)
    with count_statements(state) as statements:
        for _ in range(3):
            await api.gql(ME, token=carol)
    assert not [s for s in statements if "role_assignments" in s]


async def test_an_assignment_reaches_another_worker(api: Api, settings: Settings) -> None:
    # A second app on the same database stands for another worker process.
    other = create_app(settings, migrate=False)
    async with other.router.lifespan_context(other):
        transport = httpx.ASGITransport(app=other)
        async with httpx.AsyncClient(transport=transport, base_url="http://w2") as client:
            worker2 = Api(client, settings)
            carol = worker2.token(subject="carol")
            before = await worker2.gql(ME, token=carol)
            assert before["data"]["me"]["roles"] == []
            admin = api.token("admin", subject="root")
            body = await api.gql(ASSIGN, {"subject": "carol", "role": "agent"}, token=admin)
            assert body["data"]["assignRole"]["__typename"] == "RoleAssigned"
            await asyncio.sleep(0.3)  # the version poll's throttle, 0.25 s
            after = await worker2.gql(ME, token=carol)
    assert after["data"]["me"]["roles"] == ["agent"]


async def test_roles_read_before_a_newer_version_loaded_are_not_kept(
    state: AppState, monkeypatch: pytest.MonkeyPatch
) -> None:
    authorizer = state.services.authorizer
    real = PolicyRepository.assigned_roles
    async with state.sessions() as session:
        await authorizer.refresh(session, force=True)
        version = authorizer.version

        async def meanwhile_a_newer_version(self: PolicyRepository, subject: str) -> Any:
            roles = await real(self, subject)
            authorizer.version = version + 1  # another request of this worker loaded it
            return roles

        monkeypatch.setattr(PolicyRepository, "assigned_roles", meanwhile_a_newer_version)
        assert await authorizer.assigned_roles(session, "carol") == ()
    assert authorizer.remembered[2] == 0
