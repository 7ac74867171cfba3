"""The per-request GraphQL context, built by the HTTP edge."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, AsyncSessionTransaction

from server.caller import Caller
from server.errors import CustosError
from server.services import Services


@dataclass
class GraphQLContext:
    session: AsyncSession
    caller: Caller
    services: Services
    max_page_size: int
    # Per-request memo for loaders keyed by name.
    loaders: dict[str, Any] = field(default_factory=dict)
    # Filled by the OperationCapture extension once the document is parsed.
    operation_type: str = "unknown"
    operation_name: str | None = None
    # A mutation's changes, in one savepoint the edge rolls back if any of the document's
    # mutations fails unexpectedly; opened by OperationCapture for mutations only (a read
    # changes nothing and pays no SAVEPOINT/RELEASE).
    data_changes: AsyncSessionTransaction | None = None
    # Set by the HTTP edge: charges an operation's (cost, lookups) to the caller's rate
    # limits once it is known and before anything runs; answers the refusal or None.
    admit: Callable[[int, int], Awaitable[CustosError | None]] | None = None
    # Root mutations answered with a `UserError` because the gate refused them (an
    # out-of-scope NOT_FOUND, OUT_OF_SCOPE): the edge audits the request as denied.
    refused_results: int = 0
