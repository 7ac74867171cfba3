"""The caller of a domain operation: who, what the policy lets them do, what they touched."""

from __future__ import annotations

from dataclasses import dataclass

from server.audit.recorder import AuditRecorder
from server.auth.principal import Principal
from server.authz.authorizer import AccessDecisions


@dataclass(slots=True)
class Caller:
    principal: Principal
    access: AccessDecisions
    audit: AuditRecorder
