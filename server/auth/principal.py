"""The authenticated caller, carried through the request."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

PURPOSES = ("support", "sales", "marketing", "analytics", "compliance")


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    roles: tuple[str, ...]
    team: str | None = None
    api_key_id: uuid.UUID | None = None
    purpose: str | None = None
    client_addr: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def role_set(self) -> frozenset[str]:
        return frozenset(self.roles)
