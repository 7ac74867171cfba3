"""The GraphQL-over-HTTP reference audit (graphql-http, pinned) against a live server:
no MUST or SHOULD may fail. Needs node and npm; skipped with a reason without them."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from server.auth.tokens import issue_token
from server.config import Settings

AUDIT = Path(__file__).parent / "http_audit" / "audit.mjs"
PACKAGES = ["graphql-http@1.23.1", "graphql@16.9.0"]


@pytest.fixture(scope="module")
def audit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed for the GraphQL-over-HTTP audit")
    directory = tmp_path_factory.mktemp("http_audit")
    shutil.copy(AUDIT, directory / "audit.mjs")
    (directory / "package.json").write_text('{"name": "audit", "private": true}')
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--silent", *PACKAGES],
        cwd=directory,
        check=True,
        timeout=300,
        capture_output=True,
    )
    return directory


@pytest.fixture
def live_server(tmp_path: Path, sqlite_template: Path) -> Iterator[tuple[str, str]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    db = tmp_path / "custos.db"
    shutil.copyfile(sqlite_template, db)
    env = {
        **os.environ,
        "CUSTOS_DATABASE_URL": f"sqlite:///{db}",
        "CUSTOS_KEYRING": str(tmp_path / "keyring.json"),
        "CUSTOS_JWT_SECRET": "audit-secret-with-enough-length-000",
        "CUSTOS_STATE_DIR": str(tmp_path),
        "CUSTOS_PORT": str(port),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    settings = Settings(jwt_secret="audit-secret-with-enough-length-000")
    token = issue_token(settings, subject="agent-1", roles=["agent"])
    yield f"{url}/graphql", token
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=20)


@pytest.mark.slow
def test_reference_audit_has_no_failures_or_warnings(
    audit_dir: Path, live_server: tuple[str, str]
) -> None:
    url, token = live_server
    result = subprocess.run(
        ["node", "audit.mjs", url, token],
        cwd=audit_dir,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["counts"]["ok"] >= 50
    failing = [p for p in report["problems"] if p["status"] in ("error", "warn")]
    assert failing == []
    # The only notices allowed are the optional GET forms, refused on purpose.
    assert all("GET" in p["name"] for p in report["problems"])
