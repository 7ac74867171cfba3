"""The execution fast path answers exactly what graphql-core's own executor answers.

Every query runs twice — through `FastExecutionContext` and through plain graphql-core
execution of the same schema — and the data and the errors (message, path, locations,
extensions) must be identical. First on a schema built to exercise the edge cases
(nulls and non-null propagation, errors at paths, enums, scalars, lists of leaves,
awaitables, arguments), then through the real app on both databases.
"""

from __future__ import annotations

import asyncio
import datetime
import enum
from dataclasses import dataclass, field
from typing import Any, NewType

import pytest
import strawberry
from strawberry.schema.config import StrawberryConfig
from strawberry.types.scalar import ScalarDefinition

from schema.build import build_schema
from schema.execution import FastExecutionContext, plain_leaf
from schema.loaders import grouped, request_loader
from server.app import AppState
from server.errors import ForbiddenError, ValidationError
from server.graphql_http import format_error
from tests.conftest import Api
from tests.factories import make_customer, make_interactions

# --- a schema built for the edge cases -------------------------------------------------

Code = NewType("Code", str)
SCALARS: dict[object, ScalarDefinition] = {
    Code: strawberry.scalar(
        name="Code",
        serialize=lambda v: f"<{v}>",
        parse_value=lambda v: str(v).strip("<>"),
        description="A custom scalar with its own serialisation.",
    )
}


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


@dataclass
class ChildRecord:
    label: str
    size: int | None


@dataclass
class Record:
    index: int
    title: str | None
    colour: Colour
    at: datetime.datetime
    code: str
    tags: list[str | None]
    strict_tags: list[str]
    secret: str | None
    must: str | None
    count: Any
    child: ChildRecord | None
    children: list[ChildRecord] = field(default_factory=list)


def _secret_or_denied(root: Any) -> str | None:
    if root.secret == "denied":
        raise ForbiddenError("not allowed to read record.secret")
    return root.secret  # type: ignore[no-any-return]


@plain_leaf
def _secret(root: strawberry.Parent[Any]) -> str | None:
    return _secret_or_denied(root)


@plain_leaf
def _must(root: strawberry.Parent[Any]) -> str:
    if root.must == "denied":
        raise ForbiddenError("not allowed to read record.must")
    return root.must  # type: ignore[no-any-return]


@plain_leaf
def _record_id(root: strawberry.Parent[Any]) -> strawberry.ID:
    return strawberry.ID(f"r{root.index}")


@plain_leaf
def _hidden(root: strawberry.Parent[Any]) -> str | None:
    # Denied where the size is unknown: a nullable field's error inside a nested page.
    if root.size is None:
        raise ForbiddenError("not allowed to read child.hidden")
    return f"h-{root.label}"


@strawberry.type
class Child:
    label: str
    size: int | None
    hidden: str | None = strawberry.field(resolver=_hidden)


@strawberry.type
class ChildEdge:
    cursor: str
    node: Child


@strawberry.type
class ChildPageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class ChildConnection:
    edges: list[ChildEdge]
    page_info: ChildPageInfo


async def _child_page(
    info: strawberry.Info, index: int, first: int, after: str | None
) -> ChildConnection:
    """A page of a row's children behind a per-request DataLoader, with arguments and a
    cursor that may be refused: as `Customer.interactions` is built."""
    start = 0
    if after is not None:
        if not after.startswith("rel") or "." not in after:
            raise ValidationError("cursor is not valid for this list", code="BAD_CURSOR")
        start = int(after.rsplit(".", 1)[1]) + 1
    loader = request_loader(info.context, "related", _load_related)
    children = (await loader.load(index))[start:]
    page = children[:first]
    edges = [ChildEdge(cursor=c.label, node=c) for c in page]  # type: ignore[arg-type]
    return ChildConnection(
        edges=edges,
        page_info=ChildPageInfo(
            has_next_page=len(children) > first, end_cursor=page[-1].label if page else None
        ),
    )


@strawberry.type
class Row:
    id: strawberry.ID = strawberry.field(resolver=_record_id)
    index: int
    title: str | None
    colour: Colour
    at: datetime.datetime
    code: Code
    tags: list[str | None]
    strict_tags: list[str]
    secret: str | None = strawberry.field(resolver=_secret)
    must: str = strawberry.field(resolver=_must)
    count: int | None
    child: Child | None
    children: list[Child]

    @strawberry.field
    def shout(self, times: int = 1) -> str:
        return (self.title or "") * times

    @strawberry.field
    async def later(self) -> str:
        await asyncio.sleep(0)
        return f"later-{self.index}"

    @strawberry.field
    def unmarked(self) -> str | None:
        return _secret_or_denied(self)

    @strawberry.field
    async def page(
        self, info: strawberry.Info, first: int, after: str | None = None
    ) -> ChildConnection:
        return await _child_page(info, self.index, first, after)

    @strawberry.field
    async def maybe_page(
        self, info: strawberry.Info, first: int, after: str | None = None
    ) -> ChildConnection | None:
        return await _child_page(info, self.index, first, after)

    @strawberry.field
    async def related(self, info: strawberry.Info) -> list[Child]:
        # A nested list behind a per-request DataLoader, as nested connections are built.
        loader = request_loader(info.context, "related", _load_related)
        return await loader.load(self.index)  # type: ignore[return-value]


async def _load_related(indexes: list[int]) -> list[list[ChildRecord]]:
    rows = [
        (i, ChildRecord(f"rel{i}.{j}", None if j == 1 else j)) for i in indexes for j in range(3)
    ]
    return [
        [child for owner, child in group] for group in grouped(indexes, rows, key=lambda r: r[0])
    ]


@strawberry.type
class RowEdge:
    cursor: str
    node: Row


@strawberry.type
class RowConnection:
    edges: list[RowEdge]
    total_count: int


def _records() -> list[Record]:
    base = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    records = []
    for i in range(6):
        records.append(
            Record(
                index=i,
                title=None if i == 2 else f"t{i}",
                colour=Colour.RED if i % 2 else Colour.GREEN,
                at=base + datetime.timedelta(days=i),
                code=f"c{i}",
                tags=["a", None, f"x{i}"],
                strict_tags=["s", f"y{i}"],
                secret="denied" if i in (1, 4) else (None if i == 3 else f"s{i}"),
                must="denied" if i == 5 else f"m{i}",
                count="not a number" if i == 3 else i * 10,
                child=None if i == 0 else ChildRecord(f"c{i}", None if i == 1 else i),
                children=[ChildRecord(f"k{i}.{j}", j) for j in range(3)],
            )
        )
    return records


@strawberry.type
class DiffQuery:
    @strawberry.field
    def rows(self) -> list[Row]:
        return _records()  # type: ignore[return-value]

    @strawberry.field
    def strict_rows(self) -> list[Row]:
        # Non-null items: a non-null error in one row nulls the whole list.
        return _records()  # type: ignore[return-value]

    @strawberry.field
    def maybe_rows(self) -> list[Row | None] | None:
        return [*_records(), None]  # type: ignore[list-item]

    @strawberry.field
    async def row(self, index: int) -> Row | None:
        return _records()[index]  # type: ignore[return-value]

    @strawberry.field
    def connection(self) -> RowConnection:
        records = _records()
        edges = [RowEdge(cursor=f"c{r.index}", node=r) for r in records]  # type: ignore[arg-type]
        return RowConnection(edges=edges, total_count=len(records))

    @strawberry.field
    def awaited_child(self) -> Child | None:
        async def child() -> ChildRecord:
            return ChildRecord("awaited", 1)

        return child()  # type: ignore[return-value]


class _LoaderContext:
    """Just the per-request loader memo that `request_loader` uses."""

    def __init__(self) -> None:
        self.loaders: dict[str, Any] = {}


def _diff_schemas() -> tuple[strawberry.Schema, strawberry.Schema]:
    config = StrawberryConfig(scalar_map=SCALARS)
    fast = strawberry.Schema(
        query=DiffQuery, config=config, execution_context_class=FastExecutionContext
    )
    plain = strawberry.Schema(query=DiffQuery, config=config)
    return fast, plain


ROW_FIELDS = "id index title colour at code tags strictTags secret count child { label size }"

EDGE_CASE_QUERIES: list[tuple[str, dict[str, Any] | None]] = [
    (f"{{ rows {{ {ROW_FIELDS} }} }}", None),
    ("{ rows { __typename id first: title second: title t: __typename } }", None),
    ("{ maybeRows { id secret child { __typename label } } }", None),
    ("{ rows { id must } }", None),
    ("{ strictRows { id must } }", None),
    ("{ rows { id children { label size __typename } } }", None),
    (
        "{ rows { ...R child { ...C } } } "
        "fragment R on Row { id colour } fragment C on Child { size }",
        None,
    ),
    ("{ rows { ... on Row { id secret } ... { title } } }", None),
    (
        "query($skip: Boolean!, $inc: Boolean!) { rows { id title @skip(if: $skip) "
        "secret @include(if: $inc) child @include(if: $inc) { label } } }",
        {"skip": True, "inc": False},
    ),
    (
        "query($skip: Boolean!, $inc: Boolean!) { rows { id title @skip(if: $skip) "
        "secret @include(if: $inc) child @include(if: $inc) { label } } }",
        {"skip": False, "inc": True},
    ),
    ("{ rows { id shout(times: 2) later } }", None),
    ("{ rows { id unmarked secret } }", None),
    ("{ row(index: 4) { id secret count must } }", None),
    ("{ row(index: 5) { id must } }", None),
    ("{ awaitedChild { label } }", None),
    ("{ rows { id a: child { label } b: child { size } } }", None),
    (
        "{ connection { totalCount edges { cursor node { id secret child { label } "
        "related { label size } } } } }",
        None,
    ),
    ("{ connection { edges { node { __typename id must } } } }", None),
    # Nested connections with arguments: the row completes in part on the fast path, the
    # page's connection, edges and nodes wholly; errors in nested nullable fields, in the
    # row's own fields after the page, and refused cursors, at their exact paths.
    (
        "{ rows { id page(first: 2) { pageInfo { hasNextPage endCursor } "
        "edges { cursor node { label size hidden } } } title secret } }",
        None,
    ),
    ('{ rows { id page(first: 2, after: "rel1.0") { edges { node { label hidden } } } } }', None),
    ('{ rows { id secret page(first: 1, after: "bad") { edges { node { label } } } } }', None),
    ('{ maybeRows { id secret page(first: 1, after: "bad") { edges { node { label } } } } }', None),
    (
        '{ maybeRows { id maybePage(first: 2, after: "bad") { edges { node { label } } } '
        "title page(first: 1) { edges { node { hidden } } } must } }",
        None,
    ),
    (
        "{ connection { totalCount edges { cursor node { id page(first: 3) { "
        "edges { node { label hidden __typename } } pageInfo { endCursor } } later } } } }",
        None,
    ),
    (
        "query($first: Int!, $after: String) { rows { ...P } } "
        "fragment P on Row { id p: page(first: $first, after: $after) { edges { node { label } } } "
        "q: page(first: 1) { edges { node { size } } } }",
        {"first": 1, "after": "rel2.0"},
    ),
]


def _normalised(result: Any) -> dict[str, Any]:
    return {
        "data": result.data,
        "errors": [format_error(e) for e in result.errors or []],
    }


@pytest.mark.parametrize(("query", "variables"), EDGE_CASE_QUERIES)
async def test_fast_path_matches_graphql_core_on_edge_cases(
    query: str, variables: dict[str, Any] | None
) -> None:
    fast, plain = _diff_schemas()
    expected = _normalised(
        await plain.execute(query, variable_values=variables, context_value=_LoaderContext())
    )
    actual = _normalised(
        await fast.execute(query, variable_values=variables, context_value=_LoaderContext())
    )
    assert actual == expected
    # The cases must actually exercise something: a response, and errors where meant.
    assert expected["data"] is not None or expected["errors"]


async def test_edge_cases_cover_errors_at_exact_paths() -> None:
    fast, _ = _diff_schemas()
    result = _normalised(await fast.execute(f"{{ rows {{ {ROW_FIELDS} }} }}"))
    paths = [e["path"] for e in result["errors"]]
    assert ["rows", 1, "secret"] in paths
    assert ["rows", 3, "count"] in paths
    assert result["data"]["rows"][1]["title"] == "t1"
    assert result["data"]["rows"][0]["code"] == "<c0>"
    assert result["data"]["rows"][1]["colour"] == "RED"


# --- through the real app, on SQLite and PostgreSQL -------------------------------------

APP_QUERIES: list[tuple[str, dict[str, Any] | None]] = [
    (
        "{ customers(first: 10) { totalCount pageInfo { hasNextPage endCursor } "
        "edges { cursor node { id name phone email nationalId bankCard tier lifecycle "
        "tags createdAt birthday __typename } } } }",
        None,
    ),
    (
        "{ customers(first: 10) { nodes { ...Contact ... on Customer { ref: id } } } } "
        "fragment Contact on Customer { name phone email }",
        None,
    ),
    (
        "query($withPhone: Boolean!) { customers(first: 10) { nodes { id "
        "phone @include(if: $withPhone) email @skip(if: $withPhone) } } }",
        {"withPhone": True},
    ),
    (
        "query($withPhone: Boolean!) { customers(first: 10) { nodes { id "
        "phone @include(if: $withPhone) email @skip(if: $withPhone) } } }",
        {"withPhone": False},
    ),
    ("{ customers(first: 10) { edges { node { id a: phone b: phone email region } } } }", None),
]


@pytest.mark.parametrize("role", ["agent", "analyst", "support"])
async def test_fast_path_matches_graphql_core_through_the_app(
    api: Api, state: AppState, role: str
) -> None:
    for _ in range(3):
        await make_customer(state, owner_id="agent-1")
    await make_customer(state, owner_id="agent-1", email=None, address=None)
    token = api.token(role, subject="agent-1", team="east")
    purpose = {"agent": "support", "support": "support", "analyst": "analytics"}[role]
    fast_schema = state.schema
    plain_schema = build_schema(fast_execution=False)
    saw_error = False
    for query, variables in APP_QUERIES:
        state.schema = fast_schema
        fast = await api.gql(query, variables, token=token, purpose=purpose)
        state.schema = plain_schema
        plain = await api.gql(query, variables, token=token, purpose=purpose)
        state.schema = fast_schema
        assert fast == plain
        assert fast["data"] is not None
        saw_error = saw_error or bool(fast.get("errors"))
    # Support and analysts are denied some fields: FORBIDDEN errors at their paths.
    assert saw_error == (role != "agent")


NESTED_APP_QUERIES: list[tuple[str, dict[str, Any] | None]] = [
    (
        "query($after: String) { customers(first: 10) { pageInfo { hasNextPage } edges { "
        "cursor node { id name interactions(first: 2, after: $after) { pageInfo { "
        "hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node { "
        "id channel occurredAt notes subject __typename } } } tier } } } }",
        {"after": None},
    ),
    (
        "{ customers(first: 10) { nodes { id interactions(first: 3) { nodes { id kind "
        "direction notes firstResponseBreached } } phone "
        "timeline(first: 2) { edges { node { kind recordId } } } } } }",
        None,
    ),
    # A refused cursor: BAD_CURSOR at each customer's `interactions`, nulls propagated.
    (
        "query($after: String) { customers(first: 10) { nodes { id name "
        "interactions(first: 2, after: $after) { edges { node { id notes } } } } } }",
        {"after": "not-a-cursor"},
    ),
]


@pytest.mark.parametrize("role", ["agent", "analyst"])
async def test_nested_connections_match_graphql_core_through_the_app(
    api: Api, state: AppState, role: str
) -> None:
    customers = [await make_customer(state, owner_id="agent-1") for _ in range(3)]
    for n, customer in enumerate(customers):
        await make_interactions(state, customer, n + 1)
    token = api.token(role, subject="agent-1", team="east")
    purpose = {"agent": "support", "analyst": "analytics"}[role]
    fast_schema = state.schema
    plain_schema = build_schema(fast_execution=False)
    queries = list(NESTED_APP_QUERIES)
    first = await api.gql(queries[0][0], queries[0][1], token=token, purpose=purpose)
    cursor = first["data"]["customers"]["edges"][-1]["node"]["interactions"]["pageInfo"]
    queries.append((queries[0][0], {"after": cursor["endCursor"]}))
    codes: set[str] = set()
    for query, variables in queries:
        state.schema = fast_schema
        fast = await api.gql(query, variables, token=token, purpose=purpose)
        state.schema = plain_schema
        plain = await api.gql(query, variables, token=token, purpose=purpose)
        state.schema = fast_schema
        assert fast == plain
        codes |= {e["extensions"]["code"] for e in fast.get("errors", [])}
    # Analysts are denied interaction notes (null and FORBIDDEN inside each page).
    assert codes == ({"BAD_CURSOR", "FORBIDDEN"} if role == "analyst" else {"BAD_CURSOR"})


def test_the_nested_interactions_fields_are_plain() -> None:
    """The benchmark's nested shape completes in the loop: every field of a customer's
    interactions page, and the customer's own fields beside `interactions`."""
    from graphql import GraphQLObjectType

    from schema.execution import _getter

    schema = build_schema()._schema
    for type_name, fields in (
        ("Customer", ("id", "name")),
        ("InteractionConnection", ("edges", "nodes", "pageInfo")),
        ("InteractionEdge", ("cursor", "node")),
        ("Interaction", ("id", "channel", "occurredAt", "notes", "kind", "direction")),
        ("PageInfo", ("hasNextPage", "hasPreviousPage", "startCursor", "endCursor")),
    ):
        named = schema.type_map[type_name]
        assert isinstance(named, GraphQLObjectType)
        assert named.is_type_of is None, type_name
        for name in fields:
            assert _getter(named.fields[name]) is not None, f"{type_name}.{name}"


async def test_single_customer_and_missing_one_match_through_the_app(
    api: Api, state: AppState
) -> None:
    customer_id = await make_customer(state, owner_id="agent-1")
    token = api.token("agent", subject="agent-1", team="east")
    query = "query($id: ID!) { customer(id: $id) { id name nationalId bankCard birthday } }"
    for variables in ({"id": str(customer_id)}, {"id": "not-an-id"}):
        state.schema, fast_schema = build_schema(fast_execution=False), state.schema
        plain = await api.gql(query, variables, token=token)
        state.schema = fast_schema
        fast = await api.gql(query, variables, token=token)
        assert fast == plain


class _CountingContext(FastExecutionContext):
    """Counts objects completed by the fast path, so the tests above cannot pass vacuously."""

    plain_objects = 0

    def _complete_plain(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        type(self).plain_objects += 1
        return super()._complete_plain(*args, **kwargs)


@pytest.mark.parametrize(
    ("query", "plain_objects"),
    [
        ("{ rows { id title colour at code tags } }", 6),
        ("{ rows { id child { label } } }", 6 + 5),
        # A field the loop cannot complete leaves the row's plain fields to it: one
        # run of plain fields per row, the other field resolved by graphql-core.
        ("{ rows { id later } }", 6),
        ("{ rows { id shout(times: 1) } }", 6),
        ("{ rows { id unmarked } }", 6),
        ("{ rows { later } }", 0),
        # Each row with its three children, inside the row's own loop.
        ("{ rows { id children { label } } }", 6 * (1 + 3)),
        # The whole connection in one plan: itself, each edge and each node.
        ("{ connection { totalCount edges { cursor node { id } } } }", 1 + 6 * 2),
        # The row in part (its id); the edges around it on graphql-core's path.
        ("{ connection { edges { node { id later } } } }", 6),
        # A nested page: each row's id, then each page whole (itself, 2 edges, 2 nodes).
        ("{ rows { id page(first: 2) { edges { node { label } } } } }", 6 + 6 * (1 + 2 * 2)),
    ],
)
async def test_fast_path_is_taken_only_for_plain_selections(query: str, plain_objects: int) -> None:
    schema = strawberry.Schema(
        query=DiffQuery,
        config=StrawberryConfig(scalar_map=SCALARS),
        execution_context_class=_CountingContext,
    )
    _CountingContext.plain_objects = 0
    result = await schema.execute(query, context_value=_LoaderContext())
    assert result.data is not None
    assert _CountingContext.plain_objects == plain_objects
