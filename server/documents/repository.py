"""The trusted documents registered in the database (`custos documents add`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.data.models import TrustedDocument


class TrustedDocumentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def document(self, sha256: str) -> str | None:
        found: str | None = await self.session.scalar(
            select(TrustedDocument.document).where(TrustedDocument.sha256 == sha256)
        )
        return found

    async def known(self, hashes: Sequence[str]) -> set[str]:
        rows = await self.session.scalars(
            select(TrustedDocument.sha256).where(TrustedDocument.sha256.in_(list(hashes)))
        )
        return set(rows)

    async def add(
        self, documents: Sequence[tuple[str, str, str | None]], *, at: datetime, by: str
    ) -> None:
        for sha256, document, name in documents:
            self.session.add(
                TrustedDocument(
                    sha256=sha256, document=document, operation_name=name, added_at=at, added_by=by
                )
            )
        await self.session.flush()

    async def listed(self) -> list[tuple[str, str | None, datetime]]:
        rows = await self.session.execute(
            select(
                TrustedDocument.sha256, TrustedDocument.operation_name, TrustedDocument.added_at
            ).order_by(TrustedDocument.added_at, TrustedDocument.sha256)
        )
        return [(row[0], row[1], row[2]) for row in rows]
