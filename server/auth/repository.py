"""API key lookups."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.api_keys import matches, parse_prefix
from server.auth.principal import Principal, PrincipalKind
from server.data.models import ApiKey
from server.errors import AuthenticationError


class ApiKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def authenticate(self, secret: str, now: datetime) -> Principal:
        prefix = parse_prefix(secret)
        key = None
        if prefix is not None:
            key = await self.session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
        # One message for unknown, wrong and revoked keys: nothing to probe.
        if key is None or not matches(secret, key.key_hash) or key.revoked_at is not None:
            raise AuthenticationError("API key is invalid or revoked", code="API_KEY_INVALID")
        if key.expires_at is not None and key.expires_at <= now:
            raise AuthenticationError("API key has expired", code="API_KEY_EXPIRED")
        await self.session.execute(
            update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now)
        )
        return Principal(
            subject=f"apikey:{key.id}",
            roles=tuple(key.roles),
            team=key.team,
            api_key_id=key.id,
            kind=PrincipalKind.API_KEY,
        )

    async def add(self, key: ApiKey) -> None:
        self.session.add(key)
        await self.session.flush()

    async def get(self, key_id: uuid.UUID) -> ApiKey | None:
        return await self.session.get(ApiKey, key_id)

    async def list(self) -> Sequence[ApiKey]:
        return (await self.session.scalars(select(ApiKey).order_by(ApiKey.created_at))).all()

    async def revoke(self, key_id: uuid.UUID, at: datetime) -> None:
        await self.session.execute(update(ApiKey).where(ApiKey.id == key_id).values(revoked_at=at))
