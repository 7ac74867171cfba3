"""`python -m bench.peer` (`make bench-peer`): Custos against PostGraphile 4 and the goals.

One run, on one PostgreSQL: the bench's customers are seeded into a Custos database and
mirrored, decrypted, into a plain one that PostGraphile serves (no auth, no audit, no
crypto). Answers are checked equal (Custos's for a manager, who reads these fields in
clear, against PostGraphile's for the same query shape) before anything is timed. Then
by id at 1 and 16 connections, a list of 1,000 and 50 customers x 20 interactions run
against PostGraphile, Custos with one uvicorn worker and Custos with N workers, load
coming from a separate process. The same run counts round trips per read request, audit
bytes per request and lock waits on audit rows, and measures the SQLite goals. Without
node and npm the peer is skipped with a message; everything else still runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.load import Request, Samples
from bench.peer.answers import AnswerMismatch, check_same, count_records
from bench.peer.loadgen import Result, run_load
from bench.peer.mirror import build_mirror, drop_mirror
from bench.peer.probes import (
    BackendCpu,
    RoundTrips,
    WaitSampler,
    grown,
    table_sizes,
)
from bench.peer.report import write_reports
from bench.peer.scenarios import Shape, log_interaction, shapes
from bench.peer.servers import (
    Server,
    custos_server,
    install_peer,
    postgraphile_server,
)
from bench.seed import TEAM, BenchDatabase, create_database, drop_database
from server.auth.tokens import issue_token
from server.config import Settings
from server.vault import Vault
from server.vault.keyring import LocalKeyring

RESULTS = Path(__file__).resolve().parents[1] / "results"
JWT_SECRET = "bench-secret-with-enough-length-for-hs256"
MANAGER = "manager-bench"
# Time for work a request leaves behind (a group commit, a seal) before counting it.
SETTLE = 0.3
ROUND_TRIP_REQUESTS = 20


@dataclass
class Options:
    customers: int
    seconds: float
    workers: int
    warmup: int
    rounds: int
    peer: bool


@dataclass
class Context:
    options: Options
    work: Path
    keyring: Path
    db: BenchDatabase
    settings: Settings
    token: str
    shapes: list[Shape]
    customer_id: str
    out: dict[str, Any] = field(default_factory=dict)

    @property
    def database(self) -> str | None:
        return self.db.pg_name

    def env(self) -> dict[str, str]:
        return {
            "CUSTOS_ENV": "prod",
            "CUSTOS_DATABASE_URL": self.db.url,
            "CUSTOS_KEYRING": str(self.keyring),
            "CUSTOS_JWT_SECRET": JWT_SECRET,
            "CUSTOS_STATE_DIR": str(self.work / "state"),
            "CUSTOS_LOG_LEVEL": "warning",
            # The limiter stays on (its cost is part of a request) with budgets no load
            # generator reaches: a 429 would time a refusal instead of the scenario.
            "CUSTOS_RATE_LIMIT_COST": "1000000000/minute",
            "CUSTOS_RATE_LIMIT_LOOKUPS": "1000000000/minute",
        }

    def shape(self, name: str) -> Shape:
        return next(s for s in self.shapes if s.name == name)


def _samples(result: Result) -> dict[str, Any]:
    summary = Samples(latencies=result.latencies, wall=result.wall).summary()
    return {k: summary[k] for k in ("requests", "p50_ms", "p95_ms", "p99_ms", "rps")}


async def measure(
    ctx: Context,
    server: Server,
    scenario: str,
    requests: list[Request],
    concurrency: int,
    *,
    database: str | None,
    waits: bool = False,
    storage: bool = False,
) -> dict[str, Any]:
    """One timed run: latency and throughput from the load process, CPU of the server and
    of the database backends, optionally lock waits and table growth."""
    backends = BackendCpu(database) if database else None
    sizes = await table_sizes(database) if storage and database else None
    sampler = WaitSampler(database) if waits and database else None
    if backends:
        await backends.start()
    if sampler:
        sampler.start()
    cpu = server.cpu_seconds()
    result = await run_load(
        server.base,
        requests,
        concurrency=concurrency,
        seconds=ctx.options.seconds,
        warmup=ctx.options.warmup,
    )
    server_cpu = server.cpu_seconds() - cpu
    row: dict[str, Any] = {
        "target": server.name,
        "scenario": scenario,
        "concurrency": concurrency,
        **_samples(result),
        "failures": result.failures,
        "server_cpu_ms": round(server_cpu / result.sent * 1000, 3),
        "client_cpu_ms": round(result.cpu / result.sent * 1000, 3),
    }
    if result.failures:
        row["statuses"] = result.statuses
    if sampler:
        row["waits"] = (await sampler.stop()).summary()
    if backends:
        db_cpu = await backends.stop()
        row["db_cpu_ms"] = round(db_cpu / result.sent * 1000, 3) if db_cpu is not None else None
    if sizes is not None and database:
        await asyncio.sleep(SETTLE)
        growth = grown(sizes, await table_sizes(database))
        row["stored_bytes_per_request"] = round(sum(growth.values()) / result.sent)
        row["grown_tables"] = growth
    print(_line(row), flush=True)
    return row


def _line(row: dict[str, Any]) -> str:
    extra = f" db={row['db_cpu_ms']}ms" if row.get("db_cpu_ms") is not None else ""
    if "waits" in row:
        extra += f" audit-lock-waits={row['waits']['audit_lock_waits']}"
    if "stored_bytes_per_request" in row:
        extra += f" stored/req={row['stored_bytes_per_request']}B"
    return (
        f"  {row['target']:<13} {row['scenario']:<14} c={row['concurrency']:<3}"
        f" p50={row['p50_ms']:>8.2f}ms p99={row['p99_ms']:>8.2f}ms rps={row['rps']:>7.1f}"
        f" cpu/req={row['server_cpu_ms']}ms fail={row['failures']}{extra}"
    )


async def _post(client: httpx.AsyncClient, request: Request) -> Any:
    response = await client.post(request.path, content=request.body, headers=request.headers)
    if response.status_code != 200:
        raise SystemExit(f"{request.path}: HTTP {response.status_code} {response.text[:300]}")
    return orjson.loads(response.content)


async def in_process(ctx: Context) -> dict[str, Any]:
    """Custos's answers, and round trips per read request counted inside one process."""
    from server.app import create_app

    app = create_app(ctx.settings, migrate=False)
    state = app.state.custos
    counter = RoundTrips()
    answers: dict[str, Any] = {}
    trips: dict[str, Any] = {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://custos") as client:
            for shape in ctx.shapes:
                answer = await _post(client, shape.custos_request(ctx.token))
                records = count_records(answer.get("data"))
                if answer.get("errors") or records < shape.at_least:
                    raise SystemExit(
                        f"{shape.name}: Custos answered {records} records "
                        f"(needs {shape.at_least}): {str(answer)[:300]}"
                    )
                answers[shape.name] = answer
            with counter.counting([type(state.engine.sync_engine.dialect)]):
                for shape in ctx.shapes:
                    request = shape.custos_request(ctx.token)
                    for _ in range(3):
                        await _post(client, request)
                    await asyncio.sleep(SETTLE)
                    counter.reset(keep_log=True)
                    await _post(client, request)
                    await asyncio.sleep(SETTLE)
                    one = counter.reset()
                    for _ in range(ROUND_TRIP_REQUESTS):
                        await _post(client, request)
                    await asyncio.sleep(SETTLE)
                    many = counter.reset()
                    trips[shape.name] = {
                        "round_trips": round(many.round_trips / ROUND_TRIP_REQUESTS, 2),
                        "statements": round(many.statements / ROUND_TRIP_REQUESTS, 2),
                        "one_request": one.log,
                    }
                    print(
                        f"  in-process    {shape.name:<14} round trips/request="
                        f"{trips[shape.name]['round_trips']}"
                        f" (statements {trips[shape.name]['statements']})",
                        flush=True,
                    )
    ctx.out["round_trips"] = trips
    return answers


async def check_answers(
    ctx: Context, server: Server, answers: dict[str, Any], *, peer: bool
) -> dict[str, int]:
    """Each shape's answer from `server` against Custos's in-process answer."""
    checked: dict[str, int] = {}
    async with httpx.AsyncClient(base_url=server.base, timeout=60) as client:
        for shape in ctx.shapes:
            request = shape.peer_request() if peer else shape.custos_request(ctx.token)
            theirs = await _post(client, request)
            try:
                checked[shape.name] = check_same(
                    answers[shape.name], theirs, at_least=shape.at_least
                )
            except AnswerMismatch as mismatch:
                raise SystemExit(f"{shape.name}: {server.name}: {mismatch}") from None
    print(f"  {server.name}: answers equal to Custos's ({checked})", flush=True)
    return checked


@dataclass
class Target:
    server: Server
    peer: bool
    database: str | None  # the PostgreSQL database it serves (for probes)


READ_PLAN = [("by_id", 1), ("by_id", 16), ("list_1000", 1), ("nested_50x20", 1)]


async def read_runs(
    ctx: Context, targets: list[Target], plan: list[tuple[str, int]]
) -> list[dict[str, Any]]:
    """Every scenario of the plan on every target, interleaved, `rounds` times: a load
    spike from elsewhere on a shared machine then hits both sides alike."""
    rows = []
    for name, concurrency in plan:
        shape = ctx.shape(name)
        for round_ in range(ctx.options.rounds):
            for t in targets:
                request = shape.peer_request() if t.peer else shape.custos_request(ctx.token)
                row = await measure(
                    ctx,
                    t.server,
                    name,
                    [request],
                    concurrency,
                    database=t.database,
                    waits=concurrency > 1,
                    storage=not t.peer,
                )
                rows.append({**row, "round": round_, "phase": "peer"})
    return rows


async def postgresql(ctx: Context, peer_skip: str | None) -> None:
    runs: list[dict[str, Any]] = []
    ctx.out.update(runs=runs, skipped={})
    print("[postgresql] Custos in-process: answers and round trips", flush=True)
    answers = await in_process(ctx)
    mirror = None
    try:
        async with contextlib.AsyncExitStack() as stack:
            targets: list[Target] = []
            if peer_skip is None:
                vault = Vault(LocalKeyring.load(ctx.keyring, create=False))
                t0 = time.perf_counter()
                mirror = await build_mirror(ctx.db.url, vault)
                print(
                    f"[postgresql] plaintext mirror: {mirror.customers} customers, "
                    f"{mirror.interactions} interactions in {time.perf_counter() - t0:.1f}s",
                    flush=True,
                )
                peer = await stack.enter_async_context(
                    postgraphile_server(mirror.libpq_url, ctx.work / "peer.log")
                )
                ctx.out["answers_checked"] = await check_answers(ctx, peer, answers, peer=True)
                targets.append(Target(peer, True, mirror.name))
            else:
                print(f"[postgresql] PostGraphile skipped: {peer_skip}", flush=True)
                ctx.out["skipped"]["postgraphile"] = peer_skip
            custos = await stack.enter_async_context(
                custos_server(ctx.env(), 1, ctx.work / "custos-1w.log")
            )
            await check_answers(ctx, custos, answers, peer=False)
            targets.append(Target(custos, False, ctx.database))
            runs += await read_runs(ctx, targets, READ_PLAN)
    finally:
        if mirror is not None:
            await drop_mirror(mirror)
    # 1 worker against N: each round starts each server afresh, one after the other (both
    # at once would hold more connections than a shared PostgreSQL should give).
    request = ctx.shape("by_id").custos_request(ctx.token)
    for round_ in range(ctx.options.rounds):
        for workers in (1, ctx.options.workers):
            log = ctx.work / f"custos-{workers}w-{round_}.log"
            async with custos_server(ctx.env(), workers, log) as server:
                if round_ == 0:
                    await check_answers(ctx, server, answers, peer=False)
                row = await measure(
                    ctx, server, "by_id", [request], 16, database=ctx.database, waits=True
                )
                runs.append({**row, "round": round_, "phase": "scaling"})
        runs.append({**await two_instances(ctx, request, round_), "phase": "scaling"})


async def two_instances(ctx: Context, request: Request, round_: int) -> dict[str, Any]:
    """Two 1-worker servers on the one database, as two machines behind a balancer would
    be: 8 connections each (16 in all, as the runs above), their requests/s added up."""
    async with contextlib.AsyncExitStack() as stack:
        servers = [
            await stack.enter_async_context(
                custos_server(ctx.env(), 1, ctx.work / f"custos-instance{n}-{round_}.log")
            )
            for n in (1, 2)
        ]
        rows = await asyncio.gather(
            measure(ctx, servers[0], "by_id", [request], 8, database=ctx.database, waits=True),
            measure(ctx, servers[1], "by_id", [request], 8, database=None),
        )
    return {
        "target": "custos-2x1w",
        "scenario": "by_id",
        "concurrency": 16,
        "round": round_,
        "rps": round(sum(r["rps"] for r in rows), 1),
        "p50_ms": max(r["p50_ms"] for r in rows),
        "failures": sum(r["failures"] for r in rows),
        "instances": rows,
        **({"waits": rows[0]["waits"]} if "waits" in rows[0] else {}),
    }


async def sqlite(ctx: Context) -> None:
    runs: list[dict[str, Any]] = []
    ctx.out.update(runs=runs, skipped={})
    print("[sqlite] Custos in-process: answers and round trips", flush=True)
    await in_process(ctx)
    by_id = [ctx.shape("by_id").custos_request(ctx.token)]
    create = [log_interaction(ctx.token, ctx.customer_id, n) for n in range(16)]
    async with custos_server(ctx.env(), 1, ctx.work / "sqlite-1w.log") as custos:
        for round_ in range(ctx.options.rounds):
            for name, requests, concurrency in (
                ("by_id", by_id, 1),
                ("by_id", by_id, 16),
                ("create_interaction", create, 8),
            ):
                row = await measure(ctx, custos, name, requests, concurrency, database=None)
                runs.append({**row, "round": round_})
    # A slow read on one server, a cheap one on another, on the same database file: the
    # cheap request can only wait on the slow one through the database (its lock).
    slow = [ctx.shape("list_1000").custos_request(ctx.token)]
    async with (
        custos_server(ctx.env(), 1, ctx.work / "sqlite-slow.log") as slow_server,
        custos_server(ctx.env(), 1, ctx.work / "sqlite-cheap.log") as cheap_server,
    ):
        alone = await measure(ctx, cheap_server, "by_id_alone", by_id, 1, database=None)
        slow_load = asyncio.create_task(
            run_load(
                slow_server.base,
                slow,
                concurrency=2,
                seconds=ctx.options.seconds + 2,
                warmup=1,
            )
        )
        await asyncio.sleep(1.5)
        during = await measure(ctx, cheap_server, "by_id_during_slow", by_id, 1, database=None)
        slow_result = await slow_load
    ctx.out["slow_read"] = {
        "cheap_alone": alone,
        "cheap_during": during,
        "slow": {"scenario": "list_1000", "concurrency": 2, **_samples(slow_result)},
        "slow_failures": slow_result.failures,
    }
    print(
        f"  slow read (list_1000 x2) p50={ctx.out['slow_read']['slow']['p50_ms']}ms;"
        f" cheap p50 {alone['p50_ms']} -> {during['p50_ms']}ms,"
        f" p99 {alone['p99_ms']} -> {during['p99_ms']}ms",
        flush=True,
    )


def _context(options: Options, work: Path, keyring: Path, db: BenchDatabase) -> Context:
    settings = Settings(
        env="prod",
        database_url=db.url,
        keyring=keyring,
        jwt_secret=JWT_SECRET,
        state_dir=work / "state",
        log_level="warning",
    )
    token = issue_token(settings, subject=MANAGER, roles=["manager"], team=TEAM, ttl_seconds=86400)
    customer_id = str(db.agent_ids[len(db.agent_ids) // 2])
    return Context(options, work, keyring, db, settings, token, shapes(customer_id), customer_id)


def _machine() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": sys.version.split()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.peer", description=__doc__)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=5.0, help="per timed run")
    parser.add_argument("--workers", type=int, default=4, help="the N of the N-worker run")
    parser.add_argument("--warmup", type=int, default=3, help="requests per connection")
    parser.add_argument(
        "--rounds", type=int, default=3, help="times each run is repeated (best one reported)"
    )
    parser.add_argument("--backends", default="postgresql,sqlite")
    parser.add_argument("--no-peer", action="store_true", help="skip PostGraphile")
    args = parser.parse_args()
    if args.customers < 1000:
        parser.error("--customers must be at least 1000: the list scenario reads 1,000")
    options = Options(
        args.customers, args.seconds, args.workers, args.warmup, args.rounds, not args.no_peer
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    peer_skip = install_peer() if options.peer else "--no-peer given"
    report: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "options": options.__dict__,
        "backends": {},
    }
    with tempfile.TemporaryDirectory(prefix="custos-peer-") as tmp:
        work = Path(tmp)
        keyring = work / "keyring.json"
        for backend in args.backends.split(","):
            t0 = time.perf_counter()
            print(f"[{backend}] seeding {options.customers} customers", flush=True)
            db = create_database(backend, work, keyring, options.customers, 1_200)
            print(f"[{backend}] seeded in {time.perf_counter() - t0:.1f}s", flush=True)
            try:
                ctx = _context(options, work, keyring, db)
                if backend == "postgresql":
                    asyncio.run(postgresql(ctx, peer_skip))
                else:
                    asyncio.run(sqlite(ctx))
                report["backends"][backend] = ctx.out
            finally:
                drop_database(db)
    report["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    json_path, md_path = write_reports(RESULTS, report)
    print(md_path.read_text())
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
