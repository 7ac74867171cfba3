"""Operations over real HTTP through the ASGI app: request ids on every answer, liveness
and readiness, Prometheus `/metrics` behind the `metrics` permission, one structured log
line per request, CORS preflights, and which proxies' X-Forwarded-For is believed."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import select, text
from starlette.applications import Starlette

from server.app import AppState, create_app
from server.config import Settings
from server.data.engine import create_engine, create_session_factory
from server.data.models import AuditEvent
from server.observability.logs import JsonFormatter
from tests.conftest import Api
from tests.factories import make_customer

ME = "query Me { me { subject } }"


def _metric(body: str, name: str, **labels: str) -> float:
    """The sum of the samples of `name` with these labels (0 when absent)."""
    total = 0.0
    for line in body.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def _scrape(api: Api) -> str:
    response = await api.client.get(
        "/metrics", headers={"Authorization": f"Bearer {api.token('admin')}"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_every_answer_carries_a_request_id(app: Starlette) -> None:
    async with _client(app) as client:
        answers = [
            await client.get("/healthz"),
            await client.get("/livez"),
            await client.get("/no-such-path"),
            await client.options("/graphql"),
            await client.get("/metrics"),
            await client.post("/graphql", json={"query": ME}),
        ]
    assert [a.status_code for a in answers] == [200, 200, 404, 405, 401, 401]
    ids = [a.headers["x-request-id"] for a in answers]
    assert all(re.fullmatch(r"[0-9a-f]{24}", i) for i in ids)
    assert len(set(ids)) == len(ids)


async def test_a_sane_request_id_is_kept_and_any_other_replaced(app: Starlette) -> None:
    async with _client(app) as client:
        kept = await client.get("/healthz", headers={"X-Request-Id": "trace-42:abc/DEF"})
        assert kept.headers["x-request-id"] == "trace-42:abc/DEF"
        for insane in (b"a b", b"x" * 129, b'quote"', "ünïcode".encode()):
            answer = await client.get("/healthz", headers=[(b"X-Request-Id", insane)])
            assert re.fullmatch(r"[0-9a-f]{24}", answer.headers["x-request-id"])


async def test_livez_and_readyz_answer_ok(api: Api) -> None:
    assert (await api.client.get("/livez")).json() == {"status": "ok"}
    assert (await api.client.get("/readyz")).json() == {"status": "ok"}


async def test_readyz_names_a_missing_keyring_and_an_old_schema(
    api: Api, state: AppState, tmp_path: Path
) -> None:
    state.readiness = dataclasses.replace(state.readiness, keyring=tmp_path / "gone.json")
    head = state.readiness.head
    async with state.sessions() as session, session.begin():
        await session.execute(text("UPDATE alembic_version SET version_num = '0005'"))
    try:
        response = await api.client.get("/readyz")
    finally:
        # The PostgreSQL database outlives the test (tables are emptied, not the version).
        async with state.sessions() as session, session.begin():
            await session.execute(
                text("UPDATE alembic_version SET version_num = :head"), {"head": head}
            )
    assert response.status_code == 503
    reasons = response.json()["reasons"]
    assert any(r.startswith("keyring: ") for r in reasons), reasons
    assert any(r.startswith("migrations: database at 0005") for r in reasons), reasons
    # Liveness is not readiness: the process still answers.
    assert (await api.client.get("/livez")).status_code == 200


async def test_readyz_fails_when_the_database_cannot_commit(
    api: Api, state: AppState, tmp_path: Path
) -> None:
    unreachable = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'no-dir' / 'x.db'}")
    state.readiness = dataclasses.replace(
        state.readiness, sessions=create_session_factory(unreachable)
    )
    response = await api.client.get("/readyz")
    await unreachable.dispose()
    assert response.status_code == 503
    assert response.json()["reasons"][0].startswith("database: a write did not commit")


async def test_metrics_need_the_metrics_permission(api: Api, state: AppState) -> None:
    assert (await api.client.get("/metrics")).status_code == 401
    refused = await api.client.get(
        "/metrics", headers={"Authorization": f"Bearer {api.token('analyst')}"}
    )
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    async with state.sessions() as session:
        event = (
            await session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1))
        ).one()
    assert (event.subject, event.operation_name, event.outcome) == (
        "user-analyst",
        "metrics",
        "denied",
    )
    body = await _scrape(api)
    assert "custos_http_requests_total" in body


async def test_metrics_count_requests_errors_and_refusals(api: Api) -> None:
    before = await _scrape(api)
    token = api.token("agent")
    for _ in range(3):
        assert (await api.post(ME, token=token)).status_code == 200
    invalid = await api.post("query Broken { nope }", token=token)
    assert invalid.status_code == 400
    await api.client.post(
        "/graphql", json={"query": ME}, headers={"Authorization": "Bearer not-a-jwt"}
    )
    after = await _scrape(api)

    def delta(name: str, **labels: str) -> float:
        return _metric(after, name, **labels) - _metric(before, name, **labels)

    assert (
        delta("custos_http_requests_total", endpoint="graphql", operation="Me", status="200") == 3
    )
    assert (
        delta(
            "custos_http_request_duration_seconds_count",
            endpoint="graphql",
            operation="Me",
            status="200",
        )
        == 3
    )
    assert delta("custos_errors_total", code="GRAPHQL_VALIDATION_FAILED") == 1
    assert delta("custos_authentication_failures_total") == 1
    assert "custos_audit_latest_entry_age_seconds" in after
    assert "custos_audit_entries_since_checkpoint" in after
    assert 'custos_db_pool_connections{state="idle"}' in after


async def test_rate_limit_rejections_are_counted(settings: Settings) -> None:
    limited = settings.model_copy(update={"rate_limits": True, "rate_limit_cost": "1/minute"})
    app = create_app(limited, migrate=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.8", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://custos.test") as client:
            api = Api(client, limited)
            before = await _scrape(api)
            token = api.token("agent", subject="limited-agent")
            codes = [(await api.post(ME, token=token)).status_code for _ in range(3)]
            after = await _scrape(api)
    assert 429 in codes
    rejected = codes.count(429)
    assert (
        _metric(after, "custos_rate_limit_rejections_total")
        - _metric(before, "custos_rate_limit_rejections_total")
        == rejected
    )


async def test_one_log_line_per_request_without_values(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="custos.request")
    secret_phone = "13800138000"
    response = await api.client.post(
        "/graphql",
        json={
            "query": "query Lookup($p: String!) { customerByContact(phone: $p) { id } }",
            "variables": {"p": secret_phone},
        },
        headers={
            "Authorization": f"Bearer {api.token('agent', subject='ann')}",
            "X-Purpose": "support",
            "X-Request-Id": "log-line-1",
        },
    )
    assert response.status_code == 200
    lines = [
        orjson.loads(JsonFormatter().format(r))
        for r in caplog.records
        if r.name == "custos.request"
    ]
    [line] = [x for x in lines if x["request_id"] == "log-line-1"]
    assert line["subject"] == "ann"
    assert line["operation_name"] == "Lookup"
    assert line["operation_type"] == "query"
    assert line["status"] == 200
    assert line["cost"] >= 1
    assert line["duration_ms"] >= 0
    assert line["path"] == "/graphql"
    assert secret_phone not in orjson.dumps(lines).decode()


@pytest.fixture
async def configured(settings: Settings) -> AsyncIterator[dict[str, Starlette]]:
    apps = {
        "default": create_app(settings, migrate=False),
        "cors": create_app(
            settings.model_copy(update={"cors_origins": "https://app.example.com"}),
            migrate=False,
        ),
        "proxied": create_app(
            settings.model_copy(update={"trusted_proxies": "127.0.0.1, 10.0.0.0/8"}),
            migrate=False,
        ),
    }
    async with contextlib.AsyncExitStack() as stack:
        for app in apps.values():
            await stack.enter_async_context(app.router.lifespan_context(app))
        yield apps


def _client(app: Starlette, peer: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://custos.test")


async def test_a_browser_preflight_gets_an_answer_for_allowed_origins(
    configured: dict[str, Starlette],
) -> None:
    preflight = {
        "Origin": "https://app.example.com",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, x-purpose",
    }
    async with _client(configured["cors"]) as client:
        allowed = await client.options("/graphql", headers=preflight)
        other = await client.options(
            "/graphql", headers={**preflight, "Origin": "https://evil.example"}
        )
        actual = await client.post(
            "/graphql", json={"query": ME}, headers={"Origin": "https://app.example.com"}
        )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "x-purpose" in allowed.headers["access-control-allow-headers"].lower()
    assert allowed.headers["x-request-id"]
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers
    assert actual.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "x-request-id" in actual.headers["access-control-expose-headers"].lower()
    async with _client(configured["default"]) as client:
        # No origins configured: no CORS answer at all.
        plain = await client.options("/graphql", headers=preflight)
    assert "access-control-allow-origin" not in plain.headers


async def _last_client_addr(app: Starlette) -> str | None:
    state: AppState = app.state.custos
    async with state.sessions() as session:
        return await session.scalar(
            select(AuditEvent.client_addr).order_by(AuditEvent.seq.desc()).limit(1)
        )


async def test_forwarded_addresses_are_believed_only_from_trusted_proxies(
    configured: dict[str, Starlette], settings: Settings
) -> None:
    await make_customer(configured["default"].state.custos)
    api_token = Api(httpx.AsyncClient(), settings).token("agent")
    headers = {"Authorization": f"Bearer {api_token}", "X-Forwarded-For": "203.0.113.99"}
    async with _client(configured["default"]) as client:
        assert (await client.post("/graphql", json={"query": ME}, headers=headers)).is_success
    assert await _last_client_addr(configured["default"]) == "127.0.0.1"
    async with _client(configured["proxied"]) as client:
        assert (await client.post("/graphql", json={"query": ME}, headers=headers)).is_success
    assert await _last_client_addr(configured["proxied"]) == "203.0.113.99"
    async with _client(configured["proxied"], peer="192.0.2.10") as client:
        assert (await client.post("/graphql", json={"query": ME}, headers=headers)).is_success
    assert await _last_client_addr(configured["proxied"]) == "192.0.2.10"
