"""Persisted documents over real HTTP: Automatic Persisted Queries (Apollo's protocol,
POST and GET) and trusted-documents mode, where only registered documents run."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette

from server.app import create_app
from server.cli.documents import add_documents, list_documents
from server.config import Settings
from server.errors import ConfigError, ValidationError
from tests.conftest import Api

ME = "query Me { me { subject } }"
OTHER = "query Roles { me { roles } }"
MUTATION = 'mutation Tag { createTask(input: {title: "x"}) { __typename } }'


def sha(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def persisted(digest: str, version: int = 1) -> dict[str, Any]:
    return {"persistedQuery": {"version": version, "sha256Hash": digest}}


async def _post(api: Api, body: dict[str, Any], role: str = "agent") -> httpx.Response:
    return await api.client.post(
        "/graphql", json=body, headers={"Authorization": f"Bearer {api.token(role)}"}
    )


def _code(response: httpx.Response) -> str:
    code: str = response.json()["errors"][0]["extensions"]["code"]
    return code


async def test_an_unknown_hash_asks_for_the_text_then_the_hash_alone_runs(api: Api) -> None:
    first = await _post(api, {"extensions": persisted(sha(ME))})
    assert first.status_code == 200
    assert _code(first) == "PERSISTED_QUERY_NOT_FOUND"
    assert first.json()["errors"][0]["message"] == "PersistedQueryNotFound"
    assert "no-cache" in first.headers["cache-control"]
    registered = await _post(api, {"query": ME, "extensions": persisted(sha(ME))})
    assert registered.json()["data"] == {"me": {"subject": "user-agent"}}
    again = await _post(api, {"extensions": persisted(sha(ME).upper()), "operationName": "Me"})
    assert again.json()["data"] == {"me": {"subject": "user-agent"}}


async def test_a_hash_that_is_not_the_texts_is_refused(api: Api) -> None:
    response = await _post(api, {"query": ME, "extensions": persisted(sha(OTHER))})
    assert response.status_code == 400
    assert _code(response) == "BAD_REQUEST"
    # Nothing was registered under the wrong hash.
    assert _code(await _post(api, {"extensions": persisted(sha(OTHER))})) == (
        "PERSISTED_QUERY_NOT_FOUND"
    )


@pytest.mark.parametrize(
    "extensions",
    [
        {"persistedQuery": "abc"},
        persisted(sha(ME), version=2),
        persisted("not-a-hash"),
        {"persistedQuery": {"version": 1}},
    ],
)
async def test_malformed_persisted_query_extensions_are_bad_requests(
    api: Api, extensions: dict[str, Any]
) -> None:
    response = await _post(api, {"extensions": extensions})
    assert response.status_code == 400
    assert _code(response) == "BAD_REQUEST"


async def test_no_query_and_no_hash_is_still_a_bad_request(api: Api) -> None:
    response = await _post(api, {"extensions": {"other": 1}})
    assert response.status_code == 400
    assert _code(response) == "BAD_REQUEST"


async def test_a_hash_needs_an_authenticated_caller(api: Api) -> None:
    response = await api.client.post("/graphql", json={"extensions": persisted(sha(ME))})
    assert response.status_code == 401


async def test_persisted_queries_over_get(api: Api) -> None:
    token = {"Authorization": f"Bearer {api.token('agent')}"}
    await _post(api, {"query": ME, "extensions": persisted(sha(ME))})
    params = {
        "extensions": orjson.dumps(persisted(sha(ME))).decode(),
        "operationName": "Me",
        "variables": "{}",
    }
    response = await api.client.get("/graphql", params=params, headers=token)
    assert response.status_code == 200, response.text
    assert response.json()["data"] == {"me": {"subject": "user-agent"}}
    unknown = await api.client.get(
        "/graphql",
        params={"extensions": orjson.dumps(persisted(sha(OTHER))).decode()},
        headers=token,
    )
    assert _code(unknown) == "PERSISTED_QUERY_NOT_FOUND"
    # A mutation never runs over GET, persisted or not.
    await _post(api, {"query": MUTATION, "extensions": persisted(sha(MUTATION))})
    refused = await api.client.get(
        "/graphql",
        params={"extensions": orjson.dumps(persisted(sha(MUTATION))).decode()},
        headers=token,
    )
    assert refused.status_code == 405
    assert refused.headers["allow"] == "POST"
    # Text in a URL is still refused: only hashes travel over GET.
    text = await api.client.get("/graphql", params={"query": ME}, headers=token)
    assert text.status_code == 405
    bad = await api.client.get("/graphql", params={"extensions": "{nope"}, headers=token)
    assert bad.status_code == 400


async def _client_of(settings: Settings) -> AsyncIterator[Api]:
    app: Starlette = create_app(settings, migrate=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://custos.test") as client:
            yield Api(client, settings)


@pytest.fixture
async def apq_off(settings: Settings) -> AsyncIterator[Api]:
    async for api in _client_of(settings.model_copy(update={"persisted_queries": False})):
        yield api


async def test_without_automatic_persisted_queries_a_hash_is_not_supported(
    apq_off: Api,
) -> None:
    response = await _post(apq_off, {"query": ME, "extensions": persisted(sha(ME))})
    assert response.status_code == 200
    assert _code(response) == "PERSISTED_QUERY_NOT_SUPPORTED"
    assert (await _post(apq_off, {"query": ME})).json()["data"]["me"]


@pytest.fixture
async def trusted(settings: Settings, tmp_path: Path) -> AsyncIterator[Api]:
    manifest = tmp_path / "manifest.json"
    manifest.write_text(
        orjson.dumps(
            {
                "format": "apollo-persisted-query-manifest",
                "version": 1,
                "operations": [{"id": sha(OTHER), "name": "Roles", "type": "query", "body": OTHER}],
            }
        ).decode()
    )
    trusted_settings = settings.model_copy(
        update={"trusted_documents": True, "trusted_documents_file": manifest}
    )
    me_file = tmp_path / "me.graphql"
    me_file.write_text(ME)
    assert await add_documents(trusted_settings, [me_file]) == (1, 0)
    assert await add_documents(trusted_settings, [me_file]) == (0, 1)
    async for api in _client_of(trusted_settings):
        yield api


async def test_trusted_mode_runs_only_registered_documents(trusted: Api) -> None:
    by_hash = await _post(trusted, {"extensions": persisted(sha(ME))})
    assert by_hash.json()["data"] == {"me": {"subject": "user-agent"}}
    from_manifest = await _post(trusted, {"extensions": persisted(sha(OTHER))})
    assert from_manifest.json()["data"]["me"]["roles"] == ["agent"]
    # The registered text itself runs too (clients that send text and hash, or text).
    assert (await _post(trusted, {"query": ME})).json()["data"]["me"]
    unknown = await _post(trusted, {"extensions": persisted(sha("{ me { team } }"))})
    assert unknown.status_code == 404
    assert _code(unknown) == "PERSISTED_QUERY_NOT_FOUND"
    freeform = await _post(trusted, {"query": "{ me { team } }"})
    assert freeform.status_code == 403
    assert _code(freeform) == "PERSISTED_QUERY_NOT_IN_LIST"
    # Nothing registers itself: text and hash together are still refused.
    registering = await _post(
        trusted, {"query": "{ me { team } }", "extensions": persisted(sha("{ me { team } }"))}
    )
    assert registering.status_code == 404
    assert _code(await _post(trusted, {"query": "{ me { team } }"})) == (
        "PERSISTED_QUERY_NOT_IN_LIST"
    )


async def test_registered_documents_are_listed(trusted: Api) -> None:
    listed = await list_documents(trusted.settings)
    assert [(digest, name) for digest, name, _ in listed] == [(sha(ME), "Me")]


async def test_a_manifest_whose_id_is_not_its_documents_hash_is_refused(
    settings: Settings, tmp_path: Path
) -> None:
    manifest = tmp_path / "bad.json"
    manifest.write_text(orjson.dumps({sha(OTHER): ME}).decode())
    with pytest.raises(ConfigError, match=r"CUSTOS_TRUSTED_DOCUMENTS_FILE: .*entry 0"):
        create_app(
            settings.model_copy(
                update={"trusted_documents": True, "trusted_documents_file": manifest}
            ),
            migrate=False,
        )
    with pytest.raises(ValidationError, match="SHA-256"):
        await add_documents(settings, [manifest])
