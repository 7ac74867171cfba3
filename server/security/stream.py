"""Refusals that happen before any operation runs: failed authentication, bad purpose.

Each is a structured log line (code, client address, request id: never a token or a
header value), a counter (`server/counters.py`) and one more count in its bucket of the
`security_events` table, in its own short transaction outside the audit chain. A
database that cannot take the count costs the line in the table, not the answer.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.counters import AUTHENTICATION_FAILURES, BAD_PURPOSES
from server.security.repository import SecurityRepository

log = logging.getLogger("custos.security")
BAD_PURPOSE = "BAD_PURPOSE"
UNKNOWN_CLIENT = "-"


async def record_refusal(
    sessions: async_sessionmaker[AsyncSession],
    *,
    code: str,
    client_addr: str | None,
    request_id: str,
    at: datetime,
) -> None:
    """Log, count and store one refusal of a request nobody was authenticated for."""
    client = (client_addr or UNKNOWN_CLIENT)[:64]
    code = code[:32]
    request_id = request_id[:64]
    log.warning("security refusal code=%s client=%s request_id=%s", code, client, request_id)
    if code == BAD_PURPOSE:
        BAD_PURPOSES.inc()
    else:
        AUTHENTICATION_FAILURES.inc(code)
    try:
        async with sessions() as session, session.begin():
            await SecurityRepository(session).count(
                minute=at.replace(second=0, microsecond=0),
                client_addr=client,
                code=code,
                at=at,
                request_id=request_id,
            )
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        log.error(
            "security stream unavailable request_id=%s type=%s", request_id, type(exc).__name__
        )
