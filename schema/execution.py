"""An execution context that completes plain selections without graphql-core's per-field cost.

graphql-core spends a few microseconds on every field of every object: a resolve-info
object, argument coercion, a resolver wrapper, `complete_value`'s type dispatch. For a
page of 1,000 customers with ten fields that is most of the request. Here an object
whose whole selection is *plain* — `__typename`, fields read straight off the parent
(strawberry's default resolver) or resolvers declared with `plain_leaf`, returning
scalars, enums, further plain objects or lists of either — is completed in one tight
loop from a plan computed once per (type, selection) per request.

An object whose selection mixes plain fields with others (a customer's `id name` beside
`interactions(first: 20)`) is completed in part: its plain fields in the loop, the
others by graphql-core's `execute_field` in selection order, so their resolvers run,
their arguments are coerced and their errors land exactly as graphql-core would place
them; the objects those fields return (the interactions' connection, its edges and
nodes) come back through `complete_object_value` and take the fast path themselves.

Semantics are graphql-core's, by construction: anything the loop cannot prove plain
(arguments, field extensions such as permission classes, middleware, `is_type_of`,
abstract types, @defer/@stream, awaitables, a null or an error in a non-null position,
a scalar that will not coerce) sends that object back to the normal path, which
re-runs its pure resolvers and produces exactly what graphql-core would. An error in a
nullable plain field (e.g. a denied customer field) stays on the fast path: the field
is null and the error is recorded at its exact path, in the order graphql-core would.
"""

from __future__ import annotations

import asyncio
import operator
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from graphql import (
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    Undefined,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
)
from graphql.execution import executor as graphql_executor
from graphql.execution.collect_fields import FieldDetails
from graphql.pyutils import Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.field import StrawberryField

F = TypeVar("F", bound=Callable[..., Any])

PLAIN_LEAF_MARK = "__custos_plain_leaf__"
DEFINITION_KEY = "strawberry-definition"
# The name strawberry gives the resolver of a field with no resolver and no extensions.
BASIC_RESOLVER_NAME = "_get_basic_result"
# Values that are never awaitable nor exceptions; anything else is checked.
_SIMPLE_VALUES = (str, int, float, bool)

FieldGroup = list[FieldDetails]


def plain_leaf(resolver: F) -> F:
    """Declare a resolver a pure, synchronous function of its parent object alone.

    The fast path then calls it as `resolver(parent)` without building resolve info.
    It may raise (the error lands at the field's path); it must not need arguments,
    info or context, and must return the same thing when called twice.
    """
    setattr(resolver, PLAIN_LEAF_MARK, True)
    return resolver


async def gather_settled(*awaitables: Awaitable[Any]) -> list[Any]:
    """Await sibling fields together; when one fails, let the others finish first.

    graphql-core's own `gather_with_cancel` cancels the siblings of a field whose error
    propagates (a non-null field: a bad `after` on `interactions`). A sibling may be in
    the middle of a SQL statement on the request's one connection (a DataLoader batch
    is cancelled once all its waiters are): cut off there, the connection is left
    unusable and the request's next statement — its audit event — fails, turning a
    client's mistake into a 503. Settling every sibling costs at most the statements
    already under way; the first error (in field order) then propagates as before, and
    graphql-core drops errors below a position already nulled.
    """
    futures = [asyncio.ensure_future(awaitable) for awaitable in awaitables]
    results = await asyncio.gather(*futures, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


# The executor's module-level helper, used for sibling fields and list items alike
# (tests/test_input_edge.py checks the executor still calls it by this name).
graphql_executor.gather_with_cancel = gather_settled  # type: ignore[attr-defined]


class SettledExecution(StrawberryGraphQLCoreExecutionContext):
    """Execution that returns only once every piece of its work has settled.

    When an error bubbles up synchronously, graphql-core leaves the awaitables already
    started beside it to settle in the background; the request would then commit, or
    write its audit event, while one of them still runs a statement on its session.
    The result is handed back once they are done.
    """

    def execute_operation(self, serially: bool | None = None) -> Any:
        result = super().execute_operation(serially)
        if not self.is_awaitable(result) and not self.background_futures:
            return result

        async def settled() -> Any:
            value = await result if self.is_awaitable(result) else result
            while self.background_futures:
                await asyncio.wait(list(self.background_futures))
            return value

        return settled()


class _Irregular(Exception):
    """This object needs graphql-core's full path (a null or error it must propagate)."""


# Kinds of plain field; _RESOLVED is a field of a mixed selection left to graphql-core.
_TYPENAME, _LEAF, _LEAF_LIST, _OBJECT, _OBJECT_LIST, _RESOLVED = range(6)


@dataclass(slots=True)
class _PlainField:
    response_name: str
    kind: int
    getter: Callable[[Any], Any] | None
    non_null: bool
    return_type: GraphQLOutputType
    field_group: FieldGroup
    coerce: Callable[[Any], Any] | None = None
    item_non_null: bool = False
    plan: _Plan | None = None


@dataclass(slots=True)
class _Plan:
    type_name: str
    fields: list[_PlainField]
    # A mixed selection: its fields in order, as runs of plain fields (each a plan of
    # its own) and fields graphql-core resolves (kind _RESOLVED). None when all plain.
    parts: list[_Plan | _PlainField] | None = None
    object_type: GraphQLObjectType | None = None


def _streamed(group: FieldGroup) -> bool:
    return any(
        directive.name.value == "stream"
        for details in group
        for directive in details.node.directives or ()
    )


def _getter(field_def: Any) -> Callable[[Any], Any] | None:
    """How to read this field from its parent without graphql-core, or None if not plain."""
    definition = field_def.extensions.get(DEFINITION_KEY)
    if not isinstance(definition, StrawberryField) or definition.extensions:
        return None
    resolve = field_def.resolve
    if definition.base_resolver is None:
        name = getattr(resolve, "__name__", "")
        if name != BASIC_RESOLVER_NAME or definition.default_resolver is not getattr:
            return None
        return operator.attrgetter(definition.python_name)
    wrapped = definition.base_resolver.wrapped_func
    if not getattr(wrapped, PLAIN_LEAF_MARK, False) or definition.is_async:
        return None
    if not callable(wrapped):
        return None
    return wrapped


class FastExecutionContext(SettledExecution):
    """graphql-core's executor with a fast path for plain object selections."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # (type, id(field group)) → (field group kept alive, plan or None).
        self._plain_plans: dict[tuple[GraphQLObjectType, int], tuple[Any, _Plan | None]] = {}
        manager = self.middleware_manager
        self._fast_allowed = not manager or not manager.middlewares

    def complete_object_value(
        self,
        return_type: GraphQLObjectType,
        field_details_list: FieldGroup,
        info: GraphQLResolveInfo[Any],
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        plan = self._plan(return_type, field_details_list) if self._fast_allowed else None
        if plan is not None and plan.parts is not None:
            # Inside a deferred delivery (a position context) graphql-core plans the
            # fields it executes per delivery group: such an object keeps its path.
            if position_context is None:
                try:
                    return self._complete_mixed(plan, plan.parts, result, path)
                except _Irregular:
                    pass
        elif plan is not None:
            pending: list[tuple[Exception, _PlainField, Path]] = []
            try:
                completed = self._complete_plain(plan, result, path, pending)
            except _Irregular:
                pass
            else:
                for error, field, error_path in pending:
                    self.handle_field_error(error, field.return_type, field.field_group, error_path)
                return completed
        return super().complete_object_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def _plan(self, object_type: GraphQLObjectType, field_group: FieldGroup) -> _Plan | None:
        key = (object_type, id(field_group))
        cached = self._plain_plans.get(key)
        if cached is not None:
            return cached[1]
        plan = self._build_plan(object_type, field_group)
        self._plain_plans[key] = (field_group, plan)
        return plan

    def _build_plan(self, object_type: GraphQLObjectType, field_group: FieldGroup) -> _Plan | None:
        """The object's plan: all plain, mixed (some fields left to graphql-core), or None
        when the loop can do nothing for it."""
        if object_type.is_type_of is not None:
            return None
        grouped, new_defer_usages, _ = self.collect_subfields(object_type, field_group)
        if new_defer_usages:
            return None
        fields: list[_PlainField] = []
        for response_name, group in grouped.items():
            if any(d.defer_usage is not None or d.fragment_variable_values for d in group):
                return None
            node = group[0].node
            field_def = self.schema.get_field(object_type, node.name.value)
            if field_def is None:
                continue  # graphql-core leaves unknown fields out of the response
            return_type = field_def.type
            if node.name.value == "__typename":
                fields.append(_PlainField(response_name, _TYPENAME, None, True, return_type, group))
                continue
            field = None
            if not (field_def.args or node.arguments or _streamed(group)):
                getter = _getter(field_def)
                if getter is not None:
                    field = self._plain_field(response_name, getter, return_type, group)
            if field is None:
                field = _PlainField(response_name, _RESOLVED, None, False, return_type, group)
            fields.append(field)
        resolved = sum(1 for f in fields if f.kind == _RESOLVED)
        if not resolved:
            return _Plan(object_type.name, fields)
        if resolved == len(fields):
            return None
        parts: list[_Plan | _PlainField] = []
        for field in fields:
            if field.kind == _RESOLVED:
                parts.append(field)
            elif parts and isinstance(parts[-1], _Plan):
                parts[-1].fields.append(field)
            else:
                parts.append(_Plan(object_type.name, [field]))
        return _Plan(object_type.name, [], parts, object_type)

    def _plain_field(
        self,
        response_name: str,
        getter: Callable[[Any], Any],
        return_type: GraphQLOutputType,
        group: FieldGroup,
    ) -> _PlainField | None:
        non_null = is_non_null_type(return_type)
        inner: Any = return_type.of_type if isinstance(return_type, GraphQLNonNull) else return_type
        if is_leaf_type(inner):
            leaf: GraphQLLeafType = inner
            return _PlainField(
                response_name,
                _LEAF,
                getter,
                non_null,
                return_type,
                group,
                coerce=leaf.coerce_output_value,
            )
        if is_list_type(inner):
            assert isinstance(inner, GraphQLList)
            item_type = inner.of_type
            item_non_null = is_non_null_type(item_type)
            item = item_type.of_type if isinstance(item_type, GraphQLNonNull) else item_type
            if is_object_type(item):
                item_plan = self._plan(item, group)
                if item_plan is None or item_plan.parts is not None:
                    return None
                return _PlainField(
                    response_name,
                    _OBJECT_LIST,
                    getter,
                    non_null,
                    return_type,
                    group,
                    item_non_null=item_non_null,
                    plan=item_plan,
                )
            if not is_leaf_type(item):
                return None
            return _PlainField(
                response_name,
                _LEAF_LIST,
                getter,
                non_null,
                return_type,
                group,
                coerce=item.coerce_output_value,
                item_non_null=item_non_null,
            )
        if is_object_type(inner):
            plan = self._plan(inner, group)
            if plan is None or plan.parts is not None:
                return None
            return _PlainField(
                response_name, _OBJECT, getter, non_null, return_type, group, plan=plan
            )
        return None

    def _complete_mixed(
        self, plan: _Plan, parts: list[_Plan | _PlainField], source: Any, path: Path
    ) -> Any:
        """An object whose selection mixes plain fields with fields graphql-core resolves,
        as graphql-core's `execute_fields` would complete it.

        The plain runs are completed first: they are pure, so an irregular value (raising
        _Irregular) sends the object back to graphql-core before anything has run. Then,
        in selection order, each run's errors are recorded and each other field is
        executed, so errors come in graphql-core's order and a non-null error from a
        resolved field propagates at the same point, with the same siblings started.
        """
        runs: list[tuple[dict[str, Any], list[tuple[Exception, _PlainField, Path]]]] = []
        for part in parts:
            if isinstance(part, _Plan):
                pending: list[tuple[Exception, _PlainField, Path]] = []
                runs.append((self._complete_plain(part, source, path, pending), pending))
        object_type = plan.object_type
        assert object_type is not None
        results: dict[str, Any] = {}
        awaitable_fields: list[str] = []
        completed_runs = iter(runs)
        try:
            for part in parts:
                if isinstance(part, _Plan):
                    values, errors = next(completed_runs)
                    for error, field, error_path in errors:
                        self.handle_field_error(
                            error, field.return_type, field.field_group, error_path
                        )
                    results.update(values)
                    continue
                name = part.response_name
                result = self.execute_field(
                    object_type, source, part.field_group, Path(path, name, plan.type_name), None
                )
                if result is Undefined:
                    continue
                results[name] = result
                if self.is_awaitable(result):
                    awaitable_fields.append(name)
        except Exception:
            if awaitable_fields:
                self.settle_in_background([results[name] for name in awaitable_fields])
            raise
        if not awaitable_fields:
            return results

        async def awaited() -> dict[str, Any]:
            if len(awaitable_fields) == 1:
                name = awaitable_fields[0]
                results[name] = await results[name]
            else:
                values = await gather_settled(*(results[name] for name in awaitable_fields))
                results.update(zip(awaitable_fields, values, strict=True))
            return results

        return awaited()

    def _complete_plain(
        self,
        plan: _Plan,
        source: Any,
        path: Path,
        pending: list[tuple[Exception, _PlainField, Path]],
    ) -> dict[str, Any]:
        """One object's response; raises _Irregular where graphql-core must decide."""
        completed: dict[str, Any] = {}
        for field in plan.fields:
            name = field.response_name
            kind = field.kind
            if kind == _TYPENAME:
                completed[name] = plan.type_name
                continue
            try:
                value = field.getter(source)  # type: ignore[misc]
            except Exception as error:
                if field.non_null:
                    raise _Irregular from None
                pending.append((error, field, Path(path, name, plan.type_name)))
                completed[name] = None
                continue
            if value is None:
                if field.non_null:
                    raise _Irregular
                completed[name] = None
                continue
            if kind == _LEAF:
                if type(value) not in _SIMPLE_VALUES and not self._settled(value):
                    raise _Irregular
                try:
                    coerced = field.coerce(value)  # type: ignore[misc]
                except Exception as error:
                    if field.non_null:
                        raise _Irregular from None
                    pending.append((error, field, Path(path, name, plan.type_name)))
                    completed[name] = None
                    continue
                if coerced is None or coerced is Undefined:
                    raise _Irregular
                completed[name] = coerced
            elif kind == _LEAF_LIST:
                completed[name] = self._complete_leaf_list(field, value)
            elif kind == _OBJECT_LIST:
                completed[name] = self._complete_object_list(
                    field, value, Path(path, name, plan.type_name), pending
                )
            else:
                if not self._settled(value):
                    raise _Irregular
                completed[name] = self._complete_plain(
                    field.plan,  # type: ignore[arg-type]
                    value,
                    Path(path, name, plan.type_name),
                    pending,
                )
        return completed

    def _complete_object_list(
        self,
        field: _PlainField,
        value: Any,
        path: Path,
        pending: list[tuple[Exception, _PlainField, Path]],
    ) -> list[Any]:
        """A list of plain objects (a connection's edges, a page's nodes) in one loop."""
        self._check_list(value)
        plan = field.plan
        assert plan is not None
        items: list[Any] = []
        for index, item in enumerate(value):
            if item is None:
                if field.item_non_null:
                    raise _Irregular
                items.append(None)
                continue
            if not self._settled(item):
                raise _Irregular
            items.append(self._complete_plain(plan, item, path.add_key(index, None), pending))
        return items

    def _check_list(self, value: Any) -> None:
        if (
            not self._settled(value)
            or isinstance(value, str | bytes | dict)
            or not isinstance(value, Iterable)
            or self.is_async_iterable(value)
        ):
            raise _Irregular

    def _complete_leaf_list(self, field: _PlainField, value: Any) -> list[Any]:
        self._check_list(value)
        coerce = field.coerce
        assert coerce is not None
        items: list[Any] = []
        for item in value:
            if item is None:
                if field.item_non_null:
                    raise _Irregular
                items.append(None)
                continue
            # Item errors are rare; graphql-core reports them, the fast path does not try.
            if type(item) not in _SIMPLE_VALUES and not self._settled(item):
                raise _Irregular
            try:
                coerced = coerce(item)
            except Exception:
                raise _Irregular from None
            if coerced is None or coerced is Undefined:
                raise _Irregular
            items.append(coerced)
        return items

    def _settled(self, value: Any) -> bool:
        """Not an awaitable and not an exception returned as a value."""
        return not isinstance(value, Exception) and not self.is_awaitable(value)
