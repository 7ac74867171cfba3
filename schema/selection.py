"""Which fields a query selects below a resolver, honouring fragments and @skip/@include.

Services reveal only selected sealed fields, so nothing is decrypted (or audited as
revealed) that the client did not ask for.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLIncludeDirective,
    GraphQLSkipDirective,
    InlineFragmentNode,
    SelectionSetNode,
)
from graphql.execution.values import get_directive_values
from strawberry.types import Info


def _included(node: Any, variables: Any) -> bool:
    skip = get_directive_values(GraphQLSkipDirective, node, variables)
    if skip and skip.get("if") is True:
        return False
    include = get_directive_values(GraphQLIncludeDirective, node, variables)
    return not (include and include.get("if") is False)


def _fields(
    selection_set: SelectionSetNode | None, fragments: dict[str, Any], variables: Any
) -> Iterable[FieldNode]:
    if selection_set is None:
        return
    for selection in selection_set.selections:
        if not _included(selection, variables):
            continue
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from _fields(selection.selection_set, fragments, variables)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                yield from _fields(fragment.selection_set, fragments, variables)


def selected_names(info: Info[Any, Any], *paths: Sequence[str]) -> set[str]:
    """GraphQL field names selected under each path (e.g. ("edges", "node"), ("nodes",))."""
    raw = info._raw_info
    fragments = raw.fragments
    variables = raw.variable_values
    names: set[str] = set()
    for path in paths or ((),):
        level: list[FieldNode] = list(raw.field_nodes)
        for step in path:
            level = [
                child
                for node in level
                for child in _fields(node.selection_set, fragments, variables)
                if child.name.value == step
            ]
        for node in level:
            names.update(
                child.name.value for child in _fields(node.selection_set, fragments, variables)
            )
    names.discard("__typename")
    return names


def top_level_names(info: Info[Any, Any]) -> set[str]:
    return selected_names(info, ())
