"""Liveness and readiness.

`/livez`: the process answers. `/readyz`: it can do its work — the database commits (a
request's audit entry would), the keyring reads, and the schema is at the migration this
code ships. Each failed check is a reason in the 503 answer (names and error types only).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.clock import Clock
from server.data.readiness import commit_probe, schema_revision
from server.errors import ConfigError
from server.vault.keyring import LocalKeyring

CHECK_SECONDS = 5.0
_DATABASE_ERRORS = (SQLAlchemyError, OSError, TimeoutError)


@dataclass(frozen=True)
class Readiness:
    sessions: async_sessionmaker[AsyncSession]
    clock: Clock
    keyring: Path
    head: str | None

    async def problems(self) -> list[str]:
        """Why this process is not ready; empty when it is."""
        reasons: list[str] = []
        try:
            async with asyncio.timeout(CHECK_SECONDS):
                await commit_probe(self.sessions, self.clock.now())
        except _DATABASE_ERRORS as exc:
            reasons.append(f"database: a write did not commit ({type(exc).__name__})")
        try:
            async with asyncio.timeout(CHECK_SECONDS):
                revision = await schema_revision(self.sessions)
        except _DATABASE_ERRORS as exc:
            reasons.append(f"migrations: revision unreadable ({type(exc).__name__})")
        else:
            if revision != self.head:
                reasons.append(
                    f"migrations: database at {revision or 'none'}, code at {self.head}"
                    " (run custos migrate)"
                )
        try:
            await asyncio.to_thread(LocalKeyring.load, self.keyring, create=False)
        except ConfigError as error:
            reasons.append(f"keyring: {error.message}")
        return reasons
