"""`custos serve` with two uvicorn workers: `/metrics` sums both workers' counts (on the
API port with a token, and on `CUSTOS_METRICS_PORT` without one), every request is one
JSON log line, and a local client's X-Forwarded-For is not believed by default."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from tests.test_operations import _metric
from tests.test_serve import _free_port

ME = "query Me { me { subject } }"


@dataclass
class Served:
    process: subprocess.Popen[str]
    url: str
    metrics_url: str
    tokens: dict[str, str]
    home: Path


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    port, metrics_port = _free_port(), _free_port()
    home = tmp_path / "home"
    env = {
        **os.environ,
        "CUSTOS_HOME": str(home),
        "CUSTOS_PORT": str(port),
        "CUSTOS_METRICS_PORT": str(metrics_port),
        "CUSTOS_WORKERS": "2",
        "CUSTOS_LOG_FORMAT": "json",
        "CUSTOS_RATE_LIMITS": "false",
    }
    for name in (
        "CUSTOS_JWT_SECRET",
        "CUSTOS_DATABASE_URL",
        "CUSTOS_KEYRING",
        "PROMETHEUS_MULTIPROC_DIR",
    ):
        env.pop(name, None)
    stderr = (tmp_path / "stderr.log").open("w")
    process = subprocess.Popen(
        [str(Path(sys.prefix) / "bin" / "custos"), "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    tokens: dict[str, str] = {}
    deadline = time.monotonic() + 120
    while "integrator" not in tokens and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        match = re.match(r"^export (\w+)_TOKEN=(ey[\w.-]+)$", line.strip())
        if match:
            tokens[match.group(1).lower()] = match.group(2)
    url = f"http://127.0.0.1:{port}"
    ready = False
    while time.monotonic() < deadline and not ready:
        try:
            ready = httpx.get(f"{url}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            time.sleep(0.2)
    assert ready, (tmp_path / "stderr.log").read_text()[-2000:]
    yield Served(process, url, f"http://127.0.0.1:{metrics_port}/metrics", tokens, home)
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=20)
    process.stdout.close()
    stderr.close()


@pytest.mark.slow
def test_two_workers_one_set_of_metrics_and_json_lines(served: Served, tmp_path: Path) -> None:
    headers = {"Authorization": f"Bearer {served.tokens['agent']}"}

    def one(index: int) -> str:
        # A new connection each time, so both workers take some.
        response = httpx.post(
            f"{served.url}/graphql",
            json={"query": ME},
            headers={**headers, "X-Request-Id": f"served-{index}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return response.headers["x-request-id"]

    # Until both workers have answered some (each writes its own counter file), in
    # batches of new connections; the scrape must then sum what both counted.
    sent: list[str] = []
    counters = served.home / "metrics"
    deadline = time.monotonic() + 120
    with ThreadPoolExecutor(max_workers=6) as pool:
        while len(list(counters.glob("counter_*.db"))) < 2 or len(sent) < 30:
            assert time.monotonic() < deadline, "one worker answered everything"
            sent.extend(pool.map(one, range(len(sent), len(sent) + 10)))
    assert sent == [f"served-{i}" for i in range(len(sent))]
    total = len(sent)
    open_scrape = httpx.get(served.metrics_url, timeout=10)
    assert open_scrape.status_code == 200
    assert _metric(open_scrape.text, "custos_http_requests_total", operation="Me") == total
    token_scrape = httpx.get(
        f"{served.url}/metrics",
        headers={"Authorization": f"Bearer {served.tokens['admin']}"},
        timeout=10,
    )
    assert token_scrape.status_code == 200
    assert _metric(token_scrape.text, "custos_http_requests_total", operation="Me") == total
    assert httpx.get(f"{served.url}/metrics", timeout=10).status_code == 401

    # A local client cannot write another address into the audit.
    forged = httpx.post(
        f"{served.url}/graphql",
        json={"query": ME},
        headers={**headers, "X-Forwarded-For": "203.0.113.99", "X-Request-Id": "forged-1"},
        timeout=30,
    )
    assert forged.status_code == 200
    with sqlite3.connect(served.home / "custos.db") as db:
        (addr,) = db.execute(
            "SELECT client_addr FROM audit_events WHERE request_id = 'forged-1'"
        ).fetchone()
    assert addr == "127.0.0.1"

    time.sleep(0.5)
    lines = []
    for raw in (tmp_path / "stderr.log").read_text().splitlines():
        if raw.startswith("{"):
            lines.append(orjson.loads(raw))
    requests = {
        line["request_id"]: line for line in lines if line.get("logger") == "custos.request"
    }
    for i in range(total):
        line = requests[f"served-{i}"]
        assert (line["status"], line["operation_name"]) == (200, "Me")
        assert line["subject"].startswith("agent")
        assert line["duration_ms"] > 0
    # Past the start-up banner (the command's own messages), every line is JSON.
    output = [raw for raw in (tmp_path / "stderr.log").read_text().splitlines() if raw]
    logged = output[next(i for i, raw in enumerate(output) if raw.startswith("{")) :]
    assert [raw for raw in logged if not raw.startswith("{")] == []
