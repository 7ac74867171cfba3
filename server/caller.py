"""The caller of a domain operation: who, the gate that answers for them, what they touched."""

from __future__ import annotations

from dataclasses import dataclass

from server.audit.recorder import AuditRecorder
from server.auth.principal import Principal
from server.authz.authorizer import Authorizer
from server.authz.gate import Gate


@dataclass(frozen=True, slots=True)
class Caller:
    """Made by `caller_for`: the gate records its denials on this caller's `audit`."""

    principal: Principal
    gate: Gate
    audit: AuditRecorder


def caller_for(
    principal: Principal, authorizer: Authorizer, audit: AuditRecorder | None = None
) -> Caller:
    """The one way to make a caller: the HTTP edge per request, CLI commands per command.

    Decisions come from `authorizer` (refreshed by whoever holds the session) and are
    memoised for this caller; the gate and the caller share one audit recorder (the
    command's own, when a CLI command passes it).
    """
    audit = audit or AuditRecorder(principal)
    return Caller(
        principal=principal, gate=Gate(authorizer.decisions(principal), audit), audit=audit
    )
