"""Schema extensions that hand execution facts back to the HTTP edge."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from graphql import GraphQLError, OperationDefinitionNode
from strawberry.extensions import SchemaExtension


class OperationCapture(SchemaExtension):
    """Puts the operation's type and name on the context for the audit event, and
    refuses a document with several operations but no operation name (the spec's
    rule; strawberry would run the first)."""

    def on_parse(self) -> Iterator[None]:
        yield
        ctx = self.execution_context
        document = ctx.graphql_document
        if document is None or ctx._provided_operation_name is not None:
            return
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if len(operations) > 1:
            raise GraphQLError("Must provide operation name if query contains multiple operations.")

    async def on_execute(self) -> AsyncIterator[None]:
        # Known before anything runs, for an operation cancelled mid-way too.
        self._capture()
        context = self.execution_context.context
        if context is not None and context.operation_type == "mutation":
            context.data_changes = await context.session.begin_nested()
        yield

    def on_operation(self) -> Iterator[None]:
        yield
        self._capture()

    def _capture(self) -> None:
        ctx = self.execution_context
        context = ctx.context
        if ctx.graphql_document is None or context is None:
            return
        try:
            operation_type = ctx.operation_type.value
        except RuntimeError:
            return
        context.operation_type = operation_type
        context.operation_name = ctx.operation_name
