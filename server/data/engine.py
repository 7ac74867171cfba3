"""Engine and session factory for SQLite (WAL) and PostgreSQL (asyncpg).

No liveness ping on every checkout (three round trips on asyncpg): connections are
recycled before servers or proxies drop idle ones, and a request whose connection turns
out dead before its transaction committed runs again once on a fresh one
(`is_stale_connection`). A database that is only busy (SQLite's write lock held past the
wait, the pool empty past its timeout) is told apart from one that is down (`is_busy`).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA cache_size=-65536",
    "PRAGMA temp_store=MEMORY",
)
# SQLite's result codes for "another connection holds the lock".
_SQLITE_BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
# PostgreSQL: too many connections, lock not available.
_PG_BUSY_STATES = frozenset({"53300", "55P03"})


@dataclass(frozen=True)
class PoolSettings:
    """Connections per process: `size` kept open, `max_overflow` more under load, a
    checkout waits `timeout` seconds for one, and one older than `recycle` seconds is
    replaced instead of pinged. `busy_seconds`: how long SQLite waits for another
    process's write lock before answering busy."""

    size: int = 10
    max_overflow: int = 10
    timeout: float = 5.0
    recycle: int = 1800
    busy_seconds: float = 10.0


def create_engine(
    url: str, *, pool: PoolSettings | None = None, null_pool: bool = False
) -> AsyncEngine:
    """Create the async engine with the pragmas and transaction mode each backend needs."""
    pool = pool or PoolSettings()
    kwargs: dict[str, Any] = {}
    if null_pool:
        kwargs["poolclass"] = NullPool
    elif url.startswith("postgresql"):
        kwargs.update(
            pool_size=pool.size,
            max_overflow=pool.max_overflow,
            pool_timeout=pool.timeout,
            pool_recycle=pool.recycle,
        )
    engine = create_async_engine(url, **kwargs)
    if url.startswith("sqlite"):
        _configure_sqlite(engine, busy_ms=round(pool.busy_seconds * 1000))
    return engine


# An execution option marking a read transaction (see `create_read_session_factory`).
READ_ONLY = "custos_read_only"


def _configure_sqlite(engine: AsyncEngine, *, busy_ms: int) -> None:
    # A writer takes the write lock up front (BEGIN IMMEDIATE) instead of failing to
    # upgrade a read snapshot later; a read transaction is deferred, so reads never wait
    # on the write lock (their audit entries are group-committed by another transaction).
    # Within a process, writers queue first come, first served (server/data/write_queue.py);
    # the busy handler only arbitrates between processes.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (*SQLITE_PRAGMAS, f"PRAGMA busy_timeout={busy_ms}"):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def create_read_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for read transactions: on SQLite they begin deferred (a shared snapshot, no
    write lock); on PostgreSQL they are ordinary transactions. The same pool serves both."""
    return async_sessionmaker(
        engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False, autoflush=False
    )


async def ping(sessions: async_sessionmaker[AsyncSession]) -> None:
    """One round trip to the database; raises if it does not answer (the health check)."""
    async with sessions() as session:
        await session.execute(text("SELECT 1"))


def is_busy(exc: BaseException) -> bool:
    """The database answered but is busy: worth retrying shortly, not an outage."""
    if isinstance(exc, PoolTimeout):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    orig = exc.orig
    if getattr(orig, "sqlite_errorcode", None) in _SQLITE_BUSY_CODES:
        return True
    if isinstance(orig, sqlite3.OperationalError) and "database is locked" in str(orig):
        return True
    return getattr(orig, "sqlstate", None) in _PG_BUSY_STATES or (
        getattr(getattr(orig, "__cause__", None), "sqlstate", None) in _PG_BUSY_STATES
    )


def is_stale_connection(exc: BaseException) -> bool:
    """The connection died under the statement (a restart, an idle cut, a failover): the
    transaction did not commit, and a fresh connection may well succeed."""
    return isinstance(exc, DBAPIError) and exc.connection_invalidated
