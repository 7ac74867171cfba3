"""A database that cannot be reached gives a clean 503 with a code, never a 500 or a trace."""

from __future__ import annotations

from pathlib import Path

import httpx

from server.app import create_app
from server.config import Settings
from tests.conftest import Api


async def test_unreachable_database_is_503(tmp_path: Path, keyring_path: Path) -> None:
    settings = Settings(
        database_url="postgresql://postgres@127.0.0.1:1/nowhere",
        keyring=keyring_path,
        jwt_secret="test-secret-with-enough-length-for-hs256",
        state_dir=tmp_path,
    )
    # No lifespan: start-up would fail on the same database; the handler must still cope.
    app = create_app(settings, migrate=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        api = Api(client, settings)
        response = await api.post("{ customers { totalCount } }", token=api.token("agent"))
        health = await client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["errors"][0]["extensions"]["code"] == "DATABASE_UNAVAILABLE"
    assert "Traceback" not in response.text
    assert "127.0.0.1" not in response.text
    assert health.status_code == 503
