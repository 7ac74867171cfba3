"""A cheap closed-loop load generator: N keep-alive clients, each one request at a time."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Request:
    path: str
    body: bytes
    headers: dict[str, str]


@dataclass
class Samples:
    latencies: list[float] = field(default_factory=list)
    wall: float = 0.0
    cpu: float | None = None
    statements: float | None = None
    failures: int = 0

    @property
    def count(self) -> int:
        return len(self.latencies)

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)

        def pct(p: float) -> float:
            return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000

        return {
            "requests": self.count,
            "failures": self.failures,
            "p50_ms": round(statistics.median(ordered) * 1000, 3),
            "p95_ms": round(pct(0.95), 3),
            "p99_ms": round(pct(0.99), 3),
            "rps": round(self.count / self.wall, 1) if self.wall else 0.0,
            "cpu_ms_per_request": round(self.cpu / self.count * 1000, 3)
            if self.cpu is not None and self.count
            else None,
            "sql_per_request": round(self.statements, 2) if self.statements is not None else None,
        }


def process_cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes, from /proc (Linux)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


async def run_load(
    client: httpx.AsyncClient,
    make_request: Callable[[int], Request],
    *,
    concurrency: int,
    seconds: float,
    warmup: int = 3,
    max_requests: int | None = None,
) -> Samples:
    """Run for `seconds` (or `max_requests`) after a few warm-up requests per client."""
    samples = Samples()
    counter = iter(range(10**9))

    async def one() -> float:
        request = make_request(next(counter))
        started = time.perf_counter()
        response = await client.post(request.path, content=request.body, headers=request.headers)
        await response.aread()
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            samples.failures += 1
        return elapsed

    for _ in range(warmup):
        await asyncio.gather(*(one() for _ in range(concurrency)))
    deadline = time.perf_counter() + seconds
    limit = max_requests or 10**9

    async def worker() -> None:
        while time.perf_counter() < deadline and samples.count < limit:
            samples.latencies.append(await one())

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    samples.wall = time.perf_counter() - started
    return samples
