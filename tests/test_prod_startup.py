"""Prod start-up and credentials: strong HS256 secrets, configuration errors as one line,
a maximum token lifetime, and one Authorization header."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest

from server.config import Settings, load_settings
from server.errors import ConfigError
from tests.conftest import Api


def test_a_short_hs256_secret_is_refused_in_prod(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUSTOS_ENV", "prod")
    monkeypatch.setenv("CUSTOS_JWT_SECRET", "12345")
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert error.value.message == (
        "invalid settings: CUSTOS_JWT_SECRET: Value error, must be at least 32 bytes "
        "when CUSTOS_ENV=prod"
    )
    assert "12345" not in error.value.message
    monkeypatch.setenv("CUSTOS_JWT_SECRET", "x" * 32)
    assert load_settings().jwt_secret is not None
    monkeypatch.setenv("CUSTOS_ENV", "dev")
    monkeypatch.setenv("CUSTOS_JWT_SECRET", "12345")
    assert load_settings().env == "dev"


def test_suggestions_follow_the_environment_unless_set() -> None:
    assert Settings(env="dev").suggestions is True
    assert Settings(env="prod", jwt_secret="x" * 32).suggestions is False
    assert Settings(env="prod", jwt_secret="x" * 32, graphql_suggestions=True).suggestions


@pytest.mark.slow
def test_uvicorn_start_reports_a_bad_setting_in_one_line(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "CUSTOS_ENV": "prod",
        "CUSTOS_JWT_SECRET": "short",
        "CUSTOS_STATE_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-m", "uvicorn", "--factory", "server.app:app_factory", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert lines == [
        "error: invalid settings: CUSTOS_JWT_SECRET: Value error, must be at least 32 bytes "
        "when CUSTOS_ENV=prod"
    ]


def _token(api: Api, **claims: object) -> str:
    now = int(time.time())
    payload: dict[str, object] = {"sub": "agent-1", "roles": ["agent"], "iat": now}
    payload.update(claims)
    return jwt.encode(payload, api.settings.jwt_secret_value(), algorithm="HS256")


async def _code(api: Api, token: str) -> tuple[int, str]:
    response = await api.post("{ me { subject } }", token=token)
    if response.status_code == 200:
        return 200, ""
    return response.status_code, response.json()["errors"][0]["extensions"]["code"]


async def test_token_lifetime_is_bounded(api: Api) -> None:
    now = int(time.time())
    limit = api.settings.max_token_lifetime_seconds
    assert await _code(api, _token(api, exp=10**30)) == (401, "TOKEN_INVALID")
    assert await _code(api, _token(api, exp=now + limit + 60)) == (401, "TOKEN_INVALID")
    # Issued long ago with a long life, still valid for a minute: the lifetime counts.
    old = _token(api, iat=now - 2 * limit, exp=now + 60)
    assert await _code(api, old) == (401, "TOKEN_INVALID")
    no_iat = jwt.encode(
        {"sub": "agent-1", "roles": ["agent"], "exp": now + 600},
        api.settings.jwt_secret_value(),
        algorithm="HS256",
    )
    assert await _code(api, no_iat) == (200, "")
    assert await _code(api, _token(api, exp=now + limit - 60)) == (200, "")


async def test_claims_are_checked_text(api: Api) -> None:
    assert await _code(api, _token(api, exp=int(time.time()) + 60, sub="")) == (
        401,
        "TOKEN_INVALID",
    )
    long_sub = _token(api, exp=int(time.time()) + 60, sub="s" * 1000)
    assert await _code(api, long_sub) == (401, "TOKEN_INVALID")
    bad_role = _token(api, exp=int(time.time()) + 60, roles=["agent\x00"])
    assert await _code(api, bad_role) == (401, "TOKEN_INVALID")


async def test_two_authorization_headers_are_refused(api: Api) -> None:
    token = api.token("agent")
    response = await api.client.post(
        "/graphql",
        json={"query": "{ me { subject } }"},
        headers=[
            ("Accept", "application/json"),
            ("Authorization", f"Bearer {token}"),
            ("Authorization", f"Bearer {api.token('admin')}"),
        ],
    )
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "DUPLICATE_AUTHORIZATION"
    assert "WWW-Authenticate" in response.headers


def test_the_cli_will_not_issue_a_token_it_would_refuse(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from server.cli import invoke

    monkeypatch.setenv("CUSTOS_STATE_DIR", str(tmp_path))
    args = ["token", "--role", "agent", "--subject", "a", "--ttl", str(10**7)]
    assert invoke(args) == 2
    err = capsys.readouterr().err
    assert "CUSTOS_MAX_TOKEN_LIFETIME_SECONDS" in err
