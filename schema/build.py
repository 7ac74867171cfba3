"""Build the executable schema with its limits and caches."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError, GraphQLSchema, GraphQLUnionType
from strawberry.extensions import MaxTokensLimiter, ParserCache, ValidationCache
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from schema.access import AccessMutation, AccessQuery
from schema.analytics import AnalyticsMutation, AnalyticsQuery
from schema.audit import AuditQuery
from schema.campaigns import CampaignMutation, CampaignQuery
from schema.complaints import ComplaintMutation, ComplaintQuery
from schema.contacts import ContactMutation
from schema.customers import CustomerMutation, CustomerQuery
from schema.errors import ValueFreeErrors
from schema.execution import FastExecutionContext, SettledExecution
from schema.extensions import OperationCapture
from schema.imports import ImportMutation
from schema.inputs import InputGuard, install_prechecks
from schema.interactions import InteractionMutation, InteractionQuery
from schema.introspection import IntrospectionGate
from schema.limits import BoundedValidation, OperationLimits, QueryLimits
from schema.loyalty import LoyaltyMutation
from schema.node import NodeQuery
from schema.notes import NoteMutation
from schema.orders import OrderMutation, OrderQuery
from schema.privacy import PrivacyMutation, PrivacyQuery
from schema.scalars import SCALARS
from schema.tasks import TaskMutation, TaskQuery
from schema.types.customer import describe_customer_fields
from schema.types.node import drop_type_checks
from schema.viewer import ViewerQuery

# Each domain module contributes its root fields here: one line per domain.
QUERY_TYPES: tuple[type, ...] = (
    CustomerQuery,
    ViewerQuery,
    AccessQuery,
    PrivacyQuery,
    ComplaintQuery,
    InteractionQuery,
    AuditQuery,
    OrderQuery,
    CampaignQuery,
    AnalyticsQuery,
    TaskQuery,
    NodeQuery,
)
MUTATION_TYPES: tuple[type, ...] = (
    CustomerMutation,
    AccessMutation,
    PrivacyMutation,
    ComplaintMutation,
    InteractionMutation,
    OrderMutation,
    LoyaltyMutation,
    CampaignMutation,
    ImportMutation,
    AnalyticsMutation,
    TaskMutation,
    ContactMutation,
    NoteMutation,
)


class SerialRootFields:
    """Runs a query's root fields one after another, as mutations already are.

    They share the request's one database session, which allows one statement at a
    time; run concurrently, `{ roles { name } policies { id } }` would fail.
    """

    def execute_operation(self, serially: bool | None = None) -> Any:
        return super().execute_operation(True)  # type: ignore[misc]


class SerialExecution(SerialRootFields, SettledExecution):
    """graphql-core's executor with serial root fields (the reference for the fast path)."""


class SerialFastExecution(SerialRootFields, FastExecutionContext):
    """The fast path for plain selections, with serial root fields."""


Query = merge_types("Query", QUERY_TYPES)
Mutation = merge_types("Mutation", MUTATION_TYPES)


ROOT_DESCRIPTIONS = {
    "Query": "Every read, under the caller's policies and row scope; each one audited.",
    "Mutation": "Every change: each runs in one transaction with its audit entry.",
}


def describe_roots_and_results(schema: GraphQLSchema) -> None:
    """The root types, and each `…Result` union of a mutation: its success type, or a
    `UserError` for an expected failure (bad input, a conflict, NOT_FOUND)."""
    for name, description in ROOT_DESCRIPTIONS.items():
        schema.type_map[name].description = description
    for named in schema.type_map.values():
        if isinstance(named, GraphQLUnionType) and not named.description:
            success = " or ".join(t.name for t in named.types if t.name != "UserError")
            named.description = f"{success} on success, else a UserError saying why."


class CustosSchema(strawberry.Schema):
    """The schema, minus strawberry's error logging: its log lines quote engine messages,
    which can carry a client's values. The HTTP edge logs unexpected errors itself,
    by type and frames only."""

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        return None


def build_schema(
    *,
    max_depth: int = 12,
    max_aliases: int = 30,
    max_tokens: int = 2000,
    max_fields: int = 5_000,
    max_cost: int = 100_000,
    max_page_size: int = 1_000,
    fast_execution: bool = True,
    max_input_string: int = 20_000,
    max_input_list: int = 1_000,
    suggestions: bool = True,
    open_introspection: bool = True,
    query_limits: bool = True,
) -> strawberry.Schema:
    """The schema; `fast_execution=False` gives graphql-core's own executor (for the
    differential test of the fast path); `query_limits=False` leaves the limits and cost
    pass out (for the benchmark of its overhead, never for serving)."""
    limits = OperationLimits(
        max_depth=max_depth,
        max_aliases=max_aliases,
        max_fields=max_fields,
        max_cost=max_cost,
        max_page_size=max_page_size,
    )
    schema = CustosSchema(
        query=Query,
        mutation=Mutation,
        config=StrawberryConfig(auto_camel_case=True, scalar_map=SCALARS),
        execution_context_class=SerialFastExecution if fast_execution else SerialExecution,
        extensions=[
            OperationCapture,
            # Factories: a fresh extension per request; the parse and validation caches
            # themselves are module-level and shared across requests.
            lambda: MaxTokensLimiter(max_token_count=max_tokens),
            # graphql-core's rules with a bounded overlap rule: one tuple of classes, so
            # the validation cache is keyed the same way on every request.
            BoundedValidation,
            lambda: ParserCache(maxsize=512),
            lambda: ValidationCache(maxsize=512),
            # Depth, aliases, expanded fields, cost and rate limits: one pass over the
            # operation after validation, before anything runs (schema/limits.py).
            *([lambda: QueryLimits(limits)] if query_limits else []),
            # Input hygiene and value-free errors (schema/inputs.py, schema/errors.py).
            lambda: InputGuard(max_string=max_input_string, max_list=max_input_list),
            lambda: IntrospectionGate(open_to_all=open_introspection),
            lambda: ValueFreeErrors(suggestions=suggestions),
        ],
    )
    install_prechecks(schema._schema)
    drop_type_checks(schema._schema)
    describe_customer_fields(schema._schema)
    describe_roots_and_results(schema._schema)
    return schema


def print_sdl() -> str:
    return build_schema().as_str() + "\n"
