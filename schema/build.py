"""Build the executable schema with its limits and caches."""

from __future__ import annotations

import strawberry
from graphql import ASTValidationRule, GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    ParserCache,
    ValidationCache,
)
from strawberry.extensions.max_aliases import create_validator as max_aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as max_depth_rule
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from schema.customers import CustomerMutation, CustomerQuery
from schema.execution import FastExecutionContext
from schema.extensions import OperationCapture
from schema.viewer import ViewerQuery
from server.errors import CustosError

# Each domain module contributes its root fields here: one line per domain.
QUERY_TYPES: tuple[type, ...] = (CustomerQuery, ViewerQuery)
MUTATION_TYPES: tuple[type, ...] = (CustomerMutation,)

Query = merge_types("Query", QUERY_TYPES)
Mutation = merge_types("Mutation", MUTATION_TYPES)


class CustosSchema(strawberry.Schema):
    """Strawberry's schema without its per-error traceback logging for expected errors.

    A denied field is an expected outcome (null + FORBIDDEN at its path); logging a
    traceback for each of a thousand rows cost more than answering the query. The HTTP
    edge logs unexpected errors itself, with the request id.
    """

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        unexpected = [e for e in errors if not isinstance(e.original_error, CustosError)]
        if unexpected:
            super().process_errors(unexpected, execution_context)


def build_schema(
    *,
    max_depth: int = 12,
    max_aliases: int = 30,
    max_tokens: int = 2000,
    fast_execution: bool = True,
) -> strawberry.Schema:
    """The schema; `fast_execution=False` gives graphql-core's own executor (for the
    differential test of the fast path)."""
    limit_rules: list[type[ASTValidationRule]] = [
        max_depth_rule(max_depth, None),
        max_aliases_rule(max_aliases),
    ]
    return CustosSchema(
        query=Query,
        mutation=Mutation,
        config=StrawberryConfig(auto_camel_case=True),
        execution_context_class=FastExecutionContext if fast_execution else None,
        extensions=[
            OperationCapture,
            # Factories: a fresh extension per request; the parse and validation caches
            # themselves are module-level and shared across requests.
            lambda: MaxTokensLimiter(max_token_count=max_tokens),
            # The limit rules are built once: the validation cache is keyed by the rule
            # classes, and QueryDepthLimiter/MaxAliasesLimiter build new classes per
            # instance, which made every request miss the cache and validate again.
            lambda: AddValidationRules(limit_rules),
            lambda: ParserCache(maxsize=512),
            lambda: ValidationCache(maxsize=512),
        ],
    )


def print_sdl() -> str:
    return build_schema().as_str() + "\n"
