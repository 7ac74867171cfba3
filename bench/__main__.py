"""`python -m bench` (`make bench`): the scenarios against the real app and its baselines.

For each backend (SQLite file, PostgreSQL database, both created for the run) the
scenarios run in-process (httpx over the ASGI transport; SQL statements counted) and
over HTTP against uvicorn with 1 and N workers. Responses are compared before any
timing counts. Reports land in bench/results/ as JSON and Markdown.

With `--baseline DIR` (a checkout of another revision, e.g. `git archive REV | tar -x -C
DIR`), the HTTP runs also serve the same database from that checkout, interleaved with
this tree's scenario by scenario for `--rounds` rounds: a before and an after measured in
one run, under the same load from the rest of the machine. The baseline's answers must
equal this tree's. Its mode is reported as `http-Nw-baseline`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import event

from bench.app import FLOOR_DIR_ENV, bench_app
from bench.baselines import LIST_QUERY
from bench.load import Request, Samples, process_cpu_seconds, run_load
from bench.report import write_reports
from bench.seed import AGENT, TEAM, BenchDatabase, create_database, drop_database
from server.app import AppState
from server.auth.tokens import issue_token
from server.config import Settings

RESULTS = Path(__file__).parent / "results"
JWT_SECRET = "bench-secret-with-enough-length-for-hs256"
MEDIA = "application/graphql-response+json"

SINGLE_QUERY = "query One($id: ID!) { customer(id: $id) { id name phone email tier lifecycle } }"
CONTACT_QUERY = (
    "query ByPhone($phone: String!) { customerByContact(phone: $phone) { id name phone } }"
)
CREATE_QUERY = (
    "mutation Create($input: CreateCustomerInput!) { createCustomer(input: $input) "
    "{ __typename ... on CustomerCreated { customer { id name phone } } "
    "... on UserError { code } } }"
)
LOG_INTERACTION_QUERY = (
    "mutation Log($input: LogInteractionInput!) { logInteraction(input: $input) "
    "{ __typename ... on InteractionPayload { interaction { id } } "
    "... on UserError { code } } }"
)
DENIED_QUERY = "query Denied { customers(first: 100) { edges { node { id tier region phone } } } }"
# Written against the nested connection other work adds; skipped while the field is absent.
NESTED_QUERY = (
    "query Nested { customers(first: 50) { edges { node { id name "
    "interactions(first: 20) { edges { node { id channel occurredAt notes } } } } } } }"
)
METRICS_QUERY = (
    'query Metrics { metrics(from: "2020-01-01", to: "2030-01-01") '
    "{ total { current { customersTotal orders salesTotal averageOrderValue } } } }"
)


@dataclass(frozen=True)
class Sizes:
    customers: int
    owned: int
    list_size: int
    seconds: float


FULL = Sizes(customers=100_000, owned=1_200, list_size=1_000, seconds=10.0)
QUICK = Sizes(customers=10_000, owned=1_200, list_size=1_000, seconds=3.0)


@dataclass
class Scenario:
    name: str
    target: str  # app | A | B | C | app-plain (the app without the execution fast path)
    concurrency: int
    make: Callable[[int], Request]
    expect_errors: bool = False


def _gql(
    path: str, query: str, variables: dict[str, Any], token: str, purpose: str | None
) -> Request:
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Accept": MEDIA,
    }
    if purpose:
        headers["X-Purpose"] = purpose
    body = orjson.dumps({"query": query, "variables": variables})
    return Request(path, body, headers)


def build_scenarios(
    settings: Settings, db: BenchDatabase, sizes: Sizes, schema_sdl: str
) -> tuple[list[Scenario], dict[str, str]]:
    """The scenarios runnable on this branch, and the reasons for those skipped."""
    agent = issue_token(settings, subject=AGENT, roles=["agent"], team=TEAM, ttl_seconds=86400)
    analyst = issue_token(settings, subject="ann", roles=["analyst"], ttl_seconds=86400)
    list_vars = {"first": sizes.list_size}
    one = str(db.agent_ids[len(db.agent_ids) // 2])
    run_tag = f"{random.randrange(10, 99)}"

    def fixed(path: str, query: str, variables: dict[str, Any], token: str) -> Any:
        request = _gql(path, query, variables, token, "support")
        return lambda _n: request

    def create(n: int) -> Request:
        suffix = f"{run_tag}{n:06d}"
        data = {
            "name": f"新客户{suffix}",
            "phone": f"137{suffix}",
            "email": f"n{suffix}@example.com",
        }
        return _gql("/graphql", CREATE_QUERY, {"input": data}, agent, "sales")

    def log_interaction(n: int) -> Request:
        data = {
            "customerId": one,
            "channel": "PHONE",
            "direction": "OUTBOUND",
            "kind": "FOLLOW_UP",
            "subject": f"Follow-up {n}",
            "notes": f"Discussed the renewal, call {n}",
        }
        return _gql("/graphql", LOG_INTERACTION_QUERY, {"input": data}, agent, "support")

    scenarios = [
        Scenario("list_1000", "app", 1, fixed("/graphql", LIST_QUERY, list_vars, agent)),
        Scenario("list_1000", "A", 1, fixed("/bench/a/customers", LIST_QUERY, list_vars, agent)),
        Scenario("list_1000", "B", 1, fixed("/bench/b/graphql", LIST_QUERY, list_vars, agent)),
        Scenario("list_1000", "C", 1, fixed("/bench/c/list", LIST_QUERY, list_vars, agent)),
        Scenario(
            "list_1000", "app-plain", 1, fixed("/bench/plain/graphql", LIST_QUERY, list_vars, agent)
        ),
        Scenario("single_by_id", "app", 1, fixed("/graphql", SINGLE_QUERY, {"id": one}, agent)),
        Scenario("single_by_id", "C", 1, fixed("/bench/c/single", SINGLE_QUERY, {}, agent)),
        Scenario("single_by_id", "app", 16, fixed("/graphql", SINGLE_QUERY, {"id": one}, agent)),
        Scenario("single_by_id", "C", 16, fixed("/bench/c/single", SINGLE_QUERY, {}, agent)),
        Scenario(
            "by_contact",
            "app",
            1,
            fixed("/graphql", CONTACT_QUERY, {"phone": db.agent_phone}, agent),
        ),
        Scenario("create_customer", "app", 8, create),
        Scenario(
            "denied_field",
            "app",
            1,
            lambda _n: _gql("/graphql", DENIED_QUERY, {}, analyst, "analytics"),
            expect_errors=True,
        ),
    ]
    skipped: dict[str, str] = {}
    if "logInteraction(" in schema_sdl:
        scenarios.append(Scenario("create_interaction", "app", 8, log_interaction))
    else:
        skipped["create_interaction"] = "no logInteraction mutation in this schema"
    if "interactions(" in schema_sdl:
        scenarios.append(
            Scenario("nested_50x20", "app", 1, fixed("/graphql", NESTED_QUERY, {}, agent))
        )
    else:
        skipped["nested_50x20"] = "Customer.interactions does not exist on this branch yet"
    if "metrics(" in schema_sdl:
        scenarios.append(
            Scenario("metrics", "app", 1, fixed("/graphql", METRICS_QUERY, {}, analyst))
        )
    else:
        skipped["metrics"] = "Query.metrics does not exist on this branch yet"
    return scenarios, skipped


async def verify(
    client: httpx.AsyncClient, scenarios: list[Scenario], floor_dir: Path | None
) -> dict[str, bytes]:
    """Check every scenario's answer before timing; write the floor bytes from the app's."""
    answers: dict[tuple[str, str], bytes] = {}
    for s in scenarios:
        request = s.make(0)
        response = await client.post(request.path, content=request.body, headers=request.headers)
        if response.status_code != 200:
            raise SystemExit(
                f"{s.name}/{s.target}: HTTP {response.status_code} {response.text[:300]}"
            )
        body = orjson.loads(response.content)
        if bool(body.get("errors")) != s.expect_errors:
            raise SystemExit(f"{s.name}/{s.target}: unexpected errors {str(body)[:300]}")
        if s.target == "app" and s.name in ("list_1000", "single_by_id") and floor_dir:
            (floor_dir / f"{s.name.split('_')[0]}.json").write_bytes(response.content)
        answers[(s.name, s.target)] = response.content
    for (name, target), content in answers.items():
        reference = answers.get((name, "app"))
        if target == "app" or reference is None:
            continue
        if target in ("A", "C", "app-plain") and content != reference:
            raise SystemExit(f"{name}: baseline {target} bytes differ from the app's")
        # B is plain strawberry: it reports no cost in `extensions`.
        if _answer(content) != _answer(reference):
            raise SystemExit(f"{name}: baseline {target} answer differs from the app's")
    return {f"{n}/{t}": c for (n, t), c in answers.items()}


def _answer(content: bytes) -> Any:
    body = orjson.loads(content)
    body.pop("extensions", None)
    return body


def _env(settings: Settings, floor_dir: Path) -> dict[str, str]:
    return {
        "CUSTOS_ENV": "dev",
        "CUSTOS_DATABASE_URL": settings.database_url,
        "CUSTOS_KEYRING": str(settings.keyring),
        "CUSTOS_JWT_SECRET": JWT_SECRET,
        "CUSTOS_STATE_DIR": str(settings.state_dir),
        # The load generator is one principal running far past any sensible rate.
        "CUSTOS_RATE_LIMITS": "false",
        FLOOR_DIR_ENV: str(floor_dir),
    }


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


async def run_in_process(
    settings: Settings,
    floor_dir: Path,
    scenarios: list[Scenario],
    sizes: Sizes,
    profile: set[str] | None = None,
) -> list[dict[str, Any]]:
    with _environ(_env(settings, floor_dir)):
        app = bench_app()
    state: AppState = app.state.custos
    statements = itertools.count()

    @event.listens_for(state.engine.sync_engine, "after_cursor_execute")
    def _count(*_args: Any) -> None:
        next(statements)

    rows: list[dict[str, Any]] = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            await verify(client, scenarios, floor_dir)
            for s in scenarios:
                if profile and f"{s.name}/{s.target}" in profile:
                    await _profile(client, s, settings)
                before_sql = next(statements)
                before_cpu = time.process_time()
                samples = await run_load(
                    client, s.make, concurrency=s.concurrency, seconds=sizes.seconds, warmup=2
                )
                samples.cpu = time.process_time() - before_cpu
                # Warm-up requests ran too; they execute the same statements.
                total = samples.count + 2 * s.concurrency
                samples.statements = (next(statements) - before_sql - 1) / total
                rows.append(_row(s, "in-process", 1, samples))
                print(_line(rows[-1]), flush=True)
    return rows


async def _profile(client: httpx.AsyncClient, s: Scenario, settings: Settings) -> None:
    """A pyinstrument profile of this scenario, written next to the reports."""
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005, async_mode="enabled")
    with profiler:
        await run_load(client, s.make, concurrency=s.concurrency, seconds=5, warmup=1)
    backend = "postgresql" if settings.database_url.startswith("postgresql") else "sqlite"
    path = RESULTS / f"profile-{s.name}-{s.target}-{backend}.txt"
    path.write_text(profiler.output_text(unicode=False, show_all=True))
    print(f"  profile written to {path}", flush=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _children(pid: int) -> list[int]:
    found = [pid]
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return found
    for child in text.split():
        found += _children(int(child))
    return found


ROOT = Path(__file__).parent.parent


@contextlib.asynccontextmanager
async def uvicorn_server(
    env: dict[str, str], workers: int, tree: Path = ROOT
) -> AsyncIterator[tuple[str, int]]:
    """The bench app under uvicorn, imported from `tree` (this checkout or a baseline's:
    `python -m` puts the working directory first on the import path)."""
    port = _free_port()
    process = subprocess.Popen(  # noqa: ASYNC220 - started once, before any timing
        [
            sys.executable, "-m", "uvicorn", "--factory", "bench.app:bench_app",
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
            "--no-access-log", "--log-level", "warning",
        ],
        env={**os.environ, **env},
        cwd=tree,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base) as probe:
            for _ in range(300):
                with contextlib.suppress(httpx.HTTPError):
                    if (await probe.get("/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
            else:
                raise SystemExit("uvicorn did not come up")
        await asyncio.sleep(0.5 * workers)  # every worker imports and connects
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


async def run_http(
    settings: Settings,
    floor_dir: Path,
    scenarios: list[Scenario],
    sizes: Sizes,
    workers: int,
    baseline: Path | None = None,
    rounds: int = 1,
) -> list[dict[str, Any]]:
    """Each scenario over HTTP; with a baseline checkout, its server and this tree's
    alternate scenario by scenario, `rounds` times."""
    rows: list[dict[str, Any]] = []
    trees = [(f"http-{workers}w", ROOT)]
    if baseline is not None:
        trees.insert(0, (f"http-{workers}w-baseline", baseline))
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with contextlib.AsyncExitStack() as stack:
        servers: list[tuple[str, httpx.AsyncClient, int]] = []
        answers: list[dict[str, bytes]] = []
        for mode, tree in trees:
            base, pid = await stack.enter_async_context(
                uvicorn_server(_env(settings, floor_dir), workers, tree)
            )
            client = await stack.enter_async_context(
                httpx.AsyncClient(base_url=base, limits=limits, timeout=60)
            )
            answers.append(await verify(client, scenarios, None))
            servers.append((mode, client, pid))
        for key, content in answers[0].items():
            if key.endswith("/app") and _answer(content) != _answer(answers[-1][key]):
                raise SystemExit(f"{key}: the baseline's answer differs from this tree's")
        for round_ in range(rounds):
            for s in scenarios:
                # Which server goes first alternates, so neither always runs after a pause.
                for mode, client, pid in servers[:: 1 if round_ % 2 == 0 else -1]:
                    pids = _children(pid)
                    before = process_cpu_seconds(pids)
                    samples = await run_load(
                        client, s.make, concurrency=s.concurrency, seconds=sizes.seconds, warmup=2
                    )
                    samples.cpu = process_cpu_seconds(pids) - before
                    rows.append({**_row(s, mode, workers, samples), "round": round_})
                    print(_line(rows[-1]), flush=True)
    return rows


def _row(s: Scenario, mode: str, workers: int, samples: Samples) -> dict[str, Any]:
    return {
        "scenario": s.name,
        "target": s.target,
        "mode": mode,
        "workers": workers,
        "concurrency": s.concurrency,
        **samples.summary(),
    }


def _line(row: dict[str, Any]) -> str:
    return (
        f"  {row['mode']:<11} {row['scenario']:<16} {row['target']:<4} c={row['concurrency']:<3}"
        f" p50={row['p50_ms']:>9.2f}ms p99={row['p99_ms']:>9.2f}ms rps={row['rps']:>8.1f}"
        f" cpu/req={row['cpu_ms_per_request']}ms sql/req={row['sql_per_request']}"
    )


def _machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "loadavg_at_start": os.getloadavg(),
        "python": sys.version.split()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10k customers, 3 s per scenario")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--workers", type=int, default=4, help="the N of the N-worker run")
    parser.add_argument("--seconds", type=float, help="override the time per scenario")
    parser.add_argument("--no-http", action="store_true", help="in-process runs only")
    parser.add_argument("--only", help="comma-separated scenario names")
    parser.add_argument(
        "--profile", help="comma-separated scenario/target pairs to profile, e.g. list_1000/app"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a checkout of another revision: its HTTP runs interleaved with this tree's",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="HTTP runs of each scenario per server"
    )
    parser.add_argument(
        "--workers-only", type=int, help="only this worker count over HTTP (e.g. 1)"
    )
    args = parser.parse_args()
    if args.baseline is not None and not (args.baseline / "bench" / "app.py").exists():
        parser.error(f"--baseline: no bench/app.py under {args.baseline}")
    sizes = QUICK if args.quick else FULL
    if args.seconds:
        sizes = Sizes(sizes.customers, sizes.owned, sizes.list_size, args.seconds)
    RESULTS.mkdir(parents=True, exist_ok=True)
    from schema.build import print_sdl

    sdl = print_sdl()
    rows: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    machine = _machine()
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="custos-bench-") as tmp:
        work = Path(tmp)
        floor_dir = work / "floor"
        floor_dir.mkdir()
        keyring = work / "keyring.json"
        for backend in args.backends.split(","):
            t0 = time.perf_counter()
            print(f"[{backend}] seeding {sizes.customers} customers", flush=True)
            db = create_database(backend, work, keyring, sizes.customers, sizes.owned)
            print(f"[{backend}] seeded in {time.perf_counter() - t0:.1f}s", flush=True)
            try:
                settings = Settings(
                    env="dev",
                    database_url=db.url,
                    keyring=keyring,
                    jwt_secret=JWT_SECRET,
                    state_dir=work / "state",
                )
                scenarios, skipped = build_scenarios(settings, db, sizes, sdl)
                if args.only:
                    wanted = set(args.only.split(","))
                    scenarios = [s for s in scenarios if s.name in wanted]
                profile = set(args.profile.split(",")) if args.profile else None
                found = asyncio.run(run_in_process(settings, floor_dir, scenarios, sizes, profile))
                if not args.no_http:
                    counts = (args.workers_only,) if args.workers_only else (1, args.workers)
                    for workers in counts:
                        found += asyncio.run(
                            run_http(
                                settings,
                                floor_dir,
                                scenarios,
                                sizes,
                                workers,
                                args.baseline,
                                args.rounds,
                            )
                        )
                rows += [{"backend": backend, **r} for r in found]
            finally:
                drop_database(db)
    report = {
        "started": started.isoformat(),
        "mode": "quick" if args.quick else "full",
        "sizes": sizes.__dict__,
        "baseline": str(args.baseline) if args.baseline else None,
        "machine": {**machine, "loadavg_at_end": os.getloadavg()},
        "skipped": skipped,
        "results": rows,
    }
    json_path, md_path = write_reports(RESULTS, report)
    print(f"wrote {json_path} and {md_path}")
    print(json.dumps(report["ratios"], indent=2))


if __name__ == "__main__":
    main()
