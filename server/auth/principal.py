"""The authenticated caller, carried through the request."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field

PURPOSES = ("support", "sales", "marketing", "analytics", "compliance")
# The role of whoever runs `custos` commands on the server's host. It counts only for a
# principal of that kind: a token or API key claiming it gets nothing from it.
CLI_OPERATOR_ROLE = "cli_operator"


class PrincipalKind(enum.StrEnum):
    USER = "user"
    API_KEY = "API key"
    CLI_OPERATOR = "CLI operator"


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
    kind: PrincipalKind = PrincipalKind.USER

    @property
    def role_set(self) -> frozenset[str]:
        """The roles the policy decides on."""
        roles = frozenset(self.roles)
        if self.kind is not PrincipalKind.CLI_OPERATOR:
            roles -= {CLI_OPERATOR_ROLE}
        return roles
