"""Name tokens: truncated keyed HMACs of the parts of a customer's name, for name search.

Not a fact about anyone: a search handle, like the contacts' blind indexes. Never read
through the API, never exported, deleted on erasure.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped

from server.data.base import Base, DataClass, column

INT = DataClass.INTERNAL


class CustomerNameToken(Base):
    """One token of one customer's name under one blind-index key version."""

    __tablename__ = "customer_name_tokens"
    __table_args__ = (Index("ix_customer_name_tokens_lookup", "kind", "token", "key_version"),)

    customer_id: Mapped[uuid.UUID] = column(
        INT, Uuid, ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    # `full`, `word` or `surname` (server/vault/names.py): each kind has its own width.
    kind: Mapped[str] = column(INT, String(8), primary_key=True)
    token: Mapped[int] = column(INT, Integer, primary_key=True)
    key_version: Mapped[int] = column(INT, Integer, primary_key=True)

    @staticmethod
    def rows(
        customer_id: uuid.UUID, tokens: Iterable[tuple[str, int]], key_version: int
    ) -> list[dict[str, Any]]:
        """Insertable rows for one customer's (kind, token) pairs under one key version."""
        return [
            {"customer_id": customer_id, "kind": kind, "token": token, "key_version": key_version}
            for kind, token in sorted(set(tokens))
        ]
