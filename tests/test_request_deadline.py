"""A deadline per request: an operation that runs past it is cancelled, changes nothing,
is audited as an error, and answers `504 REQUEST_TIMEOUT` (not a database outage); the
connection pool stays healthy for the requests after it, on both databases.

The operations here take far longer than the deadline they are given (hundreds of
sealed rows, or a thousand-day daily report, against a few tens of milliseconds).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from starlette.applications import Starlette

from server.app import AppState, create_app
from server.config import Settings
from server.data.models import AuditEvent, Customer
from tests.audit_ledger import AuditLedger
from tests.conftest import Api

DEADLINE = 0.05
IMPORT = """
mutation($rows: [ImportCustomerRowInput!]!) {
  importCustomers(rows: $rows) { accepted createdIds }
}
"""
REPORT = (
    "{ "
    + " ".join(
        f'm{i}: metrics(from: "2023-01-0{i + 1}", to: "2025-09-20", granularity: DAY) '
        "{ total { series { bucket kpis { orders salesTotal } } } }"
        for i in range(8)
    )
    + " }"
)


@pytest.fixture
async def hurried(settings: Settings) -> AsyncIterator[tuple[Api, AppState]]:
    """The app with a short deadline, and the audit ledger checked at the end."""
    short = settings.model_copy(update={"request_timeout_seconds": DEADLINE})
    app: Starlette = create_app(short, migrate=False)
    async with app.router.lifespan_context(app):
        state: AppState = app.state.custos
        ledger = AuditLedger(state)
        await ledger.start()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://custos.test",
            event_hooks={"request": [ledger.tag], "response": [ledger.note]},
        ) as client:
            yield Api(client, short), state
        await ledger.check()


def rows(count: int) -> list[dict[str, Any]]:
    return [
        {"name": f"客户{i}", "phone": f"137{i:08d}", "email": f"c{i}@example.com"}
        for i in range(count)
    ]


async def count(state: AppState, model: Any) -> int:
    async with state.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def assert_timed_out(response: httpx.Response) -> None:
    assert response.status_code == 504, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "REQUEST_TIMEOUT"


async def last_outcome(state: AppState) -> tuple[str, str | None]:
    async with state.sessions() as session:
        event = await session.scalar(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1))
    assert event is not None
    return event.outcome, event.operation_type


async def test_a_mutation_past_the_deadline_changes_nothing_and_is_audited(
    hurried: tuple[Api, AppState],
) -> None:
    api, state = hurried
    manager = api.token("manager", subject="mia", team="east")
    response = await api.post(IMPORT, {"rows": rows(400)}, token=manager)
    assert_timed_out(response)
    assert await count(state, Customer) == 0
    assert await last_outcome(state) == ("error", "mutation")
    # The pool is healthy: with the deadline lifted, the next requests run as usual on
    # the same engine.
    state.settings.request_timeout_seconds = 30
    again = await api.gql(IMPORT, {"rows": rows(1)}, token=manager)
    assert again["data"]["importCustomers"]["accepted"] == 1
    listed = await api.gql("{ customers { totalCount } }", token=manager)
    assert listed["data"] == {"customers": {"totalCount": 1}}


async def test_a_read_past_the_deadline_is_cancelled_and_the_next_one_runs(
    hurried: tuple[Api, AppState],
) -> None:
    api, state = hurried
    analyst = api.token("analyst")
    assert_timed_out(await api.post(REPORT, token=analyst))
    assert await last_outcome(state) == ("error", "query")
    state.settings.request_timeout_seconds = 30
    for _ in range(3):
        body = await api.gql("{ me { subject } }", token=analyst)
        assert body["data"] == {"me": {"subject": "user-analyst"}}
