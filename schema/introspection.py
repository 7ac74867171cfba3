"""Introspection in prod only for callers the policy grants `schema`/`read`.

`__schema` and `__type` describe the whole API; in prod they are a capability like any
other, asked of the gate (which audits a refusal) before the operation runs. `__typename`
stays open: it describes the caller's own result. In dev introspection is open, for
GraphiQL and the SDL tooling.
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import ExecutionResult, FragmentDefinitionNode, GraphQLError
from strawberry.extensions import SchemaExtension

from schema.inputs import root_fields, selected_operation
from server.errors import ForbiddenError

INTROSPECTION_FIELDS = frozenset({"__schema", "__type"})


class IntrospectionGate(SchemaExtension):
    """Refuses introspection in prod to callers without `schema`/`read` (FORBIDDEN at
    the introspection field's path; nothing of the operation runs)."""

    def __init__(self, *, open_to_all: bool) -> None:
        self.open_to_all = open_to_all

    def on_execute(self) -> Iterator[None]:
        ctx = self.execution_context
        document = ctx.graphql_document
        caller = getattr(ctx.context, "caller", None)
        if not self.open_to_all and ctx.result is None and document and caller is not None:
            operation = selected_operation(document, ctx.operation_name)
            fragments = {
                d.name.value: d
                for d in document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }
            asked = [
                field
                for field in (root_fields(operation, fragments) if operation else ())
                if field.name.value in INTROSPECTION_FIELDS
            ]
            if asked:
                try:
                    caller.gate.require("schema", "read")
                except ForbiddenError as refused:
                    field = asked[0]
                    name = field.alias.value if field.alias else field.name.value
                    ctx.result = ExecutionResult(
                        data=None,
                        errors=[
                            GraphQLError(
                                refused.message, field, path=[name], original_error=refused
                            )
                        ],
                    )
        yield
