"""Input checked at the edge, cheap first: before graphql-core coerces a variable, before
strawberry converts an input object, before any resolver runs or reads the database.

`InputGuard` looks at the raw request once the document has validated:
- every variable value as the client sent it (JSON): strings up to
  `CUSTOS_MAX_INPUT_STRING` characters, lists and objects up to `CUSTOS_MAX_INPUT_LIST`
  items, no NUL character and no invalid code point (server/inputs.py);
- every string and list literal in the document, by the same rules;
- every `first` below the root fields: out of 0..`CUSTOS_MAX_PAGE_SIZE` it is refused
  once, before the root list runs (a root field's own `first` is checked by its resolver
  before any I/O, and answers at its path).
A refusal is a request error (nothing executes): `BAD_USER_INPUT` with the location and
`extensions.field`, never the value.

`install_prechecks` runs a root field's permission check before strawberry converts its
arguments: an analyst's `importCustomers` of a thousand rows is FORBIDDEN without one row
being converted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from graphql import (
    ArgumentNode,
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    VariableNode,
    Visitor,
    visit,
)
from strawberry.extensions import SchemaExtension

from schema.errors import BAD_USER_INPUT, ArgumentPaths
from schema.imports import may_import_customers, may_import_orders
from server.inputs import text_problem, value_problem

# Root fields whose permission is checked before their arguments are converted.
PRECHECKS: Mapping[tuple[str, str], Callable[[Any], None]] = {
    ("Mutation", "importCustomers"): may_import_customers,
    ("Mutation", "importOrders"): may_import_orders,
}


def _refusal(message: str, node: Any, field: str | None) -> GraphQLError:
    extensions: dict[str, Any] = {"code": BAD_USER_INPUT}
    if field:
        extensions["field"] = field
    return GraphQLError(message, node, extensions=extensions)


def selected_operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name is not None and o.name.value == name), None)


class _Literals(Visitor):
    def __init__(self, max_string: int, max_list: int, paths: ArgumentPaths) -> None:
        super().__init__()
        self.max_string = max_string
        self.max_list = max_list
        self.paths = paths
        self.errors: list[GraphQLError] = []

    def _field(self, node: Any) -> str | None:
        return self.paths.at.get(node.loc.start) if node.loc is not None else None

    def enter_string_value(self, node: StringValueNode, *_: Any) -> None:
        value = node.value
        if len(value) > self.max_string:
            problem: str | None = f"a string longer than {self.max_string} characters"
        else:
            problem = text_problem(value)
        if problem is not None:
            self.errors.append(
                _refusal(f"This string literal holds {problem}.", node, self._field(node))
            )

    def enter_list_value(self, node: ListValueNode, *_: Any) -> None:
        if len(node.values) > self.max_list:
            self.errors.append(
                _refusal(
                    f"This list literal is longer than {self.max_list} items.",
                    node,
                    self._field(node),
                )
            )


def _variable_errors(
    operation: OperationDefinitionNode,
    variables: Mapping[str, Any],
    paths: ArgumentPaths,
    max_string: int,
    max_list: int,
) -> Iterator[GraphQLError]:
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        if name not in variables:
            continue
        found = value_problem(variables[name], max_string=max_string, max_list=max_list)
        if found is None:
            continue
        usage = paths.variables.get(name, name)
        where = f" at '{found.dotted()}'" if found.path else ""
        yield _refusal(
            f"Variable '${name}' holds {found.problem}{where}.", definition, found.dotted(usage)
        )


def _selections(
    selection_set: SelectionSetNode | None, fragments: Mapping[str, FragmentDefinitionNode]
) -> Iterator[FieldNode]:
    """The fields of a selection set, through inline fragments and spreads (each fragment
    once), without descending into the fields' own selections."""
    seen: set[str] = set()
    stack = [selection_set] if selection_set is not None else []
    while stack:
        current = stack.pop()
        for selection in current.selections:
            if isinstance(selection, FieldNode):
                yield selection
            elif isinstance(selection, InlineFragmentNode):
                stack.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = fragments.get(name)
                if fragment is not None and name not in seen:
                    seen.add(name)
                    stack.append(fragment.selection_set)


def root_fields(
    operation: OperationDefinitionNode, fragments: Mapping[str, FragmentDefinitionNode]
) -> list[FieldNode]:
    """The operation's root fields, through fragments at the root."""
    return list(_selections(operation.selection_set, fragments))


def _nested_first_errors(
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
    max_page_size: int,
) -> Iterator[GraphQLError]:
    """Every `first` below the root fields, each selection set looked at once."""
    roots = root_fields(operation, fragments)
    pending = [root.selection_set for root in roots if root.selection_set is not None]
    done_sets: set[int] = set()
    reported: set[int] = set()
    while pending:
        selection_set = pending.pop()
        if id(selection_set) in done_sets:
            continue
        done_sets.add(id(selection_set))
        for field in _selections(selection_set, fragments):
            for argument in field.arguments or ():
                if argument.name.value == "first" and id(argument) not in reported:
                    reported.add(id(argument))
                    value = _int_argument(argument, variables)
                    if value is not None and not 0 <= value <= max_page_size:
                        yield _refusal(
                            f"first must be between 0 and {max_page_size}", argument, "first"
                        )
            if field.selection_set is not None:
                pending.append(field.selection_set)


def _int_argument(argument: ArgumentNode, variables: Mapping[str, Any]) -> int | None:
    value = argument.value
    if isinstance(value, IntValueNode):
        return int(value.value)
    if isinstance(value, VariableNode):
        raw = variables.get(value.name.value)
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
    return None


def check_request(
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    *,
    max_string: int,
    max_list: int,
    max_page_size: int | None,
) -> list[GraphQLError]:
    """Every refusal of the raw request; empty when it may execute."""
    operation = selected_operation(document, operation_name)
    if operation is None:
        return []  # graphql-core answers an unknown operation itself
    paths = ArgumentPaths.of(document)
    raw = variables or {}
    errors = list(_variable_errors(operation, raw, paths, max_string, max_list))
    literals = _Literals(max_string, max_list, paths)
    visit(document, literals)
    errors.extend(literals.errors)
    if max_page_size is not None and not errors:
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        errors.extend(_nested_first_errors(operation, fragments, raw, max_page_size))
    return errors


class InputGuard(SchemaExtension):
    """Refuses a request whose raw input breaks the rules above, before execution."""

    def __init__(self, *, max_string: int, max_list: int) -> None:
        self.max_string = max_string
        self.max_list = max_list

    def on_execute(self) -> Iterator[None]:
        ctx = self.execution_context
        document = ctx.graphql_document
        if ctx.result is None and document is not None:
            errors = check_request(
                document,
                ctx.operation_name,
                ctx.variables,
                max_string=self.max_string,
                max_list=self.max_list,
                max_page_size=getattr(ctx.context, "max_page_size", None),
            )
            if errors:
                ctx.result = ExecutionResult(data=None, errors=errors)
        yield


def install_prechecks(schema: GraphQLSchema) -> None:
    """Wrap the resolvers of `PRECHECKS` so their check runs on the raw arguments."""
    for (type_name, field_name), check in PRECHECKS.items():
        owner = schema.type_map[type_name]
        assert isinstance(owner, GraphQLObjectType)
        field = owner.fields[field_name]
        resolve = field.resolve
        assert resolve is not None

        def guarded(
            source: Any,
            info: Any,
            _resolve: Callable[..., Any] = resolve,
            _check: Callable[[Any], None] = check,
            **arguments: Any,
        ) -> Any:
            _check(info.context)
            return _resolve(source, info, **arguments)

        field.resolve = guarded
