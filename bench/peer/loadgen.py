"""A lean closed-loop HTTP/1.1 load generator, run in its own process.

    python -m bench.peer.loadgen < spec.json > result.json

N keep-alive connections on raw asyncio streams (uvloop when installed), each sending one
request at a time from a fixed list of pre-encoded requests, in turn. It costs a few tens
of microseconds per request, so a fast peer is not bounded by the client on a small
machine. The orchestrator (`bench.peer`) starts it with `run_load` and reads its result.

spec: {"host", "port", "requests": [{"path", "body", "headers"}], "concurrency",
       "seconds", "warmup"}   (warmup: requests per connection before the clock starts)
result: {"latencies": [seconds...], "wall", "failures", "statuses", "sent", "cpu"}
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.load import Request

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Result:
    latencies: list[float]
    wall: float
    failures: int
    statuses: dict[str, int]
    sent: int  # every request, warm-up included (for CPU per request)
    cpu: float  # the generator's own CPU seconds, to show it was not the bottleneck


def encode(host: str, port: int, request: dict[str, Any]) -> bytes:
    body: bytes = request["body"].encode()
    lines = [
        f"POST {request['path']} HTTP/1.1",
        f"Host: {host}:{port}",
        f"Content-Length: {len(body)}",
        *(f"{k}: {v}" for k, v in request["headers"].items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; (status, the server keeps the connection open)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length: int | None = None
    chunked = False
    keep = True
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
        elif name == "connection" and value.strip().lower() == "close":
            keep = False
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length is not None:
        await reader.readexactly(length)
    else:
        await reader.read()  # no length: the body ends with the connection
        keep = False
    return status, keep


async def generate(spec: dict[str, Any]) -> Result:
    host, port = spec["host"], int(spec["port"])
    payloads = [encode(host, port, r) for r in spec["requests"]]
    concurrency = int(spec["concurrency"])
    warmup = int(spec["warmup"])
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    counts = {"failures": 0, "sent": 0, "turn": 0, "warm": 0}
    go = asyncio.Event()
    clock = {"started": 0.0, "deadline": 0.0}

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)

        async def one(record: bool) -> None:
            nonlocal reader, writer
            payload = payloads[counts["turn"] % len(payloads)]
            counts["turn"] += 1
            started = time.perf_counter()
            try:
                writer.write(payload)
                status, keep = await _read_response(reader)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                status, keep = 0, False
            elapsed = time.perf_counter() - started
            counts["sent"] += 1
            if record:
                latencies.append(elapsed)
                statuses[str(status)] += 1
                if status != 200:
                    counts["failures"] += 1
            if not keep:
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)

        for _ in range(warmup):
            await one(False)
        counts["warm"] += 1
        if counts["warm"] == concurrency:
            clock["started"] = time.perf_counter()
            clock["deadline"] = clock["started"] + float(spec["seconds"])
            go.set()
        await go.wait()
        while time.perf_counter() < clock["deadline"]:
            await one(True)
        writer.close()

    cpu = time.process_time()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    wall = time.perf_counter() - clock["started"]
    cpu = time.process_time() - cpu
    return Result(latencies, wall, counts["failures"], dict(statuses), counts["sent"], cpu)


async def run_load(
    base: str, requests: Sequence[Request], *, concurrency: int, seconds: float, warmup: int
) -> Result:
    """Run the generator in its own process against `base` (http://host:port)."""
    host, _, port = base.removeprefix("http://").partition(":")
    spec = {
        "host": host,
        "port": int(port),
        "requests": [
            {"path": r.path, "body": r.body.decode(), "headers": r.headers} for r in requests
        ],
        "concurrency": concurrency,
        "seconds": seconds,
        "warmup": warmup,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.peer.loadgen",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    out, _ = await process.communicate(json.dumps(spec).encode())
    if process.returncode != 0:
        raise RuntimeError(f"the load generator exited with {process.returncode}")
    return Result(**json.loads(out))


def main() -> None:
    spec = json.loads(sys.stdin.read())
    try:
        import uvloop
    except ImportError:
        done = asyncio.run(generate(spec))
    else:
        done = uvloop.run(generate(spec))
    json.dump(done.__dict__, sys.stdout)


if __name__ == "__main__":
    main()
