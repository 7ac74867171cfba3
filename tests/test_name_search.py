"""Name search on sealed names: tokens of name parts, confirmed by decryption, under row
scope and the field mode of `name`, audited as a lookup."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from server.app import AppState
from server.clock import Clock
from server.config import Settings
from server.data.models import AuditAccess, AuditEvent, CustomerNameToken
from server.errors import ValidationError
from server.keys.service import BLIND_INDEX, KeyRotationService
from server.vault import LocalKeyring, Vault
from server.vault.names import FULL, SURNAME, WORD, name_parts, normalise_name, query_parts
from tests.conftest import Api
from tests.factories import make_customer

SEARCH = """
query Search($name: String!, $first: Int = 20, $after: String) {
  customers(first: $first, after: $after, filter: {name: $name}) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes { id name }
  }
}
"""
SEARCH_NO_TOTAL = """
query Search($name: String!, $first: Int = 20, $after: String) {
  customers(first: $first, after: $after, filter: {name: $name}) {
    pageInfo { hasNextPage endCursor }
    nodes { id name }
  }
}
"""
GIVEN = "一二三四五六七"
PEOPLE = (
    "张三",
    "张伟",
    "张 三丰",
    "欧阳娜娜",
    "欧阳修",
    "王五",
    "John Smith",
    "Mary Smith",
    "Smith",
)


@pytest.fixture
def keyring_path(tmp_path: Path) -> Path:
    # The rotation test adds a key version: each test gets its own keyring.
    return tmp_path / "keys" / "keyring.json"


# --- the parts of a name ------------------------------------------------------------


def test_chinese_names_give_the_whole_name_and_the_surname() -> None:
    assert name_parts("张三") == {(FULL, "张三"), (SURNAME, "张")}
    assert name_parts("欧阳娜娜") == {(FULL, "欧阳娜娜"), (SURNAME, "欧阳")}
    # A two-character name that is itself a compound surname's spelling keeps one char.
    assert name_parts("欧阳") == {(FULL, "欧阳"), (SURNAME, "欧")}
    assert name_parts(" 张　三 ") == {(FULL, "张三"), (SURNAME, "张")}
    assert name_parts("阿依古丽·买买提") == {(FULL, "阿依古丽买买提"), (SURNAME, "阿")}


def test_latin_names_give_the_sorted_whole_name_and_each_word() -> None:
    expected = {(FULL, "john smith"), (WORD, "john"), (WORD, "smith")}
    assert name_parts("John Smith") == expected
    assert name_parts("SMITH, John") == expected
    assert name_parts("\uff2a\uff4f\uff48\uff4e  Smith") == expected  # full-width John
    assert name_parts("Cher") == {(FULL, "cher")}
    assert normalise_name("  Anne   MARIE ") == "anne marie"


def test_queries_ask_for_whole_parts_never_prefixes() -> None:
    assert query_parts("张") == {(SURNAME, "张")}
    assert query_parts("欧阳") == {(SURNAME, "欧阳"), (FULL, "欧阳")}
    assert query_parts("张三") == {(FULL, "张三")}
    assert query_parts("smith") == {(WORD, "smith"), (FULL, "smith")}
    assert query_parts("Smith John") == {(FULL, "john smith")}
    for bad in ("", "   ", ",", "x" * 129):
        with pytest.raises(ValidationError):
            query_parts(bad)


# --- search over the API ------------------------------------------------------------


async def _people(state: AppState, team: str = "east") -> dict[str, uuid.UUID]:
    return {
        name: await make_customer(state, name=name, team=team, owner_id=f"agent-{team}")
        for name in PEOPLE
    }


async def _found(api: Api, token: str, name: str, purpose: str = "sales") -> set[str]:
    body = await api.gql(SEARCH, {"name": name}, token=token, purpose=purpose)
    assert "errors" not in body, body
    page = body["data"]["customers"]
    assert page["totalCount"] == len(page["nodes"])
    return {node["name"] for node in page["nodes"]}


async def test_search_by_surname_whole_name_and_word(api: Api, state: AppState) -> None:
    await _people(state)
    token = api.token("manager", subject="m-1", team="east")
    assert await _found(api, token, "张") == {"张三", "张伟", "张 三丰"}
    assert await _found(api, token, "欧阳") == {"欧阳娜娜", "欧阳修"}
    assert await _found(api, token, "张三") == {"张三"}
    assert await _found(api, token, "张 三 丰") == {"张 三丰"}
    assert await _found(api, token, "王五") == {"王五"}
    # No prefixes: the first characters of a given name find nothing.
    assert await _found(api, token, "张伟伟") == set()
    assert await _found(api, token, "smith") == {"John Smith", "Mary Smith", "Smith"}
    assert await _found(api, token, "JOHN") == {"John Smith"}
    assert await _found(api, token, "smith, john") == {"John Smith"}
    assert await _found(api, token, "Smit") == set()


async def test_search_never_includes_customers_out_of_scope(api: Api, state: AppState) -> None:
    east = await _people(state, "east")
    west = await _people(state, "west")
    east_manager = api.token("manager", subject="m-1", team="east")
    body = await api.gql(SEARCH, {"name": "张"}, token=east_manager, purpose="sales")
    ids = {node["id"] for node in body["data"]["customers"]["nodes"]}
    assert ids == {str(east[n]) for n in ("张三", "张伟", "张 三丰")}
    assert body["data"]["customers"]["totalCount"] == 3
    assert not ids & {str(i) for i in west.values()}
    # An agent sees only its own files: none of these are its own.
    agent = api.token("agent", subject="agent-north", team="east")
    assert await _found(api, agent, "张") == set()
    # Support reads every file and names in clear.
    support = api.token("support")
    body = await api.gql(SEARCH, {"name": "张三"}, token=support, purpose="support")
    assert {n["id"] for n in body["data"]["customers"]["nodes"]} == {
        str(east["张三"]),
        str(west["张三"]),
    }


async def test_a_caller_with_name_masked_cannot_search_by_name(api: Api, state: AppState) -> None:
    await _people(state)
    # Admins read every file, with names masked: a search would confirm guesses.
    admin = api.token("admin", subject="root")
    listed = await api.gql("{ customers { nodes { name } } }", token=admin)
    assert "errors" not in listed
    assert listed["data"]["customers"]["nodes"]
    body = await api.gql(SEARCH, {"name": "张三"}, token=admin)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert body["data"] is None or body["data"]["customers"] is None
    # Nor an analyst (no personal field at all).
    analyst = api.token("analyst")
    body = await api.gql(SEARCH, {"name": "张"}, token=analyst, purpose="analytics")
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # Each refusal is recorded as a denied lookup on name.
    async with state.sessions() as session:
        accesses = (
            await session.execute(select(AuditAccess.action, AuditAccess.denied_fields))
        ).all()
    assert [a.denied_fields for a in accesses if a.action == "lookup:name"] == [["*"], ["*"]]


async def test_a_search_is_audited_as_a_lookup_hit_or_miss(api: Api, state: AppState) -> None:
    people = await _people(state)
    token = api.token("manager", subject="m-1", team="east")
    await _found(api, token, "欧阳")
    await _found(api, token, "李")
    async with state.sessions() as session:
        rows = (
            await session.execute(
                select(AuditAccess.fields, AuditAccess.record_count, AuditEvent.seq)
                .join(AuditEvent, AuditEvent.id == AuditAccess.event_id)
                .where(AuditAccess.action == "lookup")
                .order_by(AuditEvent.seq)
            )
        ).all()
    assert [(r.fields, r.record_count) for r in rows] == [
        ({"name": "hit"}, 2),
        ({"name": "miss"}, 0),
    ]
    assert people  # the hit's ids are the two files shown


async def test_pages_and_collisions_are_confirmed_by_decryption(api: Api, state: AppState) -> None:
    # One bit per token: half of every name's tokens collide with any search.
    state.services.vault.name_token_bits = {FULL: 1, WORD: 1, SURNAME: 1}
    names = [f"李{n}" for n in GIVEN] + [f"赵{n}" for n in GIVEN] + ["Li Wei", "Wei Li"]
    for name in names:
        await make_customer(state, name=name)
    async with state.sessions() as session:
        tokens = set((await session.scalars(select(CustomerNameToken.token))).all())
    assert tokens <= {0, 1}
    token = api.token("manager", subject="m-1", team="east")
    seen: list[str] = []
    after: str | None = None
    for query in (SEARCH, SEARCH_NO_TOTAL):
        seen, after = [], None
        while True:
            body = await api.gql(
                query, {"name": "李", "first": 3, "after": after}, token=token, purpose="sales"
            )
            assert "errors" not in body, body
            page = body["data"]["customers"]
            if "totalCount" in page:
                assert page["totalCount"] == 7
            seen += [n["name"] for n in page["nodes"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        assert seen == [f"李{n}" for n in GIVEN]
    assert await _found(api, token, "wei li") == {"Li Wei", "Wei Li"}


async def test_renamed_and_erased_customers_are_found_by_their_current_name_only(
    api: Api, state: AppState
) -> None:
    people = await _people(state)
    manager = api.token("manager", subject="m-1", team="east")
    renamed = await api.gql(
        """mutation($id: ID!) { updateCustomer(id: $id, input: {name: "刘备"}) {
             __typename } }""",
        {"id": str(people["张三"])},
        token=manager,
        purpose="sales",
    )
    assert renamed["data"]["updateCustomer"]["__typename"] == "CustomerUpdated", renamed
    assert await _found(api, manager, "张三") == set()
    assert await _found(api, manager, "刘") == {"刘备"}
    compliance = api.token("compliance", subject="c-1")
    erased = await api.gql(
        "mutation($id: ID!) { eraseCustomer(id: $id) { __typename } }",
        {"id": str(people["张三"])},
        token=compliance,
        purpose="compliance",
    )
    assert "errors" not in erased, erased
    assert await _found(api, manager, "刘") == set()
    async with state.sessions() as session:
        left = await session.scalar(
            select(func.count())
            .select_from(CustomerNameToken)
            .where(CustomerNameToken.customer_id == people["张三"])
        )
    assert left == 0


async def test_a_blind_index_rotation_recomputes_name_tokens(
    api: Api, state: AppState, settings: Settings
) -> None:
    people = await _people(state)
    manager = api.token("manager", subject="m-1", team="east")
    keys = LocalKeyring.load(settings.keyring, create=False)
    serving = state.services.vault.keys
    assert isinstance(serving, LocalKeyring)
    serving.RELOAD_INTERVAL = 0.0
    rotation = KeyRotationService(Vault(keys), state.sessions, Clock(), propagation_seconds=0.0)
    report = await rotation.rotate(BLIND_INDEX)
    assert report.finished
    assert report.updated == len(people)
    async with state.sessions() as session:
        versions = set((await session.scalars(select(CustomerNameToken.key_version))).all())
    assert versions == {report.to_version}
    assert await _found(api, manager, "欧阳") == {"欧阳娜娜", "欧阳修"}
    await rotation.retire(BLIND_INDEX, report.to_version - 1)
    assert await _found(api, manager, "smith john") == {"John Smith"}


async def test_bad_searches_are_typed_errors_and_segments_refuse_names(
    api: Api, state: AppState
) -> None:
    token = api.token("manager", subject="m-1", team="east")
    for bad in ("  ", "x" * 200):
        body = await api.gql(SEARCH, {"name": bad}, token=token, purpose="sales")
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body
    segment = await api.gql(
        """mutation { createCampaign(input: {name: "n", segment: {name: "张"}}) {
             __typename ... on UserError { code field } } }""",
        token=token,
        purpose="marketing",
    )
    assert segment["data"]["createCampaign"] == {
        "__typename": "UserError",
        "code": "BAD_USER_INPUT",
        "field": "segment.name",
    }, segment
