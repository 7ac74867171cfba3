"""The typed clients in examples/: generated from a live server's schema, type-checked,
and run against it (a real `custos serve`, uvicorn on a free port).

TypeScript: graphql-codegen (typescript + typescript-operations) and tsc, installed by
`npm ci` from the example's package-lock.json into the test's own folder. Python:
ariadne-codegen, installed from examples/python/requirements.lock (hashes) into a venv of
the test's own: it pins graphql-core below the 3.3 the server runs on, so it cannot share
the project's environment. Without npm the TypeScript test is skipped, saying so, except
under CI=true, where it must run.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from server.auth.tokens import issue_token
from server.config import Settings

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
# What the examples leave behind in a working copy; never copied into a test folder.
LOCAL_ONLY = shutil.ignore_patterns("node_modules", "dist", "generated", "custos_client")

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Live:
    url: str
    env: dict[str, str]
    token: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: int = 600) -> str:
    done = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{' '.join(args)}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    home = tmp_path_factory.mktemp("live")
    port = _free_port()
    secret = secrets.token_urlsafe(48)
    env = {
        **os.environ,
        "CUSTOS_ENV": "dev",
        "CUSTOS_PORT": str(port),
        "CUSTOS_DATABASE_URL": f"sqlite:///{home / 'custos.db'}",
        "CUSTOS_KEYRING": str(home / "keyring.json"),
        "CUSTOS_STATE_DIR": str(home / "state"),
        "CUSTOS_HOME": str(home / "home"),
        "CUSTOS_JWT_SECRET": secret,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve"],
        cwd=home,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.3)
        settings = Settings(jwt_secret=secret, home=home / "home")
        token = issue_token(settings, subject="example-client", roles=["manager"], team="east")
        yield Live(url=url, env=env, token=token)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=20)
        if process.stdout is not None:
            process.stdout.close()


def _client_env(live: Live) -> dict[str, str]:
    return {
        **os.environ,
        "CUSTOS_URL": live.url,
        "CUSTOS_TOKEN": live.token,
        "CUSTOS_PURPOSE": "support",
        # ariadne-codegen's remote schema settings read these.
        "CUSTOS_GRAPHQL_URL": f"{live.url}/graphql",
        "CUSTOS_AUTHORIZATION": f"Bearer {live.token}",
    }


def _assert_ran(output: str, gender: str, birth_date: str) -> None:
    result = json.loads(output.strip().splitlines()[-1])
    assert result["gender"] == gender
    assert result["birthDate"] == birth_date
    assert result["node"] == "Customer"
    assert result["total"] >= 1
    assert result["scored"] == min(result["total"], 50)


def test_typescript_client_generates_checks_and_runs(live: Live, tmp_path: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        if os.environ.get("CI") == "true":
            pytest.fail("npm is required under CI=true for the TypeScript example")
        pytest.skip("npm is not installed: the TypeScript example is not checked")
    project = tmp_path / "typescript"
    shutil.copytree(EXAMPLES / "typescript", project, ignore=LOCAL_ONLY)
    env = _client_env(live)
    _run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], project, env)
    _run([npm, "run", "--silent", "codegen"], project, env)
    generated = (project / "src" / "generated" / "operations.ts").read_text()
    # Enums arrive as string-literal unions, custom scalars as strings.
    tier = re.search(r"export type CustomerTier =([^;]*);", generated)
    assert tier is not None
    assert re.findall(r"'(\w+)'", tier[1]) == ["HIGH", "LOW", "MID"]
    assert "export enum" not in generated
    _run([npm, "run", "--silent", "build"], project, env)
    _assert_ran(_run(["node", "dist/client.js"], project, env), "FEMALE", "1990-05-17")


def test_python_client_generates_checks_and_runs(live: Live, tmp_path: Path) -> None:
    project = tmp_path / "python"
    shutil.copytree(EXAMPLES / "python", project, ignore=LOCAL_ONLY)
    venv = tmp_path / "venv"
    env = _client_env(live)
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path, env)
    python = str(venv / "bin" / "python")
    _run(
        [python, "-m", "pip", "install", "--quiet", "--require-hashes", "-r", "requirements.lock"],
        project,
        env,
    )
    _run([str(venv / "bin" / "ariadne-codegen"), "--config", "pyproject.toml"], project, env)
    assert (project / "custos_client" / "enums.py").exists()
    # The client and its use type-check strictly (the project's mypy; pydantic and httpx
    # are in both environments; the example's pyproject.toml holds the settings).
    _run(
        [sys.executable, "-m", "mypy", "--config-file", "pyproject.toml", "main.py"],
        project,
        {**env, "MYPYPATH": str(project)},
    )
    _assert_ran(_run([python, "main.py"], project, env), "MALE", "1985-02-03")
