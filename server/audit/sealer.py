"""The sealer: turns committed entries into signed blocks, off the request path.

One sealer at a time across every process (`AuditRepository.take_sealer_lock`). A pass
takes the unsealed entries in a deterministic order (arrival `seq`, then id), gives them
gap-free positions after the last block's, and cuts them into blocks of at most
`block_size`: each block head names its range, the Merkle root of its leaves and the
previous block's hash, and is signed with the vault's Ed25519 key. Entries written before
blocks existed (the old hash chain) have the lowest `seq`, so they are sealed first, in
their chain order.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.audit.merkle import (
    GENESIS_BLOCK_HASH,
    block_hash,
    block_head,
    leaf_hash,
    merkle_root,
)
from server.audit.repository import AuditRepository
from server.errors import DatabaseBusy
from server.vault.signing import SigningKeys, sign_block

log = logging.getLogger("custos.audit")

DEFAULT_BLOCK_SIZE = 1024


def iso_utc(value: datetime) -> str:
    """How an instant appears in a block head (UTC, whatever the database handed back)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def _versioned(head: Callable[..., bytes]) -> Callable[[int], bytes]:
    def content(version: int) -> bytes:
        return head(key_version=version)

    return content


@dataclass(frozen=True)
class SealResult:
    blocks: int
    entries: int
    last_block: int


class Sealer:
    def __init__(
        self,
        keys: SigningKeys,
        now: Callable[[], datetime],
        *,
        block_size: int = DEFAULT_BLOCK_SIZE,
    ) -> None:
        self.keys = keys
        self.now = now
        self.block_size = block_size

    async def seal(self, session: AsyncSession) -> SealResult:
        """Seal everything committed and unsealed, in the caller's (write) transaction;
        nothing if another process's sealer holds the lock."""
        repo = AuditRepository(session)
        if not await repo.take_sealer_lock():
            return SealResult(0, 0, 0)
        last = await repo.last_block()
        number = last.number if last is not None else 0
        position = last.last_position if last is not None else 0
        prev = last.hash if last is not None else GENESIS_BLOCK_HASH
        blocks = entries = 0
        sealed_at = self.now().astimezone(UTC)
        while True:
            queue = await repo.unsealed(self.block_size)
            if not queue:
                break
            number += 1
            first = position + 1
            placed = [(entry.id, first + i) for i, entry in enumerate(queue)]
            root = merkle_root(
                [leaf_hash(p, entry.hash) for (_, p), entry in zip(placed, queue, strict=True)]
            ).hex()
            position = placed[-1][1]

            head = functools.partial(
                block_head,
                number=number,
                first_position=first,
                last_position=position,
                merkle_root_hex=root,
                prev_hash=prev,
                sealed_at=iso_utc(sealed_at),
            )
            key_version, signature = sign_block(self.keys, _versioned(head))
            this_hash = block_hash(head(key_version=key_version))
            await repo.seal_entries(number, placed)
            await repo.add_block(
                {
                    "number": number,
                    "first_position": first,
                    "last_position": position,
                    "merkle_root": root,
                    "prev_hash": prev,
                    "hash": this_hash,
                    "sealed_at": sealed_at,
                    "key_version": key_version,
                    "signature": signature,
                }
            )
            prev = this_hash
            blocks += 1
            entries += len(queue)
            if len(queue) < self.block_size:
                break
        if blocks:
            await repo.mark_sealed(sealed_at)
        return SealResult(blocks, entries, number)

    async def seal_pending(
        self,
        sessions: async_sessionmaker[AsyncSession],
        read_sessions: async_sessionmaker[AsyncSession] | None = None,
        turn: Callable[[], AbstractAsyncContextManager[None]] = contextlib.nullcontext,
    ) -> SealResult:
        """One pass: look for unsealed entries in a read transaction first, so an idle
        ledger never takes SQLite's write lock; then seal them in a write transaction
        (in the process's write `turn`)."""
        async with (read_sessions or sessions)() as session:
            if not await AuditRepository(session).has_unsealed():
                return SealResult(0, 0, 0)
        async with turn(), sessions() as session, session.begin():
            return await self.seal(session)

    async def run(
        self,
        sessions: async_sessionmaker[AsyncSession],
        read_sessions: async_sessionmaker[AsyncSession],
        interval: float,
        turn: Callable[[], AbstractAsyncContextManager[None]] = contextlib.nullcontext,
    ) -> None:
        """Seal every `interval` seconds until cancelled (inside each server process)."""
        while True:
            try:
                await self.seal_pending(sessions, read_sessions, turn)
            except (SQLAlchemyError, OSError, TimeoutError, DatabaseBusy) as exc:
                # The next pass retries; requests never wait on the sealer.
                log.warning("audit sealing failed type=%s", type(exc).__name__)
            await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def sealing(
    sealer: Sealer,
    sessions: async_sessionmaker[AsyncSession],
    read_sessions: async_sessionmaker[AsyncSession],
    interval: float,
    turn: Callable[[], AbstractAsyncContextManager[None]] = contextlib.nullcontext,
) -> AsyncIterator[None]:
    """Run the sealer in the background for the lifetime of the block (0: off)."""
    task = (
        asyncio.create_task(sealer.run(sessions, read_sessions, interval, turn))
        if interval > 0
        else None
    )
    try:
        yield None
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
