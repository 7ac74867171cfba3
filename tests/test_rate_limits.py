"""Rate limits per principal: query cost, lookups by contact, failed sign-ins per address.

Each runs on both storages: in this process and in Redis (127.0.0.1:6379, where several
instances share the counters). With CI=true an unreachable Redis fails the run instead
of skipping. Counters are keyed by fresh subjects and addresses, so parallel runs
sharing one Redis never meet.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from server.app import create_app
from server.config import Settings
from tests.conftest import IN_CI, Api, Database

REDIS = ("127.0.0.1", 6379)
CHEAP = "{ me { subject } }"
# customers (1) + nodes (1 + 20) + pageInfo (1) = 23.
PAGE = "{ customers { nodes { id } pageInfo { hasNextPage } } }"


def redis_reachable() -> bool:
    try:
        with socket.create_connection(REDIS, timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(params=["memory", "redis"])
def storage(request: pytest.FixtureRequest) -> str | None:
    if request.param == "memory":
        return None
    if not redis_reachable():
        message = f"Redis is not reachable at {REDIS[0]}:{REDIS[1]}"
        if IN_CI:
            pytest.fail(message + " (CI=true: the Redis storage must be tested)")
        pytest.skip(message)
    return f"redis://{REDIS[0]}:{REDIS[1]}/0"


@pytest.fixture
def settings(
    database: Database, keyring_path: Path, tmp_path: Path, storage: str | None
) -> Settings:
    return Settings(
        env="dev",
        database_url=database.url,
        keyring=keyring_path,
        jwt_secret="test-secret-with-enough-length-for-hs256",
        state_dir=tmp_path / "state",
        rate_limits=True,
        rate_limit_cost="50/minute",
        rate_limit_lookups="3/minute",
        rate_limit_failed_auth="3/minute",
        redis_url=storage,
    )


def fresh(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:12]}"


def assert_limited(response: httpx.Response, limit: int, remaining: int) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert response.headers["RateLimit-Limit"] == str(limit)
    assert response.headers["RateLimit-Remaining"] == str(remaining)
    assert 0 <= int(response.headers["RateLimit-Reset"]) <= 60
    assert response.headers["RateLimit-Policy"] == f"{limit};w=60"


async def test_the_cost_bucket_refuses_a_subject_past_its_budget(api: Api) -> None:
    token = api.token("agent", subject=fresh("busy"))
    first = await api.post(PAGE, token=token)
    assert first.status_code == 200
    assert first.json()["extensions"]["cost"]["requested"] == 23
    assert first.headers["RateLimit-Limit"] == "50"
    assert first.headers["RateLimit-Remaining"] == "27"
    second = await api.post(PAGE, token=token)
    assert second.headers["RateLimit-Remaining"] == "4"
    # 23 more would overdraw the 4 left: refused before it runs, and not audited (the
    # ledger checks the 429 left no event).
    assert_limited(await api.post(PAGE, token=token), 50, 4)
    # What is left still pays for something cheaper.
    assert (await api.post(CHEAP, token=token)).status_code == 200
    # Another subject has a bucket of its own.
    other = await api.post(PAGE, token=api.token("agent", subject=fresh("calm")))
    assert other.status_code == 200
    assert other.headers["RateLimit-Remaining"] == "27"


async def test_a_query_costlier_than_the_whole_bucket_never_empties_it(api: Api) -> None:
    token = api.token("agent", subject=fresh("greedy"))
    big = "{ customers(first: 100) { nodes { id } } }"
    assert_limited(await api.post(big, token=token), 50, 50)
    assert (await api.post(PAGE, token=token)).headers["RateLimit-Remaining"] == "27"


async def test_contact_lookups_have_a_stricter_bucket(api: Api) -> None:
    token = api.token("agent", subject=fresh("prober"))
    lookup = '{ customerByContact(phone: "13800000000") { id } }'
    for _ in range(3):
        response = await api.post(lookup, token=token)
        assert response.status_code == 200, response.text
    assert_limited(await api.post(lookup, token=token), 3, 0)
    # Aliases count one lookup each: four in one document are refused at once.
    many = (
        "{ "
        + " ".join(f'c{i}: customerByContact(phone: "1380000000{i}") {{ id }}' for i in range(4))
        + " }"
    )
    assert_limited(await api.post(many, token=api.token("agent", subject=fresh("p2"))), 3, 3)
    # A lookup by WeChat ID takes from the same bucket as one by phone.
    mixed = (
        '{ a: customerByContact(wechat: "zhang_san-1988") { id } '
        'b: customerByContact(phone: "13800000000") { id } }'
    )
    token = api.token("agent", subject=fresh("p3"))
    assert (await api.post(mixed, token=token)).status_code == 200
    assert_limited(await api.post(mixed, token=token), 3, 1)


@pytest.fixture
async def app_with_limits(settings: Settings) -> AsyncIterator[Starlette]:
    application = create_app(settings, migrate=False)
    async with application.router.lifespan_context(application):
        yield application


async def test_failed_authentication_is_limited_per_client_address(
    app_with_limits: Starlette, settings: Settings
) -> None:
    address = f"2001:db8::{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}"
    transport = httpx.ASGITransport(app=app_with_limits, client=(address, 50000))
    api = None
    async with httpx.AsyncClient(transport=transport, base_url="http://custos.test") as client:
        api = Api(client, settings)
        for _ in range(3):
            assert (await api.post(CHEAP, token="not-a-token")).status_code == 401
        # The address is refused before any credential is looked at, even a good one.
        assert_limited(await api.post(CHEAP, token=api.token("agent")), 3, 0)
        # Another address signs in as usual.
    other = httpx.ASGITransport(app=app_with_limits, client=("2001:db8::1:2", 50000))
    async with httpx.AsyncClient(transport=other, base_url="http://custos.test") as client:
        token = api.token("agent", subject=fresh("signer"))
        response = await Api(client, settings).post(CHEAP, token=token)
        assert response.status_code == 200


async def test_limits_off_sends_no_rate_headers(api: Api, settings: Settings) -> None:
    quiet = settings.model_copy(update={"rate_limits": False})
    application = create_app(quiet, migrate=False)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://custos.test") as c:
            response = await Api(c, quiet).post(PAGE, token=api.token("agent"))
    assert response.status_code == 200
    assert "RateLimit-Limit" not in response.headers
