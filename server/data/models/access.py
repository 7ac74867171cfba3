"""Access-control state: casbin rules, role assignments, API keys, the policy version."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Integer, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped

from server.data.base import Base, DataClass, column, new_id, timestamp, utcnow

PUB, INT = DataClass.PUBLIC, DataClass.INTERNAL


class PolicyRule(Base):
    """One casbin rule line (`p, ...` or `g, ...`)."""

    __tablename__ = "policy_rules"
    __table_args__ = (UniqueConstraint("ptype", "v0", "v1", "v2", "v3", "v4", "v5"),)

    id: Mapped[int] = column(INT, Integer, primary_key=True, autoincrement=True)
    ptype: Mapped[str] = column(INT, String(8))
    v0: Mapped[str] = column(INT, String(128), default="")
    v1: Mapped[str] = column(INT, String(128), default="")
    v2: Mapped[str] = column(INT, String(128), default="")
    v3: Mapped[str] = column(INT, String(128), default="")
    v4: Mapped[str] = column(INT, String(128), default="")
    v5: Mapped[str] = column(INT, String(128), default="")


class PolicyVersion(Base):
    """A single row bumped on every policy change; workers poll it to reload."""

    __tablename__ = "policy_version"

    id: Mapped[int] = column(INT, Integer, primary_key=True)
    version: Mapped[int] = column(INT, Integer, default=0)
    changed_at: Mapped[datetime] = timestamp(default=utcnow)


class RoleAssignment(Base):
    """A subject (user or API key) holding a role beyond what its token claims."""

    __tablename__ = "role_assignments"
    __table_args__ = (UniqueConstraint("subject", "role"),)

    id: Mapped[uuid.UUID] = column(PUB, Uuid, primary_key=True, default=new_id)
    subject: Mapped[str] = column(INT, String(128), index=True)
    role: Mapped[str] = column(INT, String(64))
    assigned_at: Mapped[datetime] = timestamp(default=utcnow)
    assigned_by: Mapped[str] = column(INT, String(128))


class ApiKey(Base):
    """An integrator key: only a hash is stored; the secret is shown once at creation."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = column(PUB, Uuid, primary_key=True, default=new_id)
    prefix: Mapped[str] = column(INT, String(16), unique=True)
    key_hash: Mapped[str] = column(INT, String(128))
    name: Mapped[str] = column(INT, String(128))
    roles: Mapped[list[str]] = column(INT, JSON, default=list)
    team: Mapped[str | None] = column(INT, String(64))
    created_at: Mapped[datetime] = timestamp(default=utcnow)
    created_by: Mapped[str] = column(INT, String(128))
    expires_at: Mapped[datetime | None] = timestamp()
    revoked_at: Mapped[datetime | None] = timestamp()
    last_used_at: Mapped[datetime | None] = timestamp()
