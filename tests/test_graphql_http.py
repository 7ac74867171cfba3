"""GraphQL over HTTP: media types, status codes, limits, and errors that never 500."""

from __future__ import annotations

import logging

import httpx
import pytest

from server.app import AppState, create_app
from server.config import Settings
from tests.conftest import Api
from tests.factories import make_customer

GRAPHQL_RESPONSE = "application/graphql-response+json"
QUERY = "{ customers(first: 1) { totalCount } }"


async def test_graphql_response_media_type_is_preferred(api: Api) -> None:
    token = api.token("agent", subject="agent-1")
    response = await api.post(
        QUERY, token=token, accept=f"application/json;q=0.9, {GRAPHQL_RESPONSE}"
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    body = response.json()
    assert body["data"] == {"customers": {"totalCount": 0}}
    assert set(body) == {"data", "extensions"}


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        ("application/json", "application/json"),
        ("*/*", "application/json"),
        ("application/*", "application/json"),
        (f"*/*, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
        ("", "application/json"),
    ],
)
async def test_accept_negotiation(api: Api, accept: str, media: str) -> None:
    response = await api.post(QUERY, token=api.token("agent"), accept=accept)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media)


async def test_unacceptable_media_type_is_406(api: Api) -> None:
    response = await api.post(QUERY, token=api.token("agent"), accept="text/html")
    assert response.status_code == 406
    assert response.json()["errors"][0]["extensions"]["code"] == "NOT_ACCEPTABLE"


async def test_validation_error_status_depends_on_media_type(api: Api) -> None:
    token = api.token("agent")
    strict = await api.post("{ customers { nope } }", token=token)
    assert strict.status_code == 400
    body = strict.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    legacy = await api.post("{ customers { nope } }", token=token, accept="application/json")
    assert legacy.status_code == 200
    assert legacy.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_syntax_error_is_400_parse_failed(api: Api) -> None:
    response = await api.post("{ customers(first: ", token=api.token("agent"))
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"


async def test_wrong_variable_type_is_400_without_echoing_the_value(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = await api.post(
        "query($id: ID!, $n: Int!) { customer(id: $id) { id } "
        "customers(first: $n) { totalCount } }",
        {"id": "x", "n": "13812345678"},
        token=api.token("agent"),
    )
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "13812345678" not in response.text
    assert "13812345678" not in caplog.text


async def test_get_is_405_with_allow_post(api: Api) -> None:
    response = await api.client.get(
        "/graphql", params={"query": QUERY}, headers={"Accept": GRAPHQL_RESPONSE}
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


async def test_graphiql_page_in_dev_for_browsers(api: Api) -> None:
    response = await api.client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


@pytest.mark.parametrize(
    ("content_type", "status"),
    [("text/plain", 415), ("application/json; charset=latin1", 415), (None, 415)],
)
async def test_content_type_must_be_json(api: Api, content_type: str | None, status: int) -> None:
    headers = {"Accept": GRAPHQL_RESPONSE, "Authorization": f"Bearer {api.token('agent')}"}
    if content_type:
        headers["Content-Type"] = content_type
    response = await api.client.post(
        "/graphql", content=b'{"query":"{ __typename }"}', headers=headers
    )
    assert response.status_code == status
    assert response.json()["errors"][0]["extensions"]["code"] == "UNSUPPORTED_MEDIA_TYPE"


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2]",
        b'{"query": 5}',
        b'{"query": ""}',
        b'{"query": "{ __typename }", "variables": [1]}',
        b'{"query": "{ __typename }", "operationName": 3}',
        b'{"query": "{ __typename }", "extensions": "x"}',
    ],
)
async def test_malformed_requests_are_400(api: Api, body: bytes) -> None:
    headers = {
        "Accept": GRAPHQL_RESPONSE,
        "Content-Type": "application/json",
        "Authorization": f"Bearer {api.token('agent')}",
    }
    response = await api.client.post("/graphql", content=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_oversized_body_is_413(api: Api) -> None:
    big = "{ __typename }" + " " * 1_100_000
    response = await api.post(big, token=api.token("agent"))
    assert response.status_code == 413


async def test_query_depth_is_limited(settings: Settings) -> None:
    shallow = settings.model_copy(update={"max_query_depth": 2})
    app = create_app(shallow, migrate=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://custos.test") as client:
            api = Api(client, shallow)
            token = api.token("agent")
            assert (await api.post("{ customers { totalCount } }", token=token)).status_code == 200
            response = await api.post("{ customers { edges { node { id } } } }", token=token)
    assert response.status_code == 400
    assert "depth" in response.json()["errors"][0]["message"]


async def test_aliases_hidden_in_fragments_are_counted(api: Api) -> None:
    def fragment(name: str) -> str:
        aliases = " ".join(f"{name.lower()}{i}: me {{ subject }}" for i in range(20))
        return f"fragment {name} on Query {{ {aliases} }} "

    token = api.token("agent")
    assert (await api.post("{ ...A } " + fragment("A"), token=token)).status_code == 200
    rejected = await api.post("{ ...A ...B } " + fragment("A") + fragment("B"), token=token)
    assert rejected.status_code == 400


async def test_too_many_tokens_are_rejected(api: Api) -> None:
    fields = " ".join("__typename" for _ in range(2500))
    response = await api.post("{ " + fields + " }", token=api.token("agent"))
    assert response.status_code == 400


async def test_page_size_is_bounded(api: Api) -> None:
    body = await api.gql("{ customers(first: 100000) { totalCount } }", token=api.token("agent"))
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_bad_cursor_and_id_are_bad_user_input(api: Api) -> None:
    token = api.token("agent")
    body = await api.gql('{ customers(after: "!!!") { totalCount } }', token=token)
    assert body["errors"][0]["extensions"]["code"] == "BAD_CURSOR"
    body = await api.gql('{ customer(id: "nope") { id } }', token=token)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_unknown_purpose_is_400(api: Api) -> None:
    response = await api.post(QUERY, token=api.token("agent"), purpose="curiosity")
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_PURPOSE"


async def test_request_id_is_echoed(api: Api) -> None:
    response = await api.client.post(
        "/graphql",
        json={"query": "{ me { subject } }"},
        headers={"Authorization": f"Bearer {api.token('agent')}", "X-Request-Id": "req-123"},
    )
    assert response.headers["x-request-id"] == "req-123"


async def test_healthz(api: Api) -> None:
    response = await api.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_operation_name_selects_the_operation(api: Api, state: AppState) -> None:
    await make_customer(state)
    document = "query A { me { subject } } query B { customers { totalCount } }"
    token = api.token("agent", subject="agent-1")
    response = await api.post(document, token=token, operation_name="B")
    body = response.json()
    assert body["data"] == {"customers": {"totalCount": 1}}
    assert set(body) == {"data", "extensions"}
    missing = await api.post(document, token=token)
    assert missing.status_code == 400
    unknown = await api.post(document, token=token, operation_name="C")
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
