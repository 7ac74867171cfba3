"""The one way a mutation runs its change: in a savepoint, expected failures as results.

    created = await run_mutation(ctx, lambda: ctx.services.orders.create_product(
        ctx.session, ctx.caller, data))
    if isinstance(created, UserError):
        return created
    return ProductCreated(product=Product.from_row(created))

Everything the change may refuse (argument parsing such as `parse_id` included) goes
inside the callable; reading the result back for the payload stays outside, so a read
that fails after a successful change does not undo it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from schema.context import GraphQLContext
from schema.types.common import UserError
from server.errors import EXPECTED_ERRORS, CustosError

T = TypeVar("T")


async def run_mutation(
    ctx: GraphQLContext,
    change: Callable[[], Awaitable[T]],
    *,
    expected: tuple[type[CustosError], ...] = EXPECTED_ERRORS,
) -> T | UserError:
    """Run `change` in its own savepoint and return what it returns.

    If it raises, the savepoint is rolled back and the audit forgets the changes it
    recorded meanwhile; an expected error (`EXPECTED_ERRORS`) becomes a `UserError`
    with its code, message and field (by its GraphQL name). Anything else propagates:
    FORBIDDEN lands at the mutation's path, an unexpected error makes the edge roll the
    whole request back. `expected` is for the two published exceptions to that rule. An
    expected error that follows a refusal of the gate counts as a refused result.
    """
    mark = ctx.caller.audit.mark()
    refusals = ctx.caller.gate.refusals
    try:
        async with ctx.session.begin_nested():
            return await change()
    except Exception as error:
        ctx.caller.audit.discard_changes_since(mark)
        if isinstance(error, expected):
            if ctx.caller.gate.refusals > refusals:
                ctx.refused_results += 1
            return UserError.from_error(error)
        raise
