"""Migration 0003 rewrites stored rules into scope per action, on both databases.

A database seeded from the policy of revision 0002 (`fixtures/policy_before_0003.csv`, the
default policy as it was) must end up with exactly today's default policy; rules admins
added in the old form are rewritten by the same reading; downgrading gives the old form
back.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from alembic import command
from sqlalchemy import select, text

from server.auth.principal import Principal, PrincipalKind
from server.authz.authorizer import Authorizer, RowScope, read_policy_file
from server.authz.repository import PolicyRepository, Rule
from server.data.engine import create_engine, create_session_factory
from server.data.migrate import alembic_config
from server.data.models import PolicyVersion
from tests.test_migrations import empty_database  # noqa: F401  (the fixture)

OLD_POLICY = Path(__file__).parent / "fixtures" / "policy_before_0003.csv"
KEY_ID = uuid.UUID("6f1c0b7e-0000-4000-8000-000000000001")
VERBS = ("read", "create", "update", "delete", "erase", "export")
# Rules an admin could have added through the old vocabulary.
ADDED_BEFORE = [
    ("p", "apikey:6f1c0b7e-0000-4000-8000-000000000001", "customer", "read", "allow"),
    ("p", "apikey:6f1c0b7e-0000-4000-8000-000000000001", "customer", "scope:all", "allow"),
    ("p", "apikey:6f1c0b7e-0000-4000-8000-000000000001", "order", "read", "allow"),
    ("p", "user:bob", "customer", "scope:all", "deny"),
    ("p", "user:ann", "customer", "update", "allow"),
    ("p", "senior_agent", "complaint", "update", "allow"),
    ("g", "senior_agent", "manager"),
]


async def _rules(url: str) -> list[Rule]:
    engine = create_engine(url, null_pool=True)
    async with create_session_factory(engine)() as session:
        rules = await PolicyRepository(session).all_rules()
    await engine.dispose()
    return rules


async def _seed(url: str, rules: list[Rule]) -> None:
    engine = create_engine(url, null_pool=True)
    async with create_session_factory(engine)() as session, session.begin():
        await PolicyRepository(session).add(rules)
    await engine.dispose()


async def _version(url: str) -> int:
    engine = create_engine(url, null_pool=True)
    async with create_session_factory(engine)() as session:
        version = await session.scalar(select(PolicyVersion.version))
    await engine.dispose()
    return int(version or 0)


async def _scopes(url: str, principal: Principal, obj: str) -> dict[str, RowScope | None]:
    engine = create_engine(url, null_pool=True)
    authorizer = Authorizer()
    async with create_session_factory(engine)() as session:
        await authorizer.refresh(session, force=True)
    await engine.dispose()
    return authorizer.decisions(principal).scopes(obj)


def test_the_old_default_policy_becomes_todays(empty_database: str) -> None:  # noqa: F811
    config = alembic_config(empty_database)
    command.upgrade(config, "0002")
    old = read_policy_file(OLD_POLICY)
    asyncio.run(_seed(empty_database, [*old, *ADDED_BEFORE]))
    before = asyncio.run(_version(empty_database))

    command.upgrade(config, "head")

    rules = set(asyncio.run(_rules(empty_database)))
    assert set(read_policy_file()) <= rules
    assert rules - set(read_policy_file()) == {
        ("p", "apikey:6f1c0b7e-0000-4000-8000-000000000001", "customer", "read:all", "allow"),
        ("p", "apikey:6f1c0b7e-0000-4000-8000-000000000001", "order", "read:all", "allow"),
        *(("p", "user:bob", "*", f"{verb}:all", "deny") for verb in VERBS),
        # Ann held no scope of her own: the narrowest, never a guess.
        ("p", "user:ann", "customer", "update:own", "allow"),
        # A role inheriting the manager's takes the manager's team scope.
        ("p", "senior_agent", "complaint", "update:team", "allow"),
        ("g", "senior_agent", "manager"),
    }
    # 0005 rewrote the rules, 0007 added the CLI operator's import rules, 0008 the
    # metrics scrape rule, 0011 the notes' rules, 0012 the complaint event note rules, 0014
    # the account rules, 0015 the operator's update rule for re-imports: a version each.
    assert asyncio.run(_version(empty_database)) == before + 7
    key = Principal(
        subject=f"apikey:{KEY_ID}",
        roles=("integrator",),
        api_key_id=KEY_ID,
        kind=PrincipalKind.API_KEY,
    )
    assert asyncio.run(_scopes(empty_database, key, "customer"))["read"] is RowScope.ALL
    bob = Principal(subject="bob", roles=("support", "manager"), team="east")
    scopes = asyncio.run(_scopes(empty_database, bob, "customer"))
    assert (scopes["read"], scopes["update"]) == (RowScope.TEAM, RowScope.TEAM)

    command.downgrade(config, "0002")
    back = set(asyncio.run(_rules(empty_database)))
    assert set(old) <= back
    assert ("p", "user:ann", "customer", "update", "allow") in back
    assert ("p", "admin", "role:*", "grant", "allow") not in back


def test_a_policy_seeded_before_the_cli_operator_rule_gets_it(
    empty_database: str,  # noqa: F811
) -> None:
    config = alembic_config(empty_database)
    command.upgrade(config, "0002")
    old = [r for r in read_policy_file(OLD_POLICY) if r[1] != "cli_operator"]
    asyncio.run(_seed(empty_database, old))
    command.upgrade(config, "head")
    rules = set(asyncio.run(_rules(empty_database)))
    assert ("p", "cli_operator", "segment", "manage", "allow") in rules
    assert rules == set(read_policy_file())


def test_a_fresh_database_is_left_for_the_server_to_seed(
    empty_database: str,  # noqa: F811
) -> None:
    command.upgrade(alembic_config(empty_database), "head")
    assert asyncio.run(_rules(empty_database)) == []

    async def security_table() -> int:
        engine = create_engine(empty_database, null_pool=True)
        async with engine.connect() as conn:
            count = await conn.scalar(text("SELECT count(*) FROM security_events"))
        await engine.dispose()
        return int(count or 0)

    assert asyncio.run(security_table()) == 0
