"""Attack 5: a token became an API key.

The casbin subject was built from strings: a JWT with `sub: "apikey:<id>"` got the key's
rules (or, used first after a reload, cut the real key off); `custos token` minted such a
token; an empty `sub` was accepted and then failed the audit insert (503).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from server.cli import invoke
from server.config import Settings
from tests.conftest import Api

CREATE_KEY = """
mutation { createApiKey(input: {name: "sync", roles: ["integrator"]}) {
  ... on ApiKeyCreated { secret apiKey { id subject } } } }
"""
ADD = """
mutation($subject: String!) {
  addPolicy(input: {subject: $subject, object: "audit", action: "read"}) { __typename }
}
"""
AUDIT = "{ auditEvents(first: 1) { totalCount } }"


def _forged(settings: Settings, subject: Any, roles: list[str]) -> str:
    """A correctly signed token with any `sub` at all (not through `issue_token`)."""
    now = int(time.time())
    claims = {"sub": subject, "roles": roles, "iat": now, "exp": now + 600}
    return jwt.encode(claims, settings.jwt_secret_value(), algorithm="HS256")


async def test_a_token_naming_an_api_key_gets_nothing_and_cuts_nothing_off(
    api: Api, settings: Settings
) -> None:
    admin = api.token("admin", subject="root")
    created = (await api.gql(CREATE_KEY, token=admin))["data"]["createApiKey"]
    key_subject, secret = created["apiKey"]["subject"], created["secret"]
    added = await api.gql(ADD, {"subject": key_subject}, token=admin)
    assert added["data"]["addPolicy"]["__typename"] == "PolicyAdded"

    # The forged token goes first (a fresh process memo), then the real key.
    forged = _forged(settings, key_subject, ["integrator"])
    response = await api.post(AUDIT, token=forged)
    assert response.status_code == 401, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "TOKEN_INVALID"
    real = await api.gql(AUDIT, token=secret)
    assert "errors" not in real, real


@pytest.mark.parametrize(
    "subject",
    [
        "",
        "   ",
        "apikey:6f1c0b7e-0000-4000-8000-000000000001",
        "user:ann",
        "cli:root",
        "principal:root|admin",
        "ann\x00admin",
        "ann\nadmin",
        "ann\u202eadmin",
        "a" * 129,
    ],
)
async def test_reserved_empty_or_unprintable_subjects_are_refused(
    api: Api, settings: Settings, subject: Any
) -> None:
    response = await api.post(AUDIT, token=_forged(settings, subject, ["compliance"]))
    assert response.status_code == 401, (subject, response.text)
    assert response.json()["errors"][0]["extensions"]["code"] == "TOKEN_INVALID"


def test_custos_token_refuses_to_mint_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CUSTOS_JWT_SECRET", "test-secret-with-enough-length-for-hs256")
    monkeypatch.setenv("CUSTOS_STATE_DIR", str(tmp_path))
    for subject in ("apikey:6f1c0b7e-0000-4000-8000-000000000001", "cli:root", "", "a b"):
        assert invoke(["token", "--role", "agent", "--subject", subject]) == 2, subject
        assert "eyJ" not in capsys.readouterr().out
    assert invoke(["token", "--role", "agent", "--subject", "agent-1"]) == 0
    assert capsys.readouterr().out.startswith("eyJ")
