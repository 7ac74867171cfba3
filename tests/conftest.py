"""Test harness: the real app over HTTP, on SQLite and on PostgreSQL.

Each test run creates its own PostgreSQL database (dropped at the end) and one migrated
SQLite template; each test gets a fresh copy of the SQLite file or a truncated
PostgreSQL database. With CI=true an unreachable PostgreSQL fails the run instead of
skipping its half. Under pytest-xdist every worker process has its own of both (session
fixtures are per process), so tests in different workers never share a database.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from starlette.applications import Starlette

from server.app import AppState, create_app
from server.auth.tokens import issue_token
from server.config import Settings
from server.data.base import Base
from server.data.engine import create_engine
from server.data.migrate import upgrade_to_head
from tests.audit_ledger import AuditLedger

PG_HOST = os.environ.get("CUSTOS_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("CUSTOS_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("CUSTOS_TEST_PG_USER", "postgres")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
BACKENDS = ["sqlite", "postgresql"]


def pg_url(database: str) -> str:
    return f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


def pg_reachable() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=1):
            return True
    except OSError:
        return False


async def pg_admin(statement: str) -> None:
    engine = create_engine(pg_url("postgres"), null_pool=True)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(statement))
    await engine.dispose()


@pytest.fixture(scope="session", autouse=True)
def custos_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """No test reads or writes the operator's own state (`~/.custos`): every process of
    the run has its own CUSTOS_HOME, inherited by the commands it starts."""
    home = tmp_path_factory.mktemp("custos-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CUSTOS_HOME", str(home))
        yield home


@dataclass(frozen=True)
class Database:
    backend: str
    url: str


@pytest.fixture(scope="session")
def keyring_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys") / "keyring.json"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade_to_head(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    if not pg_reachable():
        message = f"PostgreSQL is not reachable at {PG_HOST}:{PG_PORT}"
        if IN_CI:
            pytest.fail(message + " (CI=true: the PostgreSQL half must run)")
        pytest.skip(message + ": skipping the PostgreSQL half of the suite")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"custos_test_{worker}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    upgrade_to_head(pg_url(name))
    yield name
    asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


TRUNCATE_SKIP = {"alembic_version"}


async def _reset_pg(url: str) -> None:
    tables = [
        t.name
        for t in Base.metadata.sorted_tables
        if t.name not in TRUNCATE_SKIP and t.info.get("dialect", "postgresql") == "postgresql"
    ]
    engine = create_engine(url, null_pool=True)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        await conn.execute(
            text("INSERT INTO audit_chain_head (id, seq, hash) VALUES (1, 0, :h)"), {"h": "0" * 64}
        )
        await conn.execute(text("INSERT INTO audit_sealer (id, sealed_at) VALUES (1, NULL)"))
        await conn.execute(
            text("INSERT INTO policy_version (id, version, changed_at) VALUES (1, 0, now())")
        )
    await engine.dispose()


@pytest.fixture(params=BACKENDS)
def backend_target(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(backend, template) resolved outside the event loop: SQLite file or PG database."""
    if request.param == "sqlite":
        return "sqlite", str(request.getfixturevalue("sqlite_template"))
    return "postgresql", str(request.getfixturevalue("pg_database"))


@pytest.fixture
async def database(backend_target: tuple[str, str], tmp_path: Path) -> AsyncIterator[Database]:
    backend, template = backend_target
    if backend == "sqlite":
        path = tmp_path / "custos.db"
        shutil.copyfile(template, path)
        yield Database("sqlite", f"sqlite+aiosqlite:///{path}")
    else:
        url = pg_url(template)
        await _reset_pg(url)
        yield Database("postgresql", url)


@pytest.fixture
def settings(database: Database, keyring_path: Path, tmp_path: Path) -> Settings:
    return Settings(
        env="dev",
        database_url=database.url,
        keyring=keyring_path,
        jwt_secret="test-secret-with-enough-length-for-hs256",
        state_dir=tmp_path / "state",
        # Off unless a test turns them on (tests/test_rate_limits.py).
        rate_limits=False,
        # Tests seal when they mean to (the per-test audit check seals at the end);
        # tests/test_audit_ledger.py runs the servers' background sealer.
        audit_seal_interval_seconds=0,
    )


@pytest.fixture
def operator_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process commands (`custos …` through `server.cli.invoke`) read the test database
    and keyring from the environment; a wide terminal keeps their tables on one line."""
    monkeypatch.setenv("CUSTOS_ENV", "dev")
    monkeypatch.setenv("CUSTOS_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CUSTOS_KEYRING", str(settings.keyring))
    monkeypatch.setenv("CUSTOS_STATE_DIR", str(settings.state_dir))
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    application = create_app(settings, migrate=False)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def state(app: Starlette) -> AppState:
    result: AppState = app.state.custos
    return result


class Api:
    """A client of the real ASGI app speaking GraphQL over HTTP."""

    def __init__(self, client: httpx.AsyncClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings

    def token(
        self, *roles: str, subject: str | None = None, team: str | None = None, ttl: int = 600
    ) -> str:
        return issue_token(
            self.settings,
            subject=subject or f"user-{roles[0] if roles else 'none'}",
            roles=list(roles),
            team=team,
            ttl_seconds=ttl,
        )

    async def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        purpose: str | None = None,
        accept: str = "application/graphql-response+json",
        operation_name: str | None = None,
    ) -> httpx.Response:
        headers = {"Accept": accept}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if purpose:
            headers["X-Purpose"] = purpose
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        if operation_name is not None:
            body["operationName"] = operation_name
        return await self.client.post("/graphql", json=body, headers=headers)

    async def gql(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str,
        purpose: str | None = None,
    ) -> dict[str, Any]:
        response = await self.post(query, variables, token=token, purpose=purpose)
        assert response.status_code == 200, response.text
        payload: dict[str, Any] = response.json()
        return payload


@pytest.fixture
async def api(app: Starlette, settings: Settings, state: AppState) -> AsyncIterator[Api]:
    # Every API test also checks the audit: one event per executed request, chain intact.
    ledger = AuditLedger(state)
    await ledger.start()
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 51000))
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://custos.test",
        event_hooks={"request": [ledger.tag], "response": [ledger.note]},
    ) as client:
        yield Api(client, settings)
    await ledger.check()
