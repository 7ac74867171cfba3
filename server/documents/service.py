"""Registering trusted documents: the operator's `document`/`manage` right, audited."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from server.caller import Caller
from server.documents.manifest import operation_name
from server.documents.repository import TrustedDocumentRepository


async def register(
    session: AsyncSession, caller: Caller, documents: Mapping[str, str], *, at: datetime
) -> tuple[int, int]:
    """Register `documents` (by SHA-256); returns (newly registered, already known)."""
    caller.gate.require("document", "manage")
    repository = TrustedDocumentRepository(session)
    known = await repository.known(list(documents))
    fresh = [
        (digest, text, operation_name(text))
        for digest, text in documents.items()
        if digest not in known
    ]
    await repository.add(fresh, at=at, by=caller.principal.subject)
    return len(fresh), len(known)


async def listed(session: AsyncSession, caller: Caller) -> list[tuple[str, str | None, datetime]]:
    caller.gate.require("document", "manage")
    return await TrustedDocumentRepository(session).listed()
