"""Property-based fuzzing of the real schema over real HTTP, as several roles.

hypothesis-graphql generates queries and mutations against the schema (valid ones and
ones with a single violation); every string literal carries a canary. Whatever the
document, the answer is never a 5xx, every error has `extensions.code`, no traceback
text appears anywhere, and the canary is never repeated in an error message (GraphQL
errors and `UserError` results alike). The `api` fixture also checks that each executed
request left exactly one audit event and that the chain verifies.

Deterministic: examples derive from the test (`derandomize`); set CUSTOS_FUZZ_SEED to
explore other examples (`CUSTOS_FUZZ_SEED=123 pytest tests/test_fuzz.py`), and
CUSTOS_FUZZ_EXAMPLES for more of them. A failure prints the seed, the role, the document
and the answer.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import graphql
import orjson
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, mutations, nodes, queries

from tests.conftest import Api

CANARY = "Qx7fuzzcanary"
SDL = (Path(__file__).parents[1] / "schema" / "schema.graphql").read_text()
ROLES = ("admin", "manager", "agent", "support", "analyst", "compliance", "integrator")
PURPOSES = (None, "support", "sales", "analytics", "compliance")
SEED = os.environ.get("CUSTOS_FUZZ_SEED")
EXAMPLES = int(os.environ.get("CUSTOS_FUZZ_EXAMPLES", "40"))
TRACEBACK_MARKS = ("Traceback (most recent call last)", 'File "/', '.py", line ')


def _strings(draw_any: st.SearchStrategy[str]) -> st.SearchStrategy[graphql.ValueNode]:
    return draw_any.map(nodes.String)


SCALARS: dict[str, st.SearchStrategy[graphql.ValueNode]] = {
    "Date": _strings(
        st.one_of(
            st.dates(datetime.date(1, 1, 1), datetime.date(9999, 12, 31)).map(
                datetime.date.isoformat
            ),
            st.text(max_size=12),
        )
    ),
    "DateTime": _strings(
        st.one_of(
            st.datetimes(
                datetime.datetime(1, 1, 2),
                datetime.datetime(9999, 12, 30),
                timezones=st.one_of(st.none(), st.just(datetime.UTC)),
            ).map(datetime.datetime.isoformat),
            st.text(max_size=12),
        )
    ),
    "Decimal": st.one_of(
        st.decimals(allow_nan=True, allow_infinity=True, places=2).map(nodes.String),
        st.integers().map(nodes.Int),
        st.text(max_size=8).map(nodes.String),
    ),
    "JSON": st.text(max_size=8).map(nodes.String),
}


class _Canaries(graphql.Visitor):
    """Puts the canary into every string literal of a generated document."""

    def enter_string_value(self, node: graphql.StringValueNode, *_: Any) -> Any:
        return graphql.StringValueNode(value=CANARY + node.value, block=False)


def _with_canaries(document: graphql.DocumentNode) -> str:
    return graphql.print_ast(graphql.visit(document, _Canaries()))


def _documents(kind: Callable[..., st.SearchStrategy[Any]]) -> st.SearchStrategy[str]:
    return st.one_of(
        kind(SDL, custom_scalars=SCALARS, print_ast=_with_canaries, mode=Mode.POSITIVE),
        kind(SDL, custom_scalars=SCALARS, print_ast=_with_canaries, mode=Mode.NEGATIVE),
    )


def _user_error_messages(data: Any) -> Iterator[str]:
    """Messages of `UserError` results (dicts with a code and a message) in the data."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("message"), str) and "code" in item:
                yield item["message"]
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _check(status: int, text: str) -> None:
    assert status < 500, "a 5xx answer"
    for mark in TRACEBACK_MARKS:
        assert mark not in text, "traceback text in the answer"
    body = orjson.loads(text)
    errors = body.get("errors") or []
    for error in errors:
        assert error.get("extensions", {}).get("code"), f"an error without a code: {error}"
        assert CANARY not in orjson.dumps(error).decode(), f"the canary in an error: {error}"
    for message in _user_error_messages(body.get("data")):
        assert CANARY not in message, f"the canary in a UserError message: {message}"


def fuzz_settings(test: Callable[..., Any]) -> Callable[..., Any]:
    configured = settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=SEED is None,
        print_blob=True,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )(test)
    return seed(int(SEED))(configured) if SEED is not None else configured


async def _send(api: Api, document: str, role: str, purpose: str | None) -> None:
    response = await api.post(
        document, token=api.token(role, team="east", subject=f"fuzz-{role}"), purpose=purpose
    )
    where = (
        f"seed={SEED or 'derandomized'} role={role} purpose={purpose}\n"
        f"document:\n{document}\nanswer {response.status_code}:\n{response.text[:2000]}"
    )
    try:
        _check(response.status_code, response.text)
    except AssertionError as failure:
        raise AssertionError(f"{failure}\n{where}") from None


@fuzz_settings
@given(
    document=_documents(queries),
    role=st.sampled_from(ROLES),
    purpose=st.sampled_from(PURPOSES),
)
async def test_generated_queries(api: Api, document: str, role: str, purpose: str | None) -> None:
    await _send(api, document, role, purpose)


@fuzz_settings
@given(
    document=_documents(mutations),
    role=st.sampled_from(ROLES),
    purpose=st.sampled_from(PURPOSES),
)
async def test_generated_mutations(api: Api, document: str, role: str, purpose: str | None) -> None:
    await _send(api, document, role, purpose)


def test_the_canary_visitor_reaches_every_string() -> None:
    document = graphql.parse('{ a(x: "one", y: ["two"], z: {w: """three"""}) }')
    printed = _with_canaries(document)
    assert printed.count(CANARY) == 3
