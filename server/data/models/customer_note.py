"""Free-text notes on customer files (备注): every version kept, each sealed."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped

from server.data.base import Base, DataClass, column, new_id, timestamp

PUB, INT, PER = DataClass.PUBLIC, DataClass.INTERNAL, DataClass.PERSONAL


class CustomerNote(Base):
    """One version of one note: who wrote it and when, the text sealed under the
    customer's data key. A note's current text is its highest version; nothing is
    overwritten, so the history is the note's rows in version order."""

    __tablename__ = "customer_notes"
    __table_args__ = (UniqueConstraint("note_id", "version"),)

    id: Mapped[uuid.UUID] = column(PUB, Uuid, primary_key=True, default=new_id)
    note_id: Mapped[uuid.UUID] = column(PUB, Uuid, index=True)
    customer_id: Mapped[uuid.UUID] = column(
        INT, Uuid, ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int] = column(INT, Integer)
    body: Mapped[bytes] = column(PER, LargeBinary)
    written_at: Mapped[datetime] = timestamp()
    written_by: Mapped[str] = column(INT, String(128))
