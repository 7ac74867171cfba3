"""The README's first command: `make serve` migrates, seeds, prints tokens and answers.

The recipe runs with this interpreter's environment and `-o` on its install stamp, so
nothing is installed and nothing is written into the checkout (data, keys and state go to
tmp_path). That a fresh clone installs from the lock is tests/test_lock.py's concern.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
QUERY = "{ customers(first: 5) { totalCount edges { node { id name } } } }"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = _free_port()
    env = {
        **os.environ,
        "CUSTOS_PORT": str(port),
        "CUSTOS_DATABASE_URL": f"sqlite:///{tmp_path / 'custos.db'}",
        "CUSTOS_KEYRING": str(tmp_path / "keyring.json"),
        "CUSTOS_STATE_DIR": str(tmp_path / "state"),
        "CUSTOS_HOME": str(tmp_path / "home"),
    }
    env.pop("CUSTOS_JWT_SECRET", None)
    venv = sys.prefix
    process = subprocess.Popen(
        ["make", "--no-print-directory", "-o", f"{venv}/.installed", "serve", f"VENV={venv}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    yield process, port
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=20)
    if process.stdout is not None:
        process.stdout.close()


@pytest.mark.slow
def test_make_serve_answers_the_first_query(
    served: tuple[subprocess.Popen[str], int], tmp_path: Path
) -> None:
    process, port = served
    assert process.stdout is not None
    tokens: dict[str, str] = {}
    output: list[str] = []
    deadline = time.monotonic() + 240
    while "integrator" not in tokens and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        output.append(line)
        # Shell-ready and whole, one line per role.
        match = re.match(r"^export (\w+)_TOKEN=(ey[\w.-]+)$", line.strip())
        if match:
            tokens[match.group(1).lower()] = match.group(2)
    assert set(tokens) == {
        "admin",
        "manager",
        "agent",
        "support",
        "analyst",
        "compliance",
        "integrator",
    }, "".join(output[-20:])
    assert any(f"http://127.0.0.1:{port}/graphql" in line for line in output)
    # How to run the CLI (the venv is not activated under make), and the same tokens in a
    # file to `source`.
    assert any(line.startswith("The CLI from another shell: ") for line in output), output
    written = (tmp_path / "home" / "dev-tokens.env").read_text().splitlines()
    assert written == [f"export {role.upper()}_TOKEN={token}" for role, token in tokens.items()]
    url = f"http://127.0.0.1:{port}"
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    response = httpx.post(
        f"{url}/graphql",
        json={"query": QUERY},
        headers={"Authorization": f"Bearer {tokens['manager']}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    page = response.json()["data"]["customers"]
    assert page["totalCount"] > 0
    assert 0 < len(page["edges"]) <= 5
    assert all(edge["node"]["name"] for edge in page["edges"])
