"""The security stream: refusals that happen before any operation runs.

Failed authentications and bad `X-Purpose` headers come from callers nobody knows yet,
so they stay out of the chained audit trail (an anonymous flood must not be able to load
the chain, whose appends are serialised). They are counted instead, one row per client
address, code and minute: a flood grows a counter, never the table.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped

from server.data.base import Base, DataClass, column, timestamp

INT = DataClass.INTERNAL


class SecurityEvent(Base):
    """How many requests from one client address were refused with one code in one
    minute, and the last one's request id (to find its log line)."""

    __tablename__ = "security_events"

    minute: Mapped[datetime] = timestamp(primary_key=True)
    client_addr: Mapped[str] = column(INT, String(64), primary_key=True)
    code: Mapped[str] = column(INT, String(32), primary_key=True)
    count: Mapped[int] = column(INT, BigInteger)
    last_at: Mapped[datetime] = timestamp()
    last_request_id: Mapped[str | None] = column(INT, String(64))
