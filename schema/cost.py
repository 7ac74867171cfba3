"""What an operation costs, computed from the document before anything runs.

Each field says what it costs next to its declaration, as strawberry metadata:
`strawberry.field(metadata=cost(weight=..., size=...))`. Undeclared fields cost 0 (a
scalar or enum: it is read off its parent) or 1 (an object: it is resolved); a list of
objects must declare how many items it holds (`size`), which multiplies the cost of its
selection (tests/test_query_cost.py fails when one does not).

One pass over the operation gives its depth, its aliases, its fields once every
fragment is expanded, its cost and its lookups by sealed value. Every fragment is
analysed once per (fragment, enclosing page size, enclosing facts) and then reused, so
the pass is linear in the document however often fragments spread each other: the
fragment bomb `F1 { ...F0 ...F0 } … F20 { ...F19 ...F19 }` is counted, not walked.
The numbers are upper bounds: a fragment spread twice counts twice, and every type
condition of an abstract selection counts, although execution merges and picks.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    BooleanValueNode,
    EnumValueNode,
    FieldNode,
    FloatValueNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    Undefined,
    ValueNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_composite_type,
    is_list_type,
)

COST_KEY = "custos_cost"
DEFINITION_KEY = "strawberry-definition"
# Facts a field hands down to the sizes of its descendants (e.g. a metrics series'
# number of buckets), as a hashable tuple so fragment results can be memoised on it.
Facts = tuple[tuple[str, int], ...]
Arguments = Mapping[str, Any]

# A mutation field that does not say: it writes, and its audit entry commits with it.
DEFAULT_MUTATION_WEIGHT = 10


@dataclass(frozen=True, slots=True)
class SizeContext:
    """What a size rule may read: the field's arguments (variables substituted, defaults
    filled), the enclosing page size and the facts set by ancestors."""

    arguments: Arguments
    page: int
    facts: Mapping[str, int]
    max_page_size: int


SizeRule = Callable[[SizeContext], int]


Weight = int | Callable[[Arguments], int]


@dataclass(frozen=True, slots=True)
class Cost:
    """A field's declared cost. `weight`: resolving it once (None: 0 for a scalar or
    enum, 1 for an object or a list, 10 for a mutation), or a function of its arguments
    for work done whatever is selected (a metrics report computes every bucket); each
    item of a list then adds 1 and its selection. `size`: how many items a list holds,
    or (`pages`) how many items a connection pages: its `edges` and `nodes` then take
    that size. `lookup`: a lookup by a sealed value,
    counted against the stricter lookup rate limit. `facts`: values its descendants'
    sizes depend on, computed from its arguments."""

    weight: Weight | None = None
    size: SizeRule | None = None
    pages: bool = False
    lookup: bool = False
    facts: Callable[[Arguments], Mapping[str, int]] | None = None

    def needs_arguments(self) -> bool:
        return self.size is not None or self.facts is not None or callable(self.weight)


def cost(
    *,
    weight: Weight | None = None,
    size: SizeRule | None = None,
    lookup: bool = False,
    facts: Callable[[Arguments], Mapping[str, int]] | None = None,
) -> dict[str, Any]:
    """Field metadata declaring its cost: `strawberry.field(metadata=cost(...))`."""
    return {COST_KEY: Cost(weight=weight, size=size, lookup=lookup, facts=facts)}


def paged(*, weight: Weight | None = None, argument: str = "first") -> dict[str, Any]:
    """A connection field: its page holds `first` items (the argument's default when
    absent, at most the maximum page size); its `edges` and `nodes` are that long."""
    return {COST_KEY: Cost(weight=weight, size=counted(argument), pages=True)}


def counted(argument: str = "first") -> SizeRule:
    """A list as long as a count argument asks (its default when absent, at most the
    maximum page size)."""

    def size(ctx: SizeContext) -> int:
        return clamp(ctx.arguments.get(argument), ctx.max_page_size)

    return size


def _page(ctx: SizeContext) -> int:
    return ctx.page


# `edges` and `nodes` of a connection: as many as the connection's page.
PAGE: SizeRule = _page


def assumed(items: int) -> SizeRule:
    """A list with no size argument: the number of items it typically holds."""

    def size(_: SizeContext) -> int:
        return items

    return size


def from_fact(name: str, default: int) -> SizeRule:
    """A list as long as a fact an ancestor set (e.g. the buckets of a metrics series)."""

    def size(ctx: SizeContext) -> int:
        return ctx.facts.get(name, default)

    return size


def argument_length(name: str, maximum: int) -> SizeRule:
    """As many items as a list argument holds (at most `maximum` are accepted)."""

    def size(ctx: SizeContext) -> int:
        value = ctx.arguments.get(name)
        return min(len(value), maximum) if isinstance(value, list | tuple) else 1

    return size


def clamp(value: Any, maximum: int) -> int:
    """A requested count as the cost counts it: a number outside 0..maximum is refused
    by the field itself, so it counts as the maximum at most."""
    if isinstance(value, bool) or not isinstance(value, int):
        return maximum
    return max(0, min(value, maximum))


def days_between(start: Any, end: Any) -> int:
    """Days in [start, end] of two ISO dates; 1 if either does not parse (the request
    then fails its argument coercion before anything runs)."""
    try:
        first = datetime.date.fromisoformat(str(start))
        last = datetime.date.fromisoformat(str(end))
    except ValueError:
        return 1
    return max(1, (last - first).days + 1)


def declared(field_def: GraphQLField) -> Cost | None:
    definition = field_def.extensions.get(DEFINITION_KEY)
    metadata = getattr(definition, "metadata", None) or {}
    found = metadata.get(COST_KEY)
    return found if isinstance(found, Cost) else None


def needs_size(field_def: GraphQLField) -> bool:
    """A list of objects, or a field that takes a page size: its size must be declared."""
    nullable = get_nullable_type(field_def.type)
    composite = is_composite_type(get_named_type(field_def.type))
    return (is_list_type(nullable) and composite) or any(
        name in field_def.args for name in ("first", "last")
    )


@dataclass(slots=True)
class Totals:
    """What a selection amounts to. Depth counts nested object fields (a scalar adds
    nothing), as strawberry's depth limiter did; aliases and fields are counted with
    every fragment expanded; cost and lookups also multiply by list sizes."""

    depth: int = 0
    aliases: int = 0
    fields: int = 0
    cost: int = 0
    lookups: int = 0

    def add(self, other: Totals, times: int = 1) -> None:
        self.depth = max(self.depth, other.depth)
        self.aliases += other.aliases
        self.fields += other.fields
        self.cost += other.cost * times
        self.lookups += other.lookups * times


@dataclass
class Analysis:
    """One pass over one operation with its variables."""

    schema: GraphQLSchema
    fragments: Mapping[str, FragmentDefinitionNode]
    variables: Mapping[str, Any]
    max_page_size: int
    _memo: dict[tuple[str, int, Facts], Totals] = field(default_factory=dict)
    _open: set[str] = field(default_factory=set)

    def operation(self, operation: OperationDefinitionNode) -> Totals:
        root = self.schema.get_root_type(operation.operation)
        if root is None:
            return Totals()
        totals = self.selection_set(operation.selection_set, root, 1, ())
        return totals

    def selection_set(
        self, selection_set: SelectionSetNode, parent: GraphQLNamedType, page: int, facts: Facts
    ) -> Totals:
        totals = Totals()
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                totals.add(self._field(selection, parent, page, facts))
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self.schema.get_type(condition.name.value) if condition else parent
                totals.add(
                    self.selection_set(selection.selection_set, inner or parent, page, facts)
                )
            elif isinstance(selection, FragmentSpreadNode):
                totals.add(self._spread(selection.name.value, page, facts))
        return totals

    def _spread(self, name: str, page: int, facts: Facts) -> Totals:
        key = (name, page, facts)
        found = self._memo.get(key)
        if found is not None:
            return found
        fragment = self.fragments.get(name)
        if fragment is None or name in self._open:
            # Unknown fragments and cycles are validation errors; never reached here.
            return Totals()
        self._open.add(name)
        try:
            parent = self.schema.get_type(fragment.type_condition.name.value)
            result = (
                self.selection_set(fragment.selection_set, parent, page, facts)
                if parent is not None
                else Totals()
            )
        finally:
            self._open.discard(name)
        self._memo[key] = result
        return result

    def _field(self, node: FieldNode, parent: GraphQLNamedType, page: int, facts: Facts) -> Totals:
        name = node.name.value
        totals = Totals(aliases=1 if node.alias else 0, fields=1)
        if name.startswith("__") or not isinstance(parent, GraphQLObjectType):
            # Introspection is free here (and limited elsewhere); abstract parents only
            # offer __typename, everything else comes through a type condition.
            return totals
        field_def = parent.fields.get(name)
        if field_def is None:
            return totals
        rule = declared(field_def) or Cost()
        arguments = self._arguments(node, field_def) if rule.needs_arguments() else {}
        named = get_named_type(field_def.type)
        weight = rule.weight(arguments) if callable(rule.weight) else rule.weight
        if node.selection_set is None or not is_composite_type(named):
            totals.cost = weight or 0
            return totals
        if weight is None:
            weight = DEFAULT_MUTATION_WEIGHT if parent is self.schema.mutation_type else 1
        items: int | None = None
        child_page, child_facts = page, facts
        if rule.size is not None:
            size = rule.size(SizeContext(arguments, page, dict(facts), self.max_page_size))
            if rule.pages:
                child_page = size
            else:
                items = size
        if rule.facts is not None:
            child_facts = tuple(sorted({**dict(facts), **rule.facts(arguments)}.items()))
        inner = self.selection_set(node.selection_set, named, child_page, child_facts)
        totals.depth = 1 + inner.depth
        totals.aliases += inner.aliases
        totals.fields += inner.fields
        if items is None:
            totals.cost = weight + inner.cost
            totals.lookups = inner.lookups
        else:
            # A list: its own weight once, then 1 per item (an object) and its selection.
            totals.cost = weight + items * (1 + inner.cost)
            totals.lookups = items * inner.lookups
        totals.lookups += 1 if rule.lookup else 0
        return totals

    def _arguments(self, node: FieldNode, field_def: GraphQLField) -> dict[str, Any]:
        values: dict[str, Any] = {
            name: argument.default_value
            for name, argument in field_def.args.items()
            if argument.default_value is not Undefined and argument.default_value is not None
        }
        for argument in node.arguments or ():
            values[argument.name.value] = literal(argument.value, self.variables)
        return values


def literal(node: ValueNode, variables: Mapping[str, Any]) -> Any:
    """A literal argument value as Python, variables substituted (as sent: uncoerced)."""
    if isinstance(node, VariableNode):
        return variables.get(node.name.value)
    if isinstance(node, IntValueNode):
        return int(node.value)
    if isinstance(node, FloatValueNode):
        return float(node.value)
    if isinstance(node, StringValueNode | EnumValueNode | BooleanValueNode):
        return node.value
    if isinstance(node, ListValueNode):
        return [literal(v, variables) for v in node.values]
    if isinstance(node, ObjectValueNode):
        return {f.name.value: literal(f.value, variables) for f in node.fields}
    return None


def variable_values(
    operation: OperationDefinitionNode, provided: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The variables as sent, with the operation's declared defaults for missing ones
    (literal defaults only; a bad value fails coercion later and never runs)."""
    values: dict[str, Any] = {}
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        if provided is not None and name in provided:
            values[name] = provided[name]
        elif definition.default_value is not None:
            values[name] = literal(definition.default_value, {})
    return values


def undeclared_sizes(schema: GraphQLSchema) -> Iterable[str]:
    """`Type.field` of every field that needs a size rule and has none."""
    for type_name, named in schema.type_map.items():
        if type_name.startswith("__") or not isinstance(named, GraphQLObjectType):
            continue
        for field_name, field_def in named.fields.items():
            rule = declared(field_def)
            if needs_size(field_def) and (rule is None or rule.size is None):
                yield f"{type_name}.{field_name}"
