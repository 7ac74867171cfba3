"""Authorization cost of a customer list: 1 row against 1,000 rows.

Runs the real app over in-process HTTP on a temporary SQLite file, seeds 1,000 customers
owned by one agent, and lists them with `first: 1` and `first: 1000`. For each it reports
the decisions the request asked for (`AccessDecisions.enforce_calls`), the casbin calls
they cost (`Authorizer.enforce_calls`, cold = memo cleared first, warm = memo kept) and
the time spent in casbin. Both must stay flat as rows grow: decisions are per
(principal, object, action), never per row.

    python -m bench.authz_cost [--rows 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from server.app import AppState, create_app
from server.auth.principal import Principal
from server.auth.tokens import issue_token
from server.authz.authorizer import AccessDecisions, Authorizer
from server.config import Settings
from server.customer.repository import CustomerRepository
from server.customer.service import NewCustomer

QUERY = """
query($first: Int!) {
  customers(first: $first) {
    totalCount
    nodes { id name phone email nationalId bankCard address birthday tier region }
  }
}
"""


@dataclass
class Sample:
    rows: int
    decisions: int
    casbin_calls: int
    casbin_ms: float
    request_ms: float


class Meter:
    """Wraps the process's authorizer to see each request's decisions and casbin time."""

    def __init__(self, authorizer: Authorizer) -> None:
        self.authorizer = authorizer
        self.last: AccessDecisions | None = None
        self.casbin_seconds = 0.0
        make_decisions = authorizer.decisions

        def decisions(principal: Principal) -> AccessDecisions:
            self.last = make_decisions(principal)
            return self.last

        authorizer.decisions = decisions  # type: ignore[method-assign]

    def time_casbin(self) -> None:
        """Re-wrap the current enforcer (a reload replaces it)."""
        enforcer = self.authorizer.enforcer
        inner = enforcer.enforce
        if getattr(inner, "_metered", False):
            return

        def enforce(*args: str) -> bool:
            start = time.perf_counter()
            try:
                return bool(inner(*args))
            finally:
                self.casbin_seconds += time.perf_counter() - start

        enforce._metered = True  # type: ignore[attr-defined]
        enforcer.enforce = enforce


async def _seed(state: AppState, rows: int) -> None:
    service = state.services.customers
    async with state.sessions() as session, session.begin():
        repo = CustomerRepository(session)
        for n in range(rows):
            sealed = service.seal_new(
                NewCustomer(
                    name=f"客户{n}",
                    phone=f"138{n:08d}",
                    email=f"bench{n}@example.com",
                    address=f"上海市{n}号",
                    tier="mid",
                    region="上海",
                ),
                owner_id="agent-1",
                team="east",
            )
            await repo.add(sealed.customer, sealed.key)


async def _measure(
    client: httpx.AsyncClient, state: AppState, meter: Meter, token: str, first: int, cold: bool
) -> Sample:
    authorizer = state.services.authorizer
    # Cold: reload the rules (fresh enforcer, empty memo) and wrap the new enforcer.
    async with state.sessions() as session:
        await authorizer.refresh(session, force=cold)
    meter.time_casbin()
    calls_before, meter.casbin_seconds = authorizer.enforce_calls, 0.0
    start = time.perf_counter()
    response = await client.post(
        "/graphql",
        json={"query": QUERY, "variables": {"first": first}},
        headers={"Authorization": f"Bearer {token}", "X-Purpose": "support"},
    )
    elapsed = time.perf_counter() - start
    body = response.json()
    assert response.status_code == 200, body
    assert "errors" not in body, body
    assert meter.last is not None
    return Sample(
        rows=len(body["data"]["customers"]["nodes"]),
        decisions=meter.last.enforce_calls,
        casbin_calls=authorizer.enforce_calls - calls_before,
        casbin_ms=meter.casbin_seconds * 1000,
        request_ms=elapsed * 1000,
    )


async def run(rows: int, repeat: int) -> list[tuple[str, Sample]]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            env="dev",
            database_url=f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}",
            keyring=Path(tmp) / "keyring.json",
            jwt_secret="bench-secret-with-enough-length-for-hs256",
            state_dir=Path(tmp),
        )
        app = create_app(settings, migrate=True)
        async with app.router.lifespan_context(app):
            state: AppState = app.state.custos
            await _seed(state, rows)
            meter = Meter(state.services.authorizer)
            token = issue_token(settings, subject="agent-1", roles=["agent"], team="east")
            transport = httpx.ASGITransport(app=app)
            results: list[tuple[str, Sample]] = []
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                for first in (1, rows):
                    for cold in (True, False):
                        samples = [
                            await _measure(client, state, meter, token, first, cold)
                            for _ in range(repeat)
                        ]
                        best = min(samples, key=lambda s: s.request_ms)
                        best.casbin_ms = statistics.median(s.casbin_ms for s in samples)
                        results.append(("cold" if cold else "warm", best))
            return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    results = asyncio.run(run(args.rows, args.repeat))
    print("authorization cost of one customers(first: N) request, agent, 10 fields")
    header = (
        f"{'rows':>6} {'memo':>5} {'decisions':>9} {'casbin calls':>12} "
        f"{'casbin ms':>9} {'request ms':>10}"
    )
    print(header)
    for memo, s in results:
        print(
            f"{s.rows:>6} {memo:>5} {s.decisions:>9} {s.casbin_calls:>12} "
            f"{s.casbin_ms:>9.2f} {s.request_ms:>10.1f}"
        )
    by_rows: dict[str, dict[int, Sample]] = {}
    for memo, s in results:
        by_rows.setdefault(memo, {})[s.rows] = s
    flat = all(
        len({(s.decisions, s.casbin_calls) for s in samples.values()}) == 1
        for samples in by_rows.values()
    )
    print("decisions and casbin calls independent of rows:", "yes" if flat else "NO")
    if not flat:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
