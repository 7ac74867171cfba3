"""The limits of one operation, checked after validation and before anything runs.

`QueryLimits` makes the one pass of `schema.cost` over the operation (depth, aliases,
fields with fragments expanded, cost, lookups), refuses what is over a limit, reports
the cost in the response's `extensions.cost` and hands cost and lookups to the edge's
rate limits (`GraphQLContext.admit`). `BoundedOverlapRule` is graphql-core's "fields
can be merged" rule with a small work budget: its pairwise comparisons are what make
`{ me { subject } me { subject } … }` quadratic.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from graphql import (
    ExecutionResult,
    FragmentDefinitionNode,
    GraphQLError,
    ValidationContext,
    get_operation_ast,
    specified_rules,
)
from graphql.validation import ASTValidationRule, OverlappingFieldsCanBeMergedRule
from graphql.validation.validate import ValidationAbortedError
from strawberry.extensions import SchemaExtension

from schema.cost import Analysis, Totals, variable_values
from server.errors import CustosError

# Units of graphql-core's overlap budget (two per comparison of two fields). 500,000 by
# default: about a second of comparisons; this is some tens of milliseconds, and far
# above what any query a client writes needs (bench/validation.py measures both).
OVERLAP_BUDGET = 10_000


class QueryTooCostly(CustosError):
    """The operation's static cost is over the per-request budget."""

    code = "QUERY_TOO_COSTLY"

    def __init__(self, requested: int, limit: int) -> None:
        super().__init__(
            f"the query costs {requested}, over the limit of {limit} per request: "
            "ask for smaller pages or fewer fields"
        )
        self.details = {"cost": {"requested": requested, "limit": limit}}


@dataclass(frozen=True, slots=True)
class OperationLimits:
    max_depth: int = 12
    max_aliases: int = 30
    max_fields: int = 5_000
    max_cost: int = 100_000
    max_page_size: int = 1_000

    def refusal(self, totals: Totals) -> GraphQLError | None:
        if totals.depth > self.max_depth:
            return GraphQLError(
                f"The operation exceeds maximum operation depth of {self.max_depth}."
            )
        if totals.aliases > self.max_aliases:
            return GraphQLError(
                f"The operation has {totals.aliases} aliases (fragments expanded); "
                f"at most {self.max_aliases} aliases are allowed."
            )
        if totals.fields > self.max_fields:
            return GraphQLError(
                f"The operation selects {totals.fields} fields once its fragments are "
                f"expanded; at most {self.max_fields} are allowed."
            )
        if totals.cost > self.max_cost:
            error = QueryTooCostly(totals.cost, self.max_cost)
            return GraphQLError(error.message, original_error=error)
        return None


def analyse(execution_context: Any, limits: OperationLimits) -> Totals | None:
    """The totals of the operation about to run (None if there is no such operation:
    execution reports that)."""
    document = execution_context.graphql_document
    if document is None:
        return None
    operation = get_operation_ast(document, execution_context.operation_name)
    if operation is None:
        return None
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    analysis = Analysis(
        execution_context.schema._schema,
        fragments,
        variable_values(operation, execution_context.variables),
        limits.max_page_size,
    )
    return analysis.operation(operation)


class QueryLimits(SchemaExtension):
    """Refuses an operation over a limit before it runs; reports its cost."""

    def __init__(self, limits: OperationLimits) -> None:
        super().__init__()
        self.limits = limits
        self.cost: int | None = None

    async def on_execute(self) -> AsyncIterator[None]:
        refusal = await self._refusal()
        if refusal is not None:
            # A result set before execution is returned as it is: nothing runs.
            self.execution_context.result = ExecutionResult(data=None, errors=[refusal])
        yield

    async def _refusal(self) -> GraphQLError | None:
        totals = analyse(self.execution_context, self.limits)
        if totals is None:
            return None
        self.cost = totals.cost
        refusal = self.limits.refusal(totals)
        if refusal is not None:
            return refusal
        admit = getattr(self.execution_context.context, "admit", None)
        if admit is None:
            return None
        refused: CustosError | None = await admit(totals.cost, totals.lookups)
        if refused is None:
            return None
        return GraphQLError(refused.message, original_error=refused)

    def get_results(self) -> dict[str, Any]:
        if self.cost is None:
            return {}
        return {"cost": {"requested": self.cost, "limit": self.limits.max_cost}}


class BoundedOverlapRule(OverlappingFieldsCanBeMergedRule):
    """graphql-core's rule, aborted (as a validation error) past a small work budget."""

    def __init__(self, context: ValidationContext) -> None:
        super().__init__(context)
        self.rule_context.remaining_complexity_budget = OVERLAP_BUDGET

    def enter_selection_set(self, *args: Any) -> None:
        try:
            super().enter_selection_set(*args)
        except ValidationAbortedError:
            raise ValidationAbortedError(
                "The operation repeats fields too often to be validated: select each field once."
            ) from None


def validation_rules() -> tuple[type[ASTValidationRule], ...]:
    """graphql-core's specified rules with the bounded overlap rule in place of its own."""
    return tuple(
        BoundedOverlapRule if rule is OverlappingFieldsCanBeMergedRule else rule
        for rule in specified_rules
    )


class BoundedValidation(SchemaExtension):
    """Validates with `validation_rules()` (one tuple of classes, so the validation
    cache keeps hitting)."""

    RULES = validation_rules()

    def on_operation(self) -> Any:
        self.execution_context.validation_rules = self.RULES
        yield
