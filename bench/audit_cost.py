"""What auditing costs: a 1,000-row customer list and a single createCustomer mutation,
each run the way the HTTP edge runs it, with and without the audit commit.

    python -m bench.audit_cost [--iterations 40] [--database-url postgresql://...]

Without a URL it uses a fresh SQLite file in a temporary directory. With a PostgreSQL URL
it seeds that database (use a scratch one). Target: one audit commit per request and at
most 15% added latency on the list.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from server.app import AppState, build_state
from server.auth.principal import Principal
from server.caller import caller_for
from server.config import Settings
from server.data.migrate import upgrade_to_head
from server.data.models import AuditEvent
from server.demo import DemoBuilder

LIST = "query List { customers(first: 1000) { nodes { id name phone email tier lifecycle } } }"
CREATE = """
mutation Create($input: CreateCustomerInput!) {
  createCustomer(input: $input) { __typename ... on CustomerCreated { customer { id } } }
}
"""
READER = Principal(subject="bench-support", roles=("support",), purpose="support")
WRITER = Principal(subject="bench-manager", roles=("manager",), team="east", purpose="sales")


async def _request(
    state: AppState,
    principal: Principal,
    query: str,
    variables: dict[str, Any] | None,
    *,
    audited: bool,
) -> float:
    """One request as `server.app._execute` runs it (minus HTTP), timed in seconds."""
    from schema.context import GraphQLContext

    services = state.services
    started = time.perf_counter()
    async with state.sessions() as session, session.begin():
        await services.authorizer.refresh(session)
        caller = caller_for(principal, services.authorizer)
        context = GraphQLContext(
            session=session, caller=caller, services=services, max_page_size=1000
        )
        result = await state.schema.execute(query, variable_values=variables, context_value=context)
        if result.errors:
            raise SystemExit(f"benchmark request failed: {result.errors[0].message}")
        if audited:
            await caller.audit.commit(
                session,
                operation_type=context.operation_type,
                operation_name=context.operation_name,
                query=query,
                outcome="ok",
                occurred_at=services.clock.now(),
                keys=services.audit.keys,
            )
    return time.perf_counter() - started


async def _events(state: AppState) -> int:
    async with state.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


def _summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p95 * 1000


async def run(database_url: str, keyring: Path, iterations: int, customers: int) -> None:
    await asyncio.to_thread(upgrade_to_head, database_url)
    settings = Settings(
        env="dev",
        database_url=database_url,
        keyring=keyring,
        jwt_secret="bench-secret-with-enough-length-for-hs256",
        state_dir=keyring.parent,
    )
    state = build_state(settings)
    async with state.sessions() as session, session.begin():
        await state.services.authorizer.ensure_seeded(session)
        await DemoBuilder(state.services.vault, seed=7).run(session, customers)

    scenarios: dict[str, tuple[Principal, str]] = {"list 1000": (READER, LIST)}
    timings: dict[tuple[str, bool], list[float]] = {}
    counter = 0
    before = await _events(state)
    requests = 0
    for name in ("list 1000", "create 1"):
        for _ in range(3):  # warm caches and connections
            await _bench_one(state, name, scenarios, counter := counter + 1, audited=True)
        requests += 3
        for _ in range(iterations):
            # Interleaved, so drift (page cache, autovacuum) hits both variants alike.
            for audited in (False, True):
                counter += 1
                elapsed = await _bench_one(state, name, scenarios, counter, audited=audited)
                timings.setdefault((name, audited), []).append(elapsed)
                requests += audited
    per_request = (await _events(state) - before) / requests

    print(f"database: {database_url.split('://', 1)[0]}  iterations: {iterations}")
    print(f"{'scenario':<12}{'no audit p50/p95 ms':>22}{'audited p50/p95 ms':>22}{'added':>9}")
    for name in ("list 1000", "create 1"):
        base50, base95 = _summary(timings[(name, False)])
        aud50, aud95 = _summary(timings[(name, True)])
        added = (aud50 - base50) / base50 * 100
        print(
            f"{name:<12}{base50:>12.2f} / {base95:<8.2f}{aud50:>12.2f} / {aud95:<8.2f}"
            f"{added:>8.1f}%"
        )
    print(f"audit events per audited request: {per_request:.2f} (target 1.00)")
    await state.engine.dispose()


async def _bench_one(
    state: AppState,
    name: str,
    scenarios: dict[str, tuple[Principal, str]],
    n: int,
    *,
    audited: bool,
) -> float:
    if name in scenarios:
        principal, query = scenarios[name]
        return await _request(state, principal, query, None, audited=audited)
    variables = {"input": {"name": f"基准{n}", "email": f"bench{n}@example.com", "team": "east"}}
    return await _request(state, WRITER, CREATE, variables, audited=audited)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{tmp}/bench.db"
        if url.startswith(("postgresql://", "postgres://")):
            url = "postgresql+asyncpg://" + url.split("://", 1)[1]
        asyncio.run(run(url, Path(tmp) / "keyring.json", args.iterations, args.customers))


if __name__ == "__main__":
    main()
