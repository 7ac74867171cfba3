"""Authentication: every bad credential gets 401 with a stable code, never a 500."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from server.app import AppState, create_app
from server.auth.api_keys import generate_api_key
from server.config import Settings
from server.data.base import utcnow
from server.data.models import ApiKey
from tests.conftest import Api

ME = "{ me { subject roles team } }"


async def _status(api: Api, authorization: str | None) -> tuple[int, str]:
    headers = {"Accept": "application/graphql-response+json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    response = await api.client.post("/graphql", json={"query": ME}, headers=headers)
    code = response.json()["errors"][0]["extensions"]["code"] if response.status_code != 200 else ""
    return response.status_code, code


def _sign(
    claims: dict[str, object], secret: str = "test-secret-with-enough-length-for-hs256"
) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


async def test_valid_token_gives_the_principal(api: Api) -> None:
    body = await api.gql(ME, token=api.token("manager", subject="m-1", team="east"))
    assert body["data"]["me"] == {"subject": "m-1", "roles": ["manager"], "team": "east"}


async def test_missing_credentials(api: Api) -> None:
    headers = {"Accept": "application/json"}
    response = await api.client.post("/graphql", json={"query": ME}, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        ("Basic dXNlcjpwYXNz", "TOKEN_MALFORMED"),
        ("Bearer", "TOKEN_MALFORMED"),
        ("Bearer not-a-jwt", "TOKEN_MALFORMED"),
        ("Bearer " + "a" * 9000, "TOKEN_MALFORMED"),
        ("Bearer ck_000000000000_nope", "API_KEY_INVALID"),
    ],
)
async def test_malformed_credentials(api: Api, authorization: str, code: str) -> None:
    assert await _status(api, authorization) == (401, code)


async def test_expired_token(api: Api) -> None:
    now = int(time.time())
    token = _sign({"sub": "x", "roles": ["agent"], "iat": now - 100, "exp": now - 10})
    assert await _status(api, f"Bearer {token}") == (401, "TOKEN_EXPIRED")


async def test_forged_token(api: Api) -> None:
    token = _sign(
        {"sub": "x", "roles": ["admin"], "exp": int(time.time()) + 60},
        "another-secret-of-enough-length!!",
    )
    assert await _status(api, f"Bearer {token}") == (401, "TOKEN_INVALID")


async def test_unsigned_token_is_refused(api: Api) -> None:
    def b64(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    claims = {"sub": "x", "roles": ["admin"], "exp": int(time.time()) + 60}
    token = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."
    assert await _status(api, f"Bearer {token}") == (401, "TOKEN_INVALID")


@pytest.mark.parametrize(
    "claims",
    [
        {"roles": ["agent"]},
        {"sub": "x", "roles": "admin"},
        {"sub": "x", "roles": ["agent"], "team": 5},
    ],
)
async def test_bad_claims(api: Api, claims: dict[str, object]) -> None:
    token = _sign({**claims, "exp": int(time.time()) + 60})
    assert await _status(api, f"Bearer {token}") == (401, "TOKEN_INVALID")


async def _api_key(state: AppState, **overrides: object) -> str:
    new = generate_api_key()
    async with state.sessions() as session, session.begin():
        values: dict[str, object] = {
            "prefix": new.prefix,
            "key_hash": new.key_hash,
            "name": "partner",
            "roles": ["integrator"],
            "created_by": "test",
        }
        values.update(overrides)
        session.add(ApiKey(**values))
    return new.secret


async def test_api_key_authenticates_as_its_roles(api: Api, state: AppState) -> None:
    secret = await _api_key(state)
    response = await api.post(ME, token=secret)
    me = response.json()["data"]["me"]
    assert me["roles"] == ["integrator"]
    assert me["subject"].startswith("apikey:")


async def test_revoked_and_expired_api_keys(api: Api, state: AppState) -> None:
    revoked = await _api_key(state, revoked_at=utcnow())
    expired = await _api_key(state, expires_at=utcnow() - timedelta(minutes=1))
    assert await _status(api, f"Bearer {revoked}") == (401, "API_KEY_INVALID")
    assert await _status(api, f"Bearer {expired}") == (401, "API_KEY_EXPIRED")
    valid = await _api_key(state)
    tampered = valid[:-4] + ("AAAA" if not valid.endswith("AAAA") else "BBBB")
    assert await _status(api, f"Bearer {tampered}") == (401, "API_KEY_INVALID")


def _rsa_keys(tmp_path: Path) -> tuple[rsa.RSAPrivateKey, Path, Path]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pem_path = tmp_path / "public.pem"
    pem_path.write_bytes(pem)
    jwk = json.loads(RSAAlgorithm.to_jwk(private.public_key()))
    jwk["kid"] = "k1"
    jwks_path = tmp_path / "jwks.json"
    jwks_path.write_text(json.dumps({"keys": [jwk]}))
    return private, pem_path, jwks_path


@pytest.mark.parametrize("source", ["pem", "jwks"])
async def test_rs256_with_public_key_or_jwks(
    settings: Settings, tmp_path: Path, source: str
) -> None:
    private, pem_path, jwks_path = _rsa_keys(tmp_path)
    rs_settings = settings.model_copy(
        update={"jwt_public_key_file": pem_path}
        if source == "pem"
        else {"jwt_jwks_file": jwks_path}
    )
    app = create_app(rs_settings, migrate=False)
    claims = {"sub": "svc", "roles": ["analyst"], "exp": int(time.time()) + 60}
    good = jwt.encode(claims, private, algorithm="RS256", headers={"kid": "k1"})
    # Algorithm confusion: an HS256 token "signed" with the public key must not pass.
    confused = jwt.encode(claims, "test-secret-with-enough-length-for-hs256", algorithm="HS256")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            api = Api(client, rs_settings)
            ok = await api.post(ME, token=good)
            assert ok.json()["data"]["me"]["subject"] == "svc"
            assert await _status(api, f"Bearer {confused}") == (401, "TOKEN_INVALID")
