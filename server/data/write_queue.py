"""First come, first served turns at SQLite's one write lock, inside the process.

SQLite lets one transaction write at a time, and its busy handler is no queue: waiters
sleep and poll, and a late arrival often wins over one that has waited seconds. Here the
process's writers wait on one FIFO lock instead, so each takes the database's write lock
in arrival order; SQLite's busy handler is left to arbitrate between processes only. A
writer that has waited its whole budget gets `DatabaseBusy` (a 503 with `Retry-After`),
not an endless wait. PostgreSQL needs no such queue (row locks; `NoQueue`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from server.errors import DatabaseBusy


class WriteQueue:
    def __init__(self, wait_seconds: float) -> None:
        self.wait_seconds = wait_seconds
        self._lock = asyncio.Lock()
        self.waiting = 0

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Hold the process's write turn for the block (waiters are served in order)."""
        self.waiting += 1
        try:
            async with asyncio.timeout(self.wait_seconds):
                await self._lock.acquire()
        except TimeoutError:
            raise DatabaseBusy() from None
        finally:
            self.waiting -= 1
        try:
            yield
        finally:
            self._lock.release()


class NoQueue(WriteQueue):
    """PostgreSQL: writers wait on the rows they touch, not on one lock."""

    def __init__(self) -> None:
        super().__init__(0)

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        yield


def write_queue(url: str, wait_seconds: float) -> WriteQueue:
    return WriteQueue(wait_seconds) if url.startswith("sqlite") else NoQueue()
