"""The outermost layer of every HTTP answer: a request id, one log line, its metrics.

`RequestLayer` wraps the whole application (404s, CORS preflights and crashes included):
it takes a sane `X-Request-Id` from the client or makes one, puts it on the response,
and when the answer is sent writes one line (`custos.request`) and the request metrics.
The GraphQL edge fills in what only it knows (subject, operation, cost, error codes) on
the `RequestRecord` it finds in the ASGI scope. Never a value: ids, names and numbers.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.observability import metrics
from server.observability.tracing import request_span

log = logging.getLogger("custos.request")

SCOPE_KEY = "custos.request"
# Printable, no spaces or quotes: safe in a log line and a header, and long enough for a
# UUID or a trace id with a prefix. Anything else is replaced by one of ours.
_SANE_ID = re.compile(r"[A-Za-z0-9._:/+=@-]{1,128}")
_INTERNAL_ERROR = orjson.dumps(
    {
        "errors": [
            {"message": "Internal server error", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}
        ]
    }
)


def new_request_id() -> str:
    return secrets.token_hex(12)


def accepted_request_id(incoming: str | None) -> str:
    """The client's `X-Request-Id` when it is sane, else a new one."""
    if incoming is not None and _SANE_ID.fullmatch(incoming):
        return incoming
    return new_request_id()


@dataclass
class RequestRecord:
    """What one request's log line and metrics say; filled as the request goes."""

    request_id: str
    method: str
    path: str
    started: float = field(default_factory=time.perf_counter)
    status: int = 0
    subject: str | None = None
    operation_type: str | None = None
    operation_name: str | None = None
    cost: int | None = None
    error_codes: list[str] = field(default_factory=list)

    def fields(self, duration: float) -> dict[str, Any]:
        line: dict[str, Any] = {
            "request_id": self.request_id,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "duration_ms": round(duration * 1000, 2),
        }
        for name in ("subject", "operation_type", "operation_name", "cost"):
            value = getattr(self, name)
            if value is not None:
                line[name] = value
        if self.error_codes:
            line["error_codes"] = sorted(set(self.error_codes))
        return line


def record_of(scope: Scope) -> RequestRecord | None:
    record = scope.get(SCOPE_KEY)
    return record if isinstance(record, RequestRecord) else None


# Paths whose requests are not worth a line each (probes and scrapes, every few seconds).
_QUIET_PATHS = frozenset({"/livez", "/readyz", "/healthz", "/metrics"})


class RequestLayer:
    """Pure ASGI middleware; see the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        record = RequestRecord(
            request_id=accepted_request_id(headers.get("x-request-id")),
            method=scope["method"],
            path=scope["path"],
        )
        scope[SCOPE_KEY] = record
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                record.status = message["status"]
                MutableHeaders(scope=message)["X-Request-Id"] = record.request_id
            await send(message)

        try:
            with request_span(scope, record):
                await self.app(scope, receive, send_with_id)
        except Exception:
            record.status = 500
            record.error_codes.append("INTERNAL_SERVER_ERROR")
            if not started:
                await send_with_id(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send_with_id({"type": "http.response.body", "body": _INTERNAL_ERROR})
            raise
        finally:
            self._finish(record)

    @staticmethod
    def _finish(record: RequestRecord) -> None:
        duration = time.perf_counter() - record.started
        metrics.observe_request(record, duration)
        if record.path in _QUIET_PATHS and record.status < 500:
            return
        level = logging.ERROR if record.status >= 500 else logging.INFO
        log.log(level, "request", extra={"custos": record.fields(duration)})
