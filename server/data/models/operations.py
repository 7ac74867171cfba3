"""Tables of the server's own operation, holding no customer data."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped

from server.data.base import Base, DataClass, column, timestamp

INT = DataClass.INTERNAL


class ReadinessProbe(Base):
    """One row `/readyz` rewrites: proof that a transaction can still commit (a full
    disk or a read-only database fails here before it fails a request's audit)."""

    __tablename__ = "readiness_probe"

    id: Mapped[int] = column(INT, Integer, primary_key=True, autoincrement=False)
    checked_at: Mapped[datetime] = timestamp()


class TrustedDocument(Base):
    """A GraphQL document registered to run in trusted-documents mode, by the SHA-256
    of its text (README "Persisted documents")."""

    __tablename__ = "trusted_documents"

    sha256: Mapped[str] = column(INT, String(64), primary_key=True)
    document: Mapped[str] = column(INT, Text)
    operation_name: Mapped[str | None] = column(INT, String(128))
    added_at: Mapped[datetime] = timestamp()
    added_by: Mapped[str] = column(INT, String(128))
