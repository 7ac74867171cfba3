"""Accounts and console sessions in the database: the only SQL of `server.users`."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.data.models.user import User, UserSession


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_username(self, username: str) -> User | None:
        result = await self.session.execute(select(User).where(User.username == username))
        return result.scalar_one_or_none()

    async def by_id(self, user_id: uuid.UUID) -> User | None:
        return await self.session.get(User, user_id)

    async def all(self) -> list[User]:
        result = await self.session.execute(select(User).order_by(User.username))
        return list(result.scalars())

    async def with_second_factor(self) -> list[User]:
        """Accounts with a TOTP secret, sealed or (from before sealing) in clear."""
        result = await self.session.execute(
            select(User)
            .where(or_(User.totp_sealed.is_not(None), User.totp_secret.is_not(None)))
            .order_by(User.id)
        )
        return list(result.scalars())

    async def add(self, user: User) -> None:
        self.session.add(user)
        await self.session.flush()

    async def open_session(self, row: UserSession) -> None:
        self.session.add(row)
        await self.session.flush()

    async def session_by_hash(self, token_hash: str) -> tuple[UserSession, User] | None:
        result = await self.session.execute(
            select(UserSession, User)
            .join(User, User.id == UserSession.user_id)
            .where(UserSession.token_hash == token_hash)
        )
        row = result.one_or_none()
        return (row[0], row[1]) if row is not None else None

    async def touch_session(self, token_hash: str, at: datetime) -> None:
        await self.session.execute(
            update(UserSession).where(UserSession.token_hash == token_hash).values(last_seen_at=at)
        )

    async def set_purpose(self, token_hash: str, purpose: str | None) -> None:
        await self.session.execute(
            update(UserSession).where(UserSession.token_hash == token_hash).values(purpose=purpose)
        )

    async def end_session(self, token_hash: str) -> None:
        await self.session.execute(delete(UserSession).where(UserSession.token_hash == token_hash))

    async def end_sessions_of(self, user_id: uuid.UUID) -> None:
        await self.session.execute(delete(UserSession).where(UserSession.user_id == user_id))

    async def end_expired(self, before: datetime) -> None:
        await self.session.execute(delete(UserSession).where(UserSession.expires_at < before))
