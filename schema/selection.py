"""Which fields a query selects below a resolver, honouring fragments and @skip/@include.

Services reveal only selected sealed fields, so nothing is decrypted (or audited as
revealed) that the client did not ask for.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

from graphql import (
    BooleanValueNode,
    FieldNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    SelectionSetNode,
    VariableNode,
)
from strawberry.types import Info


def _directive_if(node: Any, directive: str, variables: dict[str, Any]) -> bool | None:
    # Resolvers see the coerced variables as a plain dict (not graphql-core's
    # VariableValues), so the `if:` argument of @skip/@include is read directly;
    # validation has already checked it is a Boolean! literal or variable.
    for found in node.directives or ():
        if found.name.value != directive:
            continue
        for argument in found.arguments:
            if argument.name.value != "if":
                continue
            value = argument.value
            if isinstance(value, VariableNode):
                return bool(variables.get(value.name.value))
            if isinstance(value, BooleanValueNode):
                return value.value
    return None


def _included(node: Any, variables: dict[str, Any]) -> bool:
    if _directive_if(node, "skip", variables) is True:
        return False
    return _directive_if(node, "include", variables) is not False


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


def _fields_on(
    selection_set: SelectionSetNode | None,
    fragments: dict[str, Any],
    variables: Any,
    type_names: Collection[str],
) -> Iterable[FieldNode]:
    # Like `_fields`, but fragments count only when their type condition is one of
    # `type_names`: on an abstract field, `... on Order { status }` is not Customer's.
    if selection_set is None:
        return
    for selection in selection_set.selections:
        if not _included(selection, variables):
            continue
        if isinstance(selection, FieldNode):
            yield selection
            continue
        if isinstance(selection, InlineFragmentNode):
            condition = selection.type_condition
            inner = selection.selection_set
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is None:
                continue
            condition = fragment.type_condition
            inner = fragment.selection_set
        else:
            continue
        if condition is None or condition.name.value in type_names:
            yield from _fields_on(inner, fragments, variables, type_names)


def selected_names_on(info: Info[Any, Any], type_names: Collection[str], *path: str) -> set[str]:
    """On an abstract field (an interface), the field names selected for a value of one
    of `type_names` (the concrete type and the interfaces it implements), then under
    `path` below it."""
    raw = info._raw_info
    fragments = raw.fragments
    variables = raw.variable_values
    level = [
        child
        for node in raw.field_nodes
        for child in _fields_on(node.selection_set, fragments, variables, type_names)
    ]
    for step in path:
        level = [
            child
            for node in level
            if node.name.value == step
            for child in _fields(node.selection_set, fragments, variables)
        ]
    names = {node.name.value for node in level}
    names.discard("__typename")
    return names
