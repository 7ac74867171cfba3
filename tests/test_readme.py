"""Every example in README.md works as written.

Each ```graphql block is parsed, and each operation in it is validated against the
schema the server builds (its variables declared); each `custos` line of a ```sh block
runs, in order, in a fresh CUSTOS_HOME with demo data (tests/test_readme_cli.py). A
failure names the README line, so a schema change that breaks an example says which.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    parse,
    validate,
)

from schema.build import build_schema

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass(frozen=True)
class Block:
    language: str
    line: int  # README line of the block's first line (after the fence)
    text: str


def fenced_blocks(text: str) -> list[Block]:
    """Every fenced block of a Markdown text, with its language and first line."""
    blocks: list[Block] = []
    language: str | None = None
    start = 0
    lines: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = FENCE.match(line)
        if language is None and match is not None:
            language, start, lines = match.group(1), number + 1, []
        elif language is not None and line.strip() == "```":
            blocks.append(Block(language, start, "\n".join(lines)))
            language = None
        elif language is not None:
            lines.append(line)
    assert language is None, f"README.md: the block opened at line {start - 1} never closes"
    return blocks


GRAPHQL_BLOCKS = [b for b in fenced_blocks(README.read_text()) if b.language == "graphql"]


def _where(block: Block, error: GraphQLError) -> str:
    lines = [block.line + loc.line - 1 for loc in error.locations or []]
    return f"README.md line {lines[0] if lines else block.line}: {error.message}"


def problems(schema: GraphQLSchema, block: Block) -> list[str]:
    """Parse errors, or each operation's validation errors, as README line numbers."""
    try:
        document = parse(block.text)
    except GraphQLError as error:
        return [_where(block, error)]
    fragments = [d for d in document.definitions if isinstance(d, FragmentDefinitionNode)]
    found: list[str] = []
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            alone = DocumentNode(definitions=(definition, *fragments))
            found.extend(_where(block, e) for e in validate(schema, alone))
    return found


@pytest.fixture(scope="module")
def graphql_schema() -> GraphQLSchema:
    return build_schema()._schema


def test_the_readme_has_graphql_examples() -> None:
    assert len(GRAPHQL_BLOCKS) >= 10
    assert sum(b.text.count("mutation") for b in GRAPHQL_BLOCKS) >= 20


@pytest.mark.parametrize("block", GRAPHQL_BLOCKS, ids=lambda b: f"line-{b.line}")
def test_graphql_example_parses_and_validates(block: Block, graphql_schema: GraphQLSchema) -> None:
    assert problems(graphql_schema, block) == []


def test_a_broken_example_is_reported_by_its_readme_line(graphql_schema: GraphQLSchema) -> None:
    text = "intro\n```graphql\n{ customers(first: 1) { totalCount } }\n\nquery { zzz }\n```\n"
    [block] = fenced_blocks(text)
    assert problems(graphql_schema, block) == [
        "README.md line 5: Cannot query field 'zzz' on type 'Query'."
    ]
    unclosed = Block("graphql", 10, 'mutation { createOrder(customerId: "1", items: []) {')
    [message] = problems(graphql_schema, unclosed)
    assert message.startswith("README.md line 10: Syntax Error")
