"""A busy database is its own answer (503 DATABASE_BUSY with Retry-After), told apart from
one that is down; writers queue in arrival order; the pool is sized by settings and a
connection that died while pooled costs a retry, not a failed request."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from starlette.applications import Starlette

from server.app import AppState, create_app
from server.config import Settings
from server.data.write_queue import WriteQueue
from server.errors import DatabaseBusy
from tests.conftest import Api, Database, _reset_pg, pg_admin, pg_url

QUERY = "{ me { subject } }"


@pytest.fixture
async def tight(settings: Settings) -> AsyncIterator[tuple[Starlette, Api]]:
    """The app with one pooled connection and a short wait for the write lock."""
    narrow = settings.model_copy(
        update={
            "db_pool_size": 1,
            "db_max_overflow": 0,
            "db_pool_timeout_seconds": 0.3,
            "db_busy_seconds": 0.3,
            "db_retry_after_seconds": 2,
        }
    )
    app = create_app(narrow, migrate=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield app, Api(client, narrow)


async def test_a_held_write_lock_is_busy_with_retry_after(
    database: Database, tight: tuple[Starlette, Api]
) -> None:
    app, api = tight
    state: AppState = app.state.custos
    token = api.token("agent")
    assert (await api.post(QUERY, token=token)).status_code == 200
    if database.backend == "sqlite":
        # Another process holds SQLite's write lock past the request's wait.
        other = sqlite3.connect(database.url.removeprefix("sqlite+aiosqlite:///"))
        other.isolation_level = None
        other.execute("BEGIN IMMEDIATE")
        release = other.close
    else:
        # Every pooled connection is in use past the request's wait.
        held = await state.engine.connect()
        await held.execute(text("SELECT 1"))

        def release() -> None:
            asyncio.get_running_loop().create_task(held.close())

    try:
        response = await api.post(QUERY, token=token)
    finally:
        release()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    assert response.json()["errors"][0]["extensions"]["code"] == "DATABASE_BUSY"
    await asyncio.sleep(0.05)
    assert (await api.post(QUERY, token=token)).status_code == 200


async def test_writers_queue_in_arrival_order_and_give_up_busy() -> None:
    queue = WriteQueue(wait_seconds=0.5)
    order: list[int] = []

    async def writer(n: int) -> None:
        async with queue.turn():
            order.append(n)
            await asyncio.sleep(0.01)

    async with queue.turn():
        tasks = []
        for n in range(8):
            tasks.append(asyncio.create_task(writer(n)))
            await asyncio.sleep(0)  # arrive one after another
        assert queue.waiting == 8
    await asyncio.gather(*tasks)
    assert order == list(range(8))

    async with queue.turn():
        with pytest.raises(DatabaseBusy):
            async with asyncio.timeout(2), WriteQueue.turn(queue):
                pass
    assert queue.waiting == 0


async def test_concurrent_writers_on_one_process_all_answer(api: Api) -> None:
    token = api.token("agent")
    responses = await asyncio.gather(*(api.post(QUERY, token=token) for _ in range(24)))
    assert [r.status_code for r in responses] == [200] * 24


@pytest.fixture
async def pg_settings(pg_database: str, settings_base: Settings) -> Settings:
    url = pg_url(pg_database)
    await _reset_pg(url)
    return settings_base.model_copy(update={"database_url": url})


@pytest.fixture
def settings_base(keyring_path: Path, tmp_path: Path) -> Settings:
    return Settings(
        env="dev",
        database_url="sqlite:///unused.db",
        keyring=keyring_path,
        jwt_secret="test-secret-with-enough-length-for-hs256",
        state_dir=tmp_path / "state",
        rate_limits=False,
    )


async def test_pool_size_and_overflow_come_from_settings(pg_settings: Settings) -> None:
    sized = pg_settings.model_copy(
        update={"db_pool_size": 3, "db_max_overflow": 2, "db_pool_recycle_seconds": 600}
    )
    state: AppState = create_app(sized, migrate=False).state.custos
    pool = state.engine.pool
    # No liveness ping on every checkout: connections are recycled instead.
    assert (pool.size(), pool._max_overflow, pool._pre_ping, pool._recycle) == (3, 2, False, 600)  # type: ignore[attr-defined]
    await state.engine.dispose()


async def test_a_connection_killed_while_pooled_costs_a_retry(pg_settings: Settings) -> None:
    app = create_app(pg_settings, migrate=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            api = Api(client, pg_settings)
            token = api.token("agent")
            assert (await api.post(QUERY, token=token)).status_code == 200
            name = pg_settings.database_url.rsplit("/", 1)[1]
            # A server restart or an idle cut: every connection the app holds dies pooled.
            await pg_admin(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            )
            await asyncio.sleep(0.1)
            responses = [await api.post(QUERY, token=token) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 200], responses[0].text
