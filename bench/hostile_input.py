"""Hostile input: how long each reproducer of issue 13's input hygiene takes to be refused.

Runs the real app over in-process HTTP on a temporary SQLite file and times each
reproducer (median of `--repeat` runs), with the answer's status and code, next to a
cheap query for scale. The tests assert the outcomes; the times live here.

    python -m bench.hostile_input [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from server.app import create_app
from server.auth.tokens import issue_token
from server.config import Settings
from server.errors import ValidationError
from server.vault.normalise import normalise_email

IMPORT = "mutation($rows: [ImportCustomerRowInput!]!) { importCustomers(rows: $rows) { accepted } }"
BY_EMAIL = "query($e: String) { customerByContact(email: $e) { id } }"


@dataclass(frozen=True)
class Case:
    name: str
    role: str
    query: str
    variables: dict[str, Any] | None = None


CASES = (
    Case("cheap query (scale)", "agent", "{ me { subject } }"),
    Case("email a@ + 32000 dots + @", "support", BY_EMAIL, {"e": "a@" + "." * 32000 + "@"}),
    Case("email a@ + 19000 dots + @", "support", BY_EMAIL, {"e": "a@" + "." * 19000 + "@"}),
    Case(
        "importCustomers 60,000 rows (analyst)",
        "analyst",
        IMPORT,
        {"rows": [{"name": "x"}] * 60_000},
    ),
    Case(
        "importCustomers 1,000 rows (analyst)", "analyst", IMPORT, {"rows": [{"name": "x"}] * 1_000}
    ),
    Case(
        "nested bad cursor beside a sibling",
        "analyst",
        "{ customers(first: 1) { edges { node { segment { orders } "
        'interactions(first: 20, after: "zzz") { edges { cursor } } } } } }',
    ),
    Case(
        "naive DateTime filter",
        "manager",
        '{ customers(filter: {createdFrom: "2026-01-01T00:00:00"}) { totalCount } }',
    ),
    Case(
        "metrics from year 1",
        "analyst",
        '{ metrics(from: "0001-01-01", to: "2026-01-01") { from } }',
    ),
    Case(
        "nested first: 5000",
        "admin",
        "{ customers(first: 50) { edges { node { interactions(first: 5000) { totalCount } } } } }",
    ),
    Case(
        "tag filter of 60,000 characters",
        "manager",
        '{ customers(filter: {tag: "' + "x" * 60_000 + '"}) { totalCount } }',
    ),
)


async def run(repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            env="dev",
            database_url=f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}",
            keyring=Path(tmp) / "keyring.json",
            jwt_secret="bench-secret-with-enough-length-for-hs256",
            state_dir=Path(tmp) / "state",
        )
        app = create_app(settings, migrate=True)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                direct = normalise_check("a@" + "." * 32000 + "@")
                label = "normalise_email(a@ + 32000 dots + @), direct"
                print(f"{label:48} {direct * 1000:9.3f} ms")
                for case in CASES:
                    token = issue_token(
                        settings, subject=f"bench-{case.role}", roles=[case.role], team="east"
                    )
                    times: list[float] = []
                    answer = ""
                    for _ in range(repeat):
                        body: dict[str, Any] = {"query": case.query}
                        if case.variables is not None:
                            body["variables"] = case.variables
                        began = time.perf_counter()
                        response = await client.post(
                            "/graphql",
                            json=body,
                            headers={
                                "Authorization": f"Bearer {token}",
                                "Accept": "application/graphql-response+json",
                            },
                        )
                        times.append(time.perf_counter() - began)
                        errors = response.json().get("errors") or [{}]
                        code = errors[0].get("extensions", {}).get("code", "ok")
                        answer = f"{response.status_code} {code}"
                    median = statistics.median(times) * 1000
                    print(f"{case.name:48} {median:9.1f} ms  {answer}")


def normalise_check(value: str) -> float:
    began = time.perf_counter()
    with contextlib.suppress(ValidationError):  # the refusal is what is timed
        normalise_email(value)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(run(args.repeat))


if __name__ == "__main__":
    main()
