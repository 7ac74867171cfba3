"""Group commit of read entries: one transaction, one multi-row insert, many requests.

A read's entry must be durable before its response leaves, but a transaction per read
would make every read a writer. Each process keeps one writer: requests hand it their
prepared entries and wait; while a batch is being committed the next one gathers, so
under load one commit carries the entries of every request that arrived meanwhile, and
alone a request waits for one commit of its own. A batch that fails fails every request
in it (their responses become 503s: no audit entry, no data).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.audit.repository import AuditRepository, PreparedEntry
from server.data.engine import is_stale_connection

log = logging.getLogger("custos.audit")

MAX_BATCH = 512


class EntryNotDurable(Exception):
    """The entry's batch did not commit (its cause is chained)."""


class GroupCommit:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        turn: Callable[[], AbstractAsyncContextManager[None]] = contextlib.nullcontext,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self.sessions = sessions
        # The process's write turn (SQLite's writers queue in arrival order).
        self.turn = turn
        self.max_batch = max_batch
        self._pending: list[tuple[PreparedEntry, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self.batches = 0
        self.entries = 0

    async def append(self, entry: PreparedEntry) -> None:
        """Return once `entry` is committed; raise `EntryNotDurable` if it was not.

        A request cancelled while waiting leaves its entry in the batch: the operation
        ran, so it is recorded; only its response is lost."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((entry, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        await asyncio.shield(future)

    async def _drain(self) -> None:
        while self._pending:
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            try:
                try:
                    await self._commit(batch)
                except Exception as exc:
                    # A pooled connection the server dropped: nothing was committed, so
                    # the batch is written once more on a fresh connection.
                    if not is_stale_connection(exc):
                        raise
                    await self._commit(batch)
            except BaseException as exc:
                error = EntryNotDurable(type(exc).__name__)
                error.__cause__ = exc
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                if not isinstance(exc, Exception):
                    raise
                continue
            self.batches += 1
            self.entries += len(batch)
            for _, future in batch:
                if not future.done():
                    future.set_result(None)

    async def _commit(self, batch: list[tuple[PreparedEntry, asyncio.Future[None]]]) -> None:
        async with self.turn(), self.sessions() as session, session.begin():
            await AuditRepository(session).append_entries([e for e, _ in batch])

    async def close(self) -> None:
        """Wait for entries already handed in (at shutdown)."""
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)
