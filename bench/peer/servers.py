"""The servers under test, each in its own processes: Custos under uvicorn (1 or N
workers) and PostGraphile under node, installed with npm into bench/postgraphile/."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.load import process_cpu_seconds

ROOT = Path(__file__).resolve().parents[2]
PEER_DIR = ROOT / "bench" / "postgraphile"
PEER_CLI = PEER_DIR / "node_modules" / "postgraphile" / "cli.js"


@dataclass
class Server:
    name: str
    base: str  # http://127.0.0.1:port
    pid: int

    def pids(self) -> list[int]:
        """The server process and every process under it (uvicorn's workers)."""
        found = [self.pid]
        with contextlib.suppress(OSError):
            for child in Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split():
                found += Server(self.name, self.base, int(child)).pids()
        return found

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.pids())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:]


@contextlib.asynccontextmanager
async def _serve(
    name: str,
    argv: list[str],
    env: dict[str, str],
    port: int,
    ready: tuple[str, str, bytes | None],
    settle: float,
    log: Path,
) -> AsyncIterator[Server]:
    method, path, body = ready
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: ASYNC220 - started once, before any timing
            argv,
            env={**os.environ, **env},
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as probe:
            for _ in range(600):
                if process.poll() is not None:
                    break
                with contextlib.suppress(httpx.HTTPError):
                    response = await probe.request(
                        method,
                        path,
                        content=body,
                        headers={"Content-Type": "application/json"},
                    )
                    if response.status_code == 200:
                        break
                await asyncio.sleep(0.1)
            else:
                raise SystemExit(f"{name} did not come up; its log ends:\n{_tail(log)}")
        if process.poll() is not None:
            raise SystemExit(
                f"{name} exited with {process.returncode}; its log ends:\n{_tail(log)}"
            )
        await asyncio.sleep(settle)
        yield Server(name, base, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def custos_server(
    env: dict[str, str], workers: int, log: Path
) -> AbstractAsyncContextManager[Server]:
    """Custos as it is deployed: `uvicorn --factory server.app:app_factory`."""
    port = free_port()
    argv = [
        sys.executable, "-m", "uvicorn", "--factory", "server.app:app_factory",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    name = f"custos-{workers}w"
    return _serve(name, argv, env, port, ("GET", "/healthz", None), 0.5 * workers, log)


def peer_missing() -> str | None:
    """Why the peer cannot run here, or None when node and npm are on PATH."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        return (
            f"{' and '.join(missing)} not found on PATH: install Node.js (18 or newer) "
            "with npm to measure against PostGraphile"
        )
    return None


def install_peer() -> str | None:
    """`npm ci` in bench/postgraphile when needed; the reason it failed, or None."""
    why = peer_missing()
    if why:
        return why
    lock = PEER_DIR / "package-lock.json"
    installed = PEER_DIR / "node_modules" / ".package-lock.json"
    if (
        PEER_CLI.exists()
        and installed.exists()
        and installed.stat().st_mtime >= lock.stat().st_mtime
    ):
        return None
    print("[peer] npm ci in bench/postgraphile", flush=True)
    done = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel", "error"],
        cwd=PEER_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not PEER_CLI.exists():
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return f"npm ci failed in bench/postgraphile ({done.returncode}): {last[0]}"
    return None


def postgraphile_server(
    connection: str, log: Path, pool: int = 10
) -> AbstractAsyncContextManager[Server]:
    """PostGraphile 4 over the plaintext mirror, as its documentation runs it in production:
    no query log, no GraphiQL, NODE_ENV=production; read-only (no default mutations)."""
    port = free_port()
    node = shutil.which("node") or "node"
    argv = [
        node, str(PEER_CLI), "--connection", connection, "--schema", "public",
        "--host", "127.0.0.1", "--port", str(port), "--max-pool-size", str(pool),
        "--disable-query-log", "--disable-graphiql", "--disable-default-mutations",
    ]  # fmt: skip
    probe = ("POST", "/graphql", b'{"query":"{ __typename }"}')
    return _serve("postgraphile", argv, {"NODE_ENV": "production"}, port, probe, 0.5, log)
