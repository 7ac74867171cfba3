"""Hostile documents and the price of the limits pass, in one run.

    python -m bench.validation [--customers 2000] [--seconds 3]

1. Validation and limits of hostile documents through the real schema (parse, graphql-
   core's rules with the bounded overlap rule, the one limits-and-cost pass): the
   fragment bomb for k = 10…30, repeated `me { subject }` (50, 100, 450), 30 x 30 nested
   repeats. Each run gets a fresh document text (a trailing comment), so the parse and
   validation caches never answer. Beside them, strawberry's former depth and alias
   limiters on the same bomb up to k = 16 (they double per level) and the ratio.
2. The limits pass on a normal request: `customers(first: 100)` with ten fields through
   the in-process app, with and without the pass (same app, same database, alternating),
   and the pass alone on that document.
3. A cheap query (`me { subject }`) alone, then while another client keeps sending the
   bomb, 450 repeats and a far too costly nested query: its latency ratio.

Prints a Markdown report; timing claims about these documents live here, not in tests.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from graphql import parse, specified_rules, validate
from strawberry.extensions.max_aliases import create_validator as max_aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as max_depth_rule

from bench.baselines import LIST_QUERY
from bench.seed import AGENT, TEAM, create_database, drop_database
from schema.build import build_schema
from schema.limits import OperationLimits, analyse
from server.app import AppState, create_app, handle_graphql
from server.auth.tokens import issue_token
from server.config import Settings

JWT_SECRET = "bench-secret-with-enough-length-for-hs256"
NESTED = """
query Nested($n: Int!) { customers(first: $n) { edges { node { id
  interactions(first: $n) { edges { node { id } } }
  timeline(first: $n) { edges { node { recordId } } }
  orders(first: $n) { edges { node { id items { id } } } }
  loyalty { entries(first: $n) { edges { node { id } } } } } } } }
"""


def fragment_bomb(levels: int) -> str:
    fragments = ["fragment F0 on Me { subject }"] + [
        f"fragment F{i} on Me {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, levels + 1)
    ]
    return f"query Q {{ me {{ ...F{levels} }} }} " + " ".join(fragments)


def repeated(count: int) -> str:
    return "query Q { " + " ".join(["me { subject }"] * count) + " }"


def nested_repeats(outer: int, inner: int) -> str:
    return "query Q { " + " ".join(["me { " + "subject " * inner + "}"] * outer) + " }"


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 3)


async def hostile_documents(runs: int) -> list[dict[str, Any]]:
    schema = build_schema()
    old_rules = (*specified_rules, max_depth_rule(12, None), max_aliases_rule(30))
    documents = [(f"bomb k={k}", fragment_bomb(k)) for k in range(10, 31, 2)]
    documents += [(f"{n} x me {{ subject }}", repeated(n)) for n in (50, 100, 450)]
    documents += [("30 x me { 30 x subject }", nested_repeats(30, 30))]
    rows = []
    for name, document in documents:
        times: list[float] = []
        answer = ""
        for run in range(runs):
            text = f"{document} # run {run} {time.monotonic_ns()}"
            started = time.perf_counter()
            result = await schema.execute(text)
            times.append(time.perf_counter() - started)
            # Run without a request context, an accepted document fails in its first
            # resolver (an error at a path); a refused one never gets there.
            refusals = [e for e in result.errors or [] if not e.path]
            answer = "refused: " + refusals[0].message[:60] if refusals else "accepted"
        row: dict[str, Any] = {"document": name, "bytes": len(document), "ms": median_ms(times)}
        row["answer"] = answer
        if name.startswith("bomb") and int(name.split("=")[1]) <= 16:
            parsed = parse(document)
            started = time.perf_counter()
            validate(schema._schema, parsed, old_rules)
            row["former_limiters_ms"] = round((time.perf_counter() - started) * 1000, 1)
            row["ratio"] = round(row["former_limiters_ms"] / max(row["ms"], 1e-3), 1)
        rows.append(row)
    return rows


async def timed(call: Callable[[], Awaitable[httpx.Response]], seconds: float) -> list[float]:
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        response = await call()
        samples.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise SystemExit(f"unexpected {response.status_code}: {response.text[:200]}")
    return samples


async def requests(settings: Settings, seconds: float) -> dict[str, Any]:
    app = create_app(settings, migrate=False)
    state: AppState = app.state.custos
    unlimited = dataclasses.replace(
        state, schema=build_schema(max_page_size=settings.max_page_size, query_limits=False)
    )

    async def plain_endpoint(scope: Any, receive: Any, send: Any) -> None:
        from starlette.requests import Request

        response = await handle_graphql(unlimited, Request(scope, receive))
        await response(scope, receive, send)

    agent = issue_token(settings, subject=AGENT, roles=["agent"], team=TEAM, ttl_seconds=3600)
    headers = {"Authorization": f"Bearer {agent}", "X-Purpose": "support"}
    body = {"query": LIST_QUERY, "variables": {"first": 100}}
    report: dict[str, Any] = {}
    async with app.router.lifespan_context(app):
        with_limits = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bench"
        )
        without = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=plain_endpoint), base_url="http://bench"
        )
        async with with_limits, without:
            on: list[float] = []
            off: list[float] = []
            for _ in range(10):  # alternate, so drift on a shared machine hits both
                on += await timed(
                    lambda: with_limits.post("/graphql", json=body, headers=headers), seconds / 10
                )
                off += await timed(
                    lambda: without.post("/graphql", json=body, headers=headers), seconds / 10
                )
            report["list_100_with_limits_ms"] = median_ms(on)
            report["list_100_without_limits_ms"] = median_ms(off)
            report["list_100_ratio"] = round(statistics.median(on) / statistics.median(off), 3)
            report["pass_alone_us"] = pass_alone(state, body)

            cheap_body = {"query": "{ me { subject } }"}

            def cheap() -> Awaitable[httpx.Response]:
                return with_limits.post("/graphql", json=cheap_body, headers=headers)

            alone = await timed(cheap, seconds)
            stop = asyncio.Event()
            refused = 0

            async def hostile() -> None:
                nonlocal refused
                documents = [
                    {"query": fragment_bomb(22)},
                    {"query": repeated(450)},
                    {"query": NESTED, "variables": {"n": 1000}},
                ]
                while not stop.is_set():
                    for document in documents:
                        response = await with_limits.post(
                            "/graphql", json=document, headers=headers
                        )
                        assert response.status_code in (200, 400), response.text
                        refused += 1

            attacker = asyncio.create_task(hostile())
            beside = await timed(cheap, seconds)
            stop.set()
            await attacker
            report["cheap_alone_ms"] = median_ms(alone)
            report["cheap_beside_hostile_ms"] = median_ms(beside)
            report["cheap_ratio"] = round(statistics.median(beside) / statistics.median(alone), 2)
            report["hostile_refused"] = refused
    return report


def pass_alone(state: AppState, body: dict[str, Any]) -> float:
    """Microseconds of the limits-and-cost pass on the list document alone."""

    @dataclasses.dataclass
    class Execution:
        graphql_document: Any
        operation_name: str | None
        variables: dict[str, Any]
        schema: Any

    execution = Execution(parse(body["query"]), None, body["variables"], state.schema)
    limits = OperationLimits()
    count = 2000
    started = time.perf_counter()
    for _ in range(count):
        analyse(execution, limits)
    return round((time.perf_counter() - started) / count * 1e6, 1)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.validation", description=__doc__)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    documents = asyncio.run(hostile_documents(args.runs))
    with tempfile.TemporaryDirectory(prefix="custos-bench-") as tmp:
        work = Path(tmp)
        keyring = work / "keyring.json"
        db = create_database("sqlite", work, keyring, args.customers, min(args.customers, 1200))
        try:
            settings = Settings(
                env="dev",
                database_url=db.url,
                keyring=keyring,
                jwt_secret=JWT_SECRET,
                state_dir=work / "state",
                rate_limits=False,
            )
            report = asyncio.run(requests(settings, args.seconds))
        finally:
            drop_database(db)
    print("| document | bytes | ms (median) | answer | former limiters ms | ratio |")
    print("|---|---|---|---|---|---|")
    for row in documents:
        print(
            f"| {row['document']} | {row['bytes']} | {row['ms']} | {row['answer']} "
            f"| {row.get('former_limiters_ms', '')} | {row.get('ratio', '')} |"
        )
    print()
    for key, value in report.items():
        print(f"- {key}: {value}")


if __name__ == "__main__":
    main()
