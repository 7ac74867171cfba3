"""Errors never carry a client's value, carry the right code and a location, suggest
schema names only where the setting allows, and introspection is a permission in prod."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.app import create_app
from server.config import Settings
from server.vault.keyring import LocalKeyring
from tests.conftest import Api, Database

CANARY = "Zq9canary"
CREATE = "mutation($i: CreateCustomerInput!) { createCustomer(input: $i) { __typename } }"
PRODUCT = """mutation { createProduct(input: {sku: "s", name: "n", category: "c",
  unitPrice: "@@", unitCost: "1"}) { __typename } }"""


def c(template: str) -> str:
    return template.replace("@@", CANARY)


# (query, variables): each must be refused without the canary anywhere in the answer.
ECHO_CASES: list[tuple[str, dict[str, Any] | None]] = [
    (CREATE, {"i": {"name": "Zhang San", "phone": CANARY, "nmae": CANARY}}),
    (c('mutation { createCustomer(input: {name: "x", nmae: "@@"}) { __typename } }'), None),
    (CREATE, {"i": {"phone": CANARY}}),
    (c('mutation { createCustomer(input: {phone: "@@"}) { __typename } }'), None),
    (CREATE, {"i": CANARY}),
    (c('mutation { createCustomer(input: "@@") { __typename } }'), None),
    (CREATE, {"i": {"name": "x", "birthday": f"1990-02-31{CANARY}"}}),
    (
        c('mutation { createCustomer(input: {name: "x", birthday: "@@"}) { __typename } }'),
        None,
    ),
    (c(PRODUCT), None),
    (
        'mutation($p: Decimal!) { createProduct(input: {sku: "s", name: "n", category: "c", '
        'unitPrice: $p, unitCost: "1"}) { __typename } }',
        {"p": CANARY},
    ),
    (
        "query($k: InteractionBreachKind!) { interactionBreaches(kind: $k) { totalCount } }",
        {"k": CANARY},
    ),
    (c("{ interactionBreaches(kind: @@) { totalCount } }"), None),
    ("query($f: Int!) { customers(first: $f) { totalCount } }", {"f": CANARY}),
    (c('{ customers(first: "@@") { totalCount } }'), None),
    ("query($d: DateTime) { customers(filter: {createdFrom: $d}) { totalCount } }", {"d": CANARY}),
    (c('{ customers(first: 1 "@@" }'), None),
    (
        'query($x: [String!]) { explainAccess(subject: "s", object: "customer", '
        'action: "read", roles: $x) { allowed } }',
        {"x": {"k": CANARY}},
    ),
]


def no_echo(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code < 500
    assert CANARY not in response.text, response.text
    errors: list[dict[str, Any]] = response.json()["errors"]
    for error in errors:
        assert error["extensions"]["code"], error
        assert "Traceback" not in error["message"]
    return errors


@pytest.mark.parametrize(("query", "variables"), ECHO_CASES)
async def test_engine_errors_never_echo_the_value(
    api: Api, query: str, variables: dict[str, Any] | None
) -> None:
    errors = no_echo(await api.post(query, variables, token=api.token("manager", team="east")))
    for error in errors:
        if error["extensions"]["code"] in ("BAD_USER_INPUT", "GRAPHQL_VALIDATION_FAILED"):
            assert error.get("locations"), error


async def test_messages_still_name_the_type_and_field(api: Api) -> None:
    token = api.token("manager", team="east")
    (error,) = no_echo(await api.post(CREATE, {"i": {"name": "x", "nmae": CANARY}}, token=token))
    assert error["message"].startswith(
        "Variable '$i' has invalid value: Expected value of type 'CreateCustomerInput' "
        "not to include unknown field 'nmae'."
    )
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "input"}
    (error,) = no_echo(
        await api.post(CREATE, {"i": {"name": "x", "birthday": "1990-02-31"}}, token=token)
    )
    assert "1990" not in error["message"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "input.birthday"}


async def test_a_huge_operation_name_is_not_repeated(api: Api) -> None:
    name = CANARY * 100_000
    response = await api.post("{ me { subject } }", token=api.token("agent"), operation_name=name)
    assert response.status_code == 400
    assert len(response.content) < 500
    (error,) = no_echo(response)
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    nul = await api.post("{ me { subject } }", token=api.token("agent"), operation_name="a\x00")
    assert nul.status_code == 400


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("query { customers(first: $x) { totalCount } }", "Variable '$x' is not defined."),
        ("query($x: Int) { me { subject } }", "Variable '$x' is never used."),
        (
            "query($x: String) { customers(first: $x) { totalCount } }",
            "Variable '$x' of type 'String' used in position expecting type 'Int!'.",
        ),
    ],
)
async def test_variable_definition_mistakes_are_validation_errors(
    api: Api, query: str, message: str
) -> None:
    response = await api.post(query, token=api.token("agent"))
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["message"] == message
    assert error["extensions"] == {"code": "GRAPHQL_VALIDATION_FAILED"}


async def test_literal_parse_errors_carry_locations(api: Api) -> None:
    query = '{\n  metrics(from: "2026-02-31", to: "2026-03-01") { from } }'
    response = await api.post(query, token=api.token("analyst"))
    (error,) = response.json()["errors"]
    assert error["locations"] == [{"line": 2, "column": 17}]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "from"}


async def test_suggestions_in_dev(api: Api) -> None:
    response = await api.post("{ custmers { totalCount } }", token=api.token("agent"))
    assert "Did you mean 'customers'" in response.json()["errors"][0]["message"]


@pytest.fixture
async def prod_api(database: Database, keyring_path: Path, tmp_path: Path) -> AsyncIterator[Api]:
    LocalKeyring.load(keyring_path, create=True)
    settings = Settings(
        env="prod",
        database_url=database.url,
        keyring=keyring_path,
        jwt_secret="a-prod-secret-of-at-least-32-bytes!!",
        state_dir=tmp_path / "state",
    )
    app = create_app(settings, migrate=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 51000))
        async with httpx.AsyncClient(transport=transport, base_url="http://custos.test") as client:
            yield Api(client, settings)


async def test_no_suggestions_in_prod(prod_api: Api) -> None:
    token = prod_api.token("agent")
    response = await prod_api.post("{ custmers { totalCount } }", token=token)
    (error,) = response.json()["errors"]
    assert error["message"] == "Cannot query field 'custmers' on type 'Query'."
    response = await prod_api.post(CREATE, {"i": {"name": "x", "nmae": "y"}}, token=token)
    assert "Did you mean" not in response.text


INTROSPECT = "{ __schema { queryType { name } } }"


async def test_introspection_in_prod_needs_the_schema_permission(prod_api: Api) -> None:
    for role in ("analyst", "agent", "manager", "compliance"):
        response = await prod_api.post(INTROSPECT, token=prod_api.token(role))
        assert response.status_code == 200
        body = response.json()
        assert body["data"] is None
        (error,) = body["errors"]
        assert error["extensions"]["code"] == "FORBIDDEN"
        assert error["path"] == ["__schema"]
        typed = await prod_api.post(
            '{ __type(name: "Customer") { name } }', token=prod_api.token(role)
        )
        assert typed.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    for role in ("admin", "integrator"):
        body = (await prod_api.post(INTROSPECT, token=prod_api.token(role))).json()
        assert body["data"]["__schema"]["queryType"]["name"] == "Query"
    plain = await prod_api.post("{ __typename me { subject } }", token=prod_api.token("agent"))
    assert plain.json()["data"]["__typename"] == "Query"


async def test_introspection_is_open_in_dev(api: Api) -> None:
    body = await api.gql(INTROSPECT, token=api.token("analyst"))
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"
