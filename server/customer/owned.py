"""Records owned by a customer (orders, loyalty, campaign recipients, care items) are
visible exactly when their customer is visible under the caller's `customer` row scope."""

from __future__ import annotations

from sqlalchemy import ColumnElement

from server.caller import Caller
from server.customer.repository import scope_predicate
from server.errors import ForbiddenError


def owned_scope(caller: Caller, obj: str, action: str = "read") -> ColumnElement[bool]:
    """Require `obj`/`action`, then return the customer row scope as a SQL predicate.

    Decided once per call from the request's cached decisions, never per row.
    """
    if not caller.access.allows(obj, action):
        caller.audit.deny(obj, action)
        raise ForbiddenError(f"not allowed to {action} {obj}")
    scope = caller.access.row_scope("customer")
    if scope is None:
        caller.audit.deny("customer", "read")
        raise ForbiddenError("not allowed to read customers")
    return scope_predicate(scope, caller.principal)
