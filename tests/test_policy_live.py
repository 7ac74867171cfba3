"""A policy change through one server process reaches another sharing the database.

Two real uvicorn processes on free ports, one database (SQLite file or PostgreSQL). The
change goes through process A's API; process B is polled until it answers differently,
with a one-second deadline from the moment A confirmed the change.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from server.config import Settings
from tests.conftest import Api
from tests.factories import make_customer

STARTUP_SECONDS = 90.0
PROPAGATION_SECONDS = 1.0
ROOT = Path(__file__).resolve().parents[1]
COUNT = "{ customers(first: 5) { totalCount } }"
CHANGE = """
mutation {
  read: %(op)s(input: {subject: "integrator", object: "customer", action: "read:all"}) {
    __typename
  }
}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def _server(settings: Settings, log: Path) -> Iterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        "CUSTOS_ENV": "dev",
        "CUSTOS_DATABASE_URL": settings.database_url,
        "CUSTOS_KEYRING": str(settings.keyring),
        "CUSTOS_JWT_SECRET": settings.jwt_secret_value(),
        "CUSTOS_STATE_DIR": str(settings.state_dir),
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "server.app:app_factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start: " + log.read_text()
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _gql(base: str, query: str, token: str) -> httpx.Response:
    return httpx.post(
        f"{base}/graphql",
        json={"query": query},
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        timeout=10,
    )


def _change(base: str, op: str, token: str) -> None:
    response = _gql(base, CHANGE % {"op": op}, token)
    assert response.status_code == 200, response.text
    typenames = {v["__typename"] for v in response.json()["data"].values()}
    assert typenames == {"PolicyAdded" if op == "addPolicy" else "PolicyRemoved"}


def _until(base: str, token: str, *, visible: bool) -> None:
    """Poll until the integrator's list is (or is no longer) readable, within the deadline."""
    deadline = time.monotonic() + PROPAGATION_SECONDS
    while True:
        body = _gql(base, COUNT, token).json()
        readable = body.get("data") is not None
        if readable == visible:
            if visible:
                assert body["data"]["customers"]["totalCount"] == 1
            return
        assert time.monotonic() < deadline, f"not {'visible' if visible else 'withdrawn'} in 1 s"
        time.sleep(0.02)


@pytest.mark.slow
async def test_policy_change_reaches_another_process_within_a_second(
    app: Starlette, api: Api, settings: Settings, tmp_path: Path
) -> None:
    # `app` has migrated and seeded the database, so both servers start on the same state.
    await make_customer(app.state.custos)
    admin = api.token("admin", subject="root")
    integrator = api.token("integrator", subject="int-1")
    with (
        _server(settings, tmp_path / "a.log") as first,
        _server(settings, tmp_path / "b.log") as second,
    ):
        for base in (first, second):
            assert _gql(base, COUNT, integrator).json()["data"] is None

        _change(first, "addPolicy", admin)
        _until(second, integrator, visible=True)

        _change(second, "removePolicy", admin)
        _until(first, integrator, visible=False)
