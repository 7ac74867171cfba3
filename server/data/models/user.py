"""People who sign in to the console: local accounts and their sessions.

A password is kept only as an Argon2id hash; a session only as the SHA-256 of its
cookie value, so neither a database dump nor a backup lets anyone sign in as anybody.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped

from server.data.base import Base, DataClass, column, new_id, timestamp

PUB, INT = DataClass.PUBLIC, DataClass.INTERNAL


class User(Base):
    """A local account: its name is the subject its sessions act as (like a token's `sub`)."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = column(PUB, Uuid, primary_key=True, default=new_id)
    username: Mapped[str] = column(INT, String(128), unique=True)
    password_hash: Mapped[str] = column(INT, String(256))
    roles: Mapped[list[str]] = column(INT, JSON, default=list)
    team: Mapped[str | None] = column(INT, String(64))
    # The TOTP secret when a second factor is on, wrapped under the key-encryption key
    # (bound to this account's id) like a customer's data key, so a dump or a backup of
    # the database alone mints no codes; `totp_kek_version` is the KEK version it is under.
    totp_sealed: Mapped[bytes | None] = column(INT, LargeBinary)
    totp_kek_version: Mapped[int | None] = column(INT, Integer)
    # Only accounts from before sealing: the Base32 secret in clear, sealed (and cleared)
    # at the account's next sign-in, reset or KEK rotation.
    totp_secret: Mapped[str | None] = column(INT, String(64))
    created_at: Mapped[datetime] = timestamp()
    password_changed_at: Mapped[datetime] = timestamp()
    disabled_at: Mapped[datetime | None] = timestamp()
    last_sign_in_at: Mapped[datetime | None] = timestamp()

    @property
    def has_second_factor(self) -> bool:
        return self.totp_sealed is not None or self.totp_secret is not None


class UserSession(Base):
    """One signed-in browser: the hash of its cookie, its CSRF token, its purpose."""

    __tablename__ = "user_sessions"

    token_hash: Mapped[str] = column(INT, String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = column(
        PUB, Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    csrf_token: Mapped[str] = column(INT, String(64))
    purpose: Mapped[str | None] = column(INT, String(32))
    created_at: Mapped[datetime] = timestamp()
    expires_at: Mapped[datetime] = timestamp()
    last_seen_at: Mapped[datetime] = timestamp()
