"""Schema extensions that hand execution facts back to the HTTP edge."""

from __future__ import annotations

from collections.abc import Iterator

from strawberry.extensions import SchemaExtension


class OperationCapture(SchemaExtension):
    """Puts the operation's type and name on the context for the audit event."""

    def on_operation(self) -> Iterator[None]:
        yield
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
