"""Checks, for every API test, that each executed request left exactly one audit event.

The `api` fixture's HTTP client tags each request with a fresh `X-Request-Id` and notes
every response. At teardown the new audit events are matched to the requests by request
id: a request that reached GraphQL execution (200, a 400 GraphQL request error, or a 504
cancelled at the request deadline) must have exactly one event; one turned away before
execution (401, 405, 413, 415, 429, 503 ...) must have none; and the whole chain must
verify.
"""

from __future__ import annotations

import uuid
from collections import Counter

import httpx
from sqlalchemy import or_, select

from server.app import AppState
from server.audit.verify import verify_ledger
from server.data.models import AuditEvent

EXECUTED_400_CODES = {
    "GRAPHQL_PARSE_FAILED",
    "GRAPHQL_VALIDATION_FAILED",
    "BAD_USER_INPUT",
    "QUERY_TOO_COSTLY",
}


class AuditLedger:
    def __init__(self, state: AppState) -> None:
        self.state = state
        self.start_seq = 0
        self.executed: Counter[str] = Counter()
        self.turned_away: set[str] = set()
        # Only events for requests this client issued are matched: tests that drive other
        # server processes against the same database add events of their own.
        self.prefix = f"test-{uuid.uuid4().hex[:8]}-"

    async def start(self) -> None:
        async with self.state.sessions() as session:
            self.start_seq = int(
                await session.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc())) or 0
            )

    async def tag(self, request: httpx.Request) -> None:
        if "x-request-id" not in request.headers:
            request.headers["X-Request-Id"] = f"{self.prefix}{uuid.uuid4().hex[:20]}"

    async def note(self, response: httpx.Response) -> None:
        # The audit keeps the first 64 characters of a request id.
        request_id = response.request.headers["x-request-id"][:64]
        if response.request.url.path == "/metrics":
            # A scrape refused by the policy is an audited decision; nothing else is.
            if response.status_code == 403:
                self.executed[request_id] += 1
            else:
                self.turned_away.add(request_id)
            return
        if response.request.url.path != "/graphql":
            return
        await response.aread()
        if _reached_execution(response):
            self.executed[request_id] += 1
        else:
            self.turned_away.add(request_id)

    async def check(self) -> None:
        # Seal what the test left unsealed: every test's entries also go through the sealer.
        await self.state.sealer.seal_pending(self.state.sessions)
        async with self.state.sessions() as session:
            rows = (
                await session.execute(
                    select(AuditEvent.request_id).where(
                        AuditEvent.seq > self.start_seq,
                        or_(
                            AuditEvent.request_id.startswith(self.prefix, autoescape=True),
                            AuditEvent.request_id.in_(
                                list(self.executed | Counter(self.turned_away))
                            ),
                        ),
                    )
                )
            ).all()
            recorded = Counter(str(row.request_id) for row in rows)
            report = await verify_ledger(session, self.state.services.audit.signer)
        missing = {rid: n for rid, n in self.executed.items() if recorded[rid] != n}
        assert not missing, f"executed requests without exactly one audit event: {missing}"
        unexpected = {rid for rid in recorded if rid not in self.executed}
        assert not unexpected, f"audit events for requests that never executed: {unexpected}"
        assert sum(recorded.values()) == sum(self.executed.values())
        assert report.ok, report.problem.describe() if report.problem else ""


def _reached_execution(response: httpx.Response) -> bool:
    if not response.headers.get("content-type", "").startswith("application/"):
        return False
    if response.status_code == 200:
        # Automatic Persisted Queries: "send the text" answers run nothing.
        return "no-cache" not in response.headers.get("cache-control", "")
    if response.status_code not in (400, 504):
        return False
    try:
        errors = response.json().get("errors") or []
    except ValueError:
        return False
    codes = {e.get("extensions", {}).get("code") for e in errors}
    if response.status_code == 504:
        # A cancelled operation is audited (outcome error) in a transaction of its own.
        return codes == {"REQUEST_TIMEOUT"}
    return bool(codes) and codes <= EXECUTED_400_CODES
