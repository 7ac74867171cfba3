"""Analytics benchmark: `metrics` over 100k orders and 10k customers on SQLite and
PostgreSQL against the bare SQL aggregates, and the BG/NBD fit on 25k customers.

    python -m bench.analytics [--orders 100000] [--customers 10000] [--no-postgres]

"Bare SQL" runs exactly the aggregate statements the metrics service issues, straight on
a connection, and fetches their rows: the ratio is what the service adds on top (building
statements, combining sums into KPIs). The target is <= 1.2x. Customer names are opaque
placeholder bytes: no benchmark step reads a sealed field.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import insert, select, text, true

from server.analytics.bgnbd import fit
from server.analytics.churn import fit_histories
from server.analytics.metrics import MetricsCalculator
from server.analytics.repository import (
    AnalyticsRepository,
    ChurnRepository,
    CoPurchaseRepository,
    Granularity,
    GroupBy,
    SegmentRepository,
    SegmentWindows,
    TierRule,
    analysable,
)
from server.analytics.service import end_of
from server.data.engine import create_engine, create_session_factory
from server.data.migrate import upgrade_to_head
from server.data.models import Complaint, Customer, Interaction, Order, OrderItem, Product

PG = os.environ.get("CUSTOS_BENCH_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432")
START = datetime(2024, 1, 1, tzinfo=UTC)
DAYS = 730
REGIONS = ["north", "south", "east", "west", "central", "northeast", "northwest", "southwest"]
INDUSTRIES = ["retail", "finance", "manufacturing", "education", "health", "logistics"]
CHUNK = 5000
RUNS = 5


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


async def populate(url: str, customers: int, orders: int, seed: int = 11) -> None:
    rng = random.Random(seed)
    engine = create_engine(url, null_pool=True)
    sessions = create_session_factory(engine)
    products: list[dict[str, Any]] = [
        {
            "id": _uuid(rng),
            "sku": f"SKU{i:04d}",
            "name": f"product {i}",
            "category": f"c{i % 12}",
            "unit_price": Decimal(rng.randrange(10, 500)),
            "unit_cost": Decimal(rng.randrange(5, 300)),
            "is_new": i % 10 == 0,
        }
        for i in range(200)
    ]
    people: list[dict[str, Any]] = [
        {
            "id": _uuid(rng),
            "created_at": START + timedelta(days=rng.uniform(0, DAYS)),
            "updated_at": START,
            "name": b"\x00",
            "region": rng.choice(REGIONS),
            "industry": rng.choice(INDUSTRIES),
            "tier": rng.choice(["high", "mid", "low", "low"]),
            "owner_id": f"agent-{rng.randrange(40)}",
            "team": rng.choice(["east", "west"]),
            "tags": [],
        }
        for _ in range(customers)
    ]
    order_rows, item_rows = [], []
    for _ in range(orders):
        person = rng.choice(people)
        created: datetime = person["created_at"]
        span = (START + timedelta(days=DAYS) - created).total_seconds()
        oid = _uuid(rng)
        total = cost = Decimal(0)
        for product in rng.sample(products, rng.randint(1, 3)):
            quantity = rng.randint(1, 3)
            line = product["unit_price"] * quantity
            total += line
            cost += product["unit_cost"] * quantity
            item_rows.append(
                {
                    "id": _uuid(rng),
                    "order_id": oid,
                    "customer_id": person["id"],
                    "product_id": product["id"],
                    "quantity": quantity,
                    "unit_price": product["unit_price"],
                    "unit_cost": product["unit_cost"],
                    "line_total": line,
                }
            )
        order_rows.append(
            {
                "id": oid,
                "customer_id": person["id"],
                "ordered_at": created + timedelta(seconds=rng.uniform(0, span)),
                "status": rng.choice(["delivered"] * 8 + ["cancelled", "returned"]),
                "currency": "CNY",
                "total": total,
                "cost_total": cost,
            }
        )
    contacts, complaints = [], []
    for _ in range(orders // 5):
        person = rng.choice(people)
        at = START + timedelta(days=rng.uniform(0, DAYS))
        inbound = rng.random() < 0.5
        contacts.append(
            {
                "id": _uuid(rng),
                "customer_id": person["id"],
                "occurred_at": at,
                "channel": "phone",
                "direction": "inbound" if inbound else "outbound",
                "kind": "consultation",
                "complex": False,
                "first_responded_at": at + timedelta(minutes=rng.randrange(5, 300))
                if inbound
                else None,
            }
        )
    for _ in range(orders // 30):
        person = rng.choice(people)
        at = START + timedelta(days=rng.uniform(0, DAYS))
        complaints.append(
            {
                "id": _uuid(rng),
                "customer_id": person["id"],
                "opened_at": at,
                "category": "product",
                "severity": "normal",
                "status": "resolved",
                "escalation_level": 0,
                "acknowledge_due_at": at + timedelta(hours=2),
                "acknowledged_at": at + timedelta(minutes=rng.randrange(10, 200)),
                "resolve_due_at": at + timedelta(hours=24),
                "resolved_at": at + timedelta(hours=rng.randrange(1, 40)),
                "rating": rng.randint(1, 5),
            }
        )
    async with sessions() as session, session.begin():
        for model, rows in (
            (Product, products),
            (Customer, people),
            (Order, order_rows),
            (OrderItem, item_rows),
            (Interaction, contacts),
            (Complaint, complaints),
        ):
            for i in range(0, len(rows), CHUNK):
                await session.execute(insert(model), rows[i : i + CHUNK])
    async with engine.connect() as conn:
        if url.startswith("postgresql"):
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("ANALYZE"))
        else:
            await conn.execute(text("ANALYZE"))
    await engine.dispose()


async def measure_metrics(url: str) -> dict[str, float]:
    engine = create_engine(url)
    sessions = create_session_factory(engine)
    calculator = MetricsCalculator(Decimal("15.00"))
    kwargs: dict[str, Any] = {
        "start": date(2025, 1, 1),
        "end": date(2025, 12, 31),
        "granularity": Granularity.MONTH,
        "group_by": GroupBy.REGION,
    }
    service_times: list[float] = []
    bare_times: list[float] = []
    statements: list[Any] = []

    async def service() -> None:
        nonlocal statements
        async with sessions() as session:
            # What an analyst (row scope all) counts: everyone not opted out.
            repo = AnalyticsRepository(session, population=analysable())
            began = time.perf_counter()
            await calculator.report(session, repo=repo, **kwargs)
            service_times.append(time.perf_counter() - began)
            statements = repo.statements

    async def bare() -> None:
        async with engine.connect() as conn:
            began = time.perf_counter()
            for stmt in statements:
                (await conn.execute(stmt)).all()
            bare_times.append(time.perf_counter() - began)

    # A warm-up pass, then alternate which goes first: the machine's noise hits both alike.
    await service()
    await bare()
    service_times.clear()
    bare_times.clear()
    for run in range(RUNS):
        if run % 2:
            await bare()
            await service()
        else:
            await service()
            await bare()
    async with engine.connect() as conn:
        began = time.perf_counter()
        (await conn.execute(text("SELECT count(*), sum(total) FROM orders"))).all()
        single = time.perf_counter() - began
    await engine.dispose()
    service_median = statistics.median(service_times)
    bare_median = statistics.median(bare_times)
    return {
        "service": service_median,
        "bare": bare_median,
        "ratio": service_median / bare_median,
        "statements": float(len(statements)),
        "single_sum": single,
    }


async def measure_others(url: str) -> dict[str, float]:
    """Seconds for a segment breakdown, a churn fit from SQL and co-purchase rules."""
    engine = create_engine(url)
    sessions = create_session_factory(engine)
    out: dict[str, float] = {}
    as_of = date(2025, 12, 31)
    async with sessions() as session:
        began = time.perf_counter()
        await SegmentRepository(session).breakdown(
            end_of(as_of), TierRule(), SegmentWindows(), true(), "tier"
        )
        out["segments"] = time.perf_counter() - began
        began = time.perf_counter()
        rows = await ChurnRepository(session).history_counts(as_of, analysable())
        fit_histories(as_of, rows)
        out["churn_fit"] = time.perf_counter() - began
        began = time.perf_counter()
        signals = await ChurnRepository(session).signals(as_of, scope=true())
        out["churn_signals"] = time.perf_counter() - began
        out["customers"] = float(len(signals))
        product = await session.scalar(select(Product.id).limit(1))
        assert product is not None
        began = time.perf_counter()
        await CoPurchaseRepository(session, population=analysable()).rules_from(product, 10)
        out["rules"] = time.perf_counter() - began
    await engine.dispose()
    return out


def simulate_histories(n: int, seed: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw n BG/NBD customers (r=0.25, alpha=4, a=0.8, b=2.5) observed for 26-52 weeks."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(0.25, 1 / 4.0, n)
    drop = rng.beta(0.8, 2.5, n)
    age = rng.uniform(26, 52, n)
    x, t_x = np.zeros(n), np.zeros(n)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1 / rate[i]) if rate[i] > 0 else np.inf
            if t > age[i]:
                break
            x[i] += 1
            t_x[i] = t
            if rng.random() < drop[i]:
                break
    return x, t_x, age


async def main_async(args: argparse.Namespace) -> None:
    targets: list[tuple[str, str, str | None]] = []
    folder = Path(tempfile.mkdtemp(prefix="custos-bench-"))
    targets.append(("sqlite", f"sqlite+aiosqlite:///{folder / 'bench.db'}", None))
    if not args.no_postgres:
        name = f"custos_bench_{os.getpid()}"
        targets.append(("postgresql", f"{PG}/{name}", name))
    for backend, url, pg_name in targets:
        if pg_name:
            await _pg_admin(f'CREATE DATABASE "{pg_name}"')
        try:
            await asyncio.to_thread(upgrade_to_head, url)
            began = time.perf_counter()
            await populate(url, args.customers, args.orders)
            loaded = time.perf_counter() - began
            result = await measure_metrics(url)
            print(
                f"metrics {backend}: {args.orders} orders, {args.customers} customers "
                f"(loaded in {loaded:.1f}s); service {result['service'] * 1000:.0f} ms, "
                f"bare SQL {result['bare'] * 1000:.0f} ms over {result['statements']:.0f} "
                f"statements, ratio {result['ratio']:.2f}x (target <= 1.2x); "
                f"one bare sum over all orders {result['single_sum'] * 1000:.0f} ms"
            )
            other = await measure_others(url)
            print(
                f"  {backend}: segments by tier {other['segments'] * 1000:.0f} ms; "
                f"churn fit from SQL {other['churn_fit'] * 1000:.0f} ms; churn signals for "
                f"{other['customers']:.0f} customers {other['churn_signals'] * 1000:.0f} ms; "
                f"co-purchase rules {other['rules'] * 1000:.0f} ms"
            )
        finally:
            if pg_name:
                await _pg_admin(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
    x, t_x, age = simulate_histories(args.fit_customers)
    began = time.perf_counter()
    params = fit(x, t_x, age)
    print(
        f"BG/NBD fit on {args.fit_customers} customers: {time.perf_counter() - began:.2f}s "
        f"(r={params.r:.3f} alpha={params.alpha:.3f} a={params.a:.3f} b={params.b:.3f}; "
        "simulated with r=0.25 alpha=4 a=0.8 b=2.5)"
    )


async def _pg_admin(statement: str) -> None:
    engine = create_engine(f"{PG}/postgres", null_pool=True)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(statement))
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--fit-customers", type=int, default=25_000)
    parser.add_argument("--no-postgres", action="store_true")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
