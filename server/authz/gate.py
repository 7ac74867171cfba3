"""The one place a domain operation asks the policy, and where every "no" is audited.

A `Gate` is built once per request from the request's memoised `AccessDecisions` and its
`AuditRecorder`. Its answers that refuse (`require`, `row_scope`, `require_field`,
`not_found`) record the denial in the audit as part of answering, so no caller can be
refused without a trace. Services reach the policy only through `caller.gate`.
"""

from __future__ import annotations

import uuid

from server.audit.recorder import AuditRecorder
from server.authz.authorizer import AccessDecisions, FieldMode, RowScope
from server.data.base import DataClass
from server.errors import ForbiddenError, NotFoundError

# Rows of every customer-owned type are visible through the customer's row scope.
SCOPED_ON = "customer"


class Gate:
    """One request's authorization: decisions memoised per (object, action), denials audited."""

    __slots__ = ("_audit", "_decisions")

    def __init__(self, decisions: AccessDecisions, audit: AuditRecorder) -> None:
        self._decisions = decisions
        self._audit = audit

    def require(
        self,
        obj: str,
        action: str,
        *,
        target: uuid.UUID | None = None,
        with_purpose: bool = False,
    ) -> None:
        """The caller may `action` records of type `obj`; otherwise FORBIDDEN.

        With `with_purpose`, the caller must also have stated a purpose (`X-Purpose`) the
        policy lets it use. A refusal is recorded as a denied access on (obj, action),
        with `target` as its record id when the operation names one, before it is raised.
        """
        if not self._decisions.allows(obj, action):
            raise self._refuse(obj, action, target, f"not allowed to {action} {obj}")
        if with_purpose and not self._decisions.purpose_allowed():
            raise self._refuse(obj, action, target, f"{action} of {obj} needs an allowed X-Purpose")

    def row_scope(self, obj: str, action: str, *, target: uuid.UUID | None = None) -> RowScope:
        """The customer row scope under which records of type `obj` may be `action`ed.

        Requires (obj, action) as `require` does. The scope is, for every action alike
        for now, the widest `scope:*` rule the caller holds on `customer` (which needs
        `customer`/`read`); the action is part of the question so that scope can become
        per action without touching callers. No scope is a refusal: recorded on
        (obj, action, target) and FORBIDDEN. The SQL predicate for the scope belongs to
        the customer repository (`scope_predicate`).
        """
        self.require(obj, action, target=target)
        scope = self._decisions.row_scope(SCOPED_ON)
        if scope is None:
            raise self._refuse(obj, action, target, f"not allowed to {action} {obj}")
        return scope

    def field_mode(self, obj: str, field: str, data_class: DataClass) -> FieldMode:
        """The mode (clear, masked, none) in which the caller may read `obj.field`.

        Not a refusal by itself: a read reports the fields it left out as denied fields
        of its own audited access (`AuditRecorder.read(..., denied=...)`).
        """
        return self._decisions.field_mode(obj, field, data_class)

    def require_field(
        self, obj: str, field: str, data_class: DataClass, *, action: str
    ) -> FieldMode:
        """The mode of `obj.field` for an operation that cannot go on without the field
        (e.g. `action="lookup"`: find records by its value). Mode none is a refusal:
        recorded on (obj, f"{action}:{field}") and FORBIDDEN."""
        mode = self._decisions.field_mode(obj, field, data_class)
        if mode is FieldMode.NONE:
            raise self._refuse(
                obj, f"{action}:{field}", None, f"not allowed to {action} by {obj}.{field}"
            )
        return mode

    def require_clear(self, obj: str, field: str, data_class: DataClass, *, action: str) -> None:
        """An operation that answers by the value of `obj.field` (`action="lookup"`: find a
        record by it) is allowed only where the caller reads the field in clear, under the
        request's purpose: a search on a masked field would unmask it one guess at a time.
        Any other mode is a refusal: recorded on (obj, f"{action}:{field}") and FORBIDDEN."""
        if self._decisions.field_mode(obj, field, data_class) is not FieldMode.CLEAR:
            raise self._refuse(
                obj,
                f"{action}:{field}",
                None,
                f"{action} by {obj}.{field} needs it in clear (and an allowed X-Purpose)",
            )

    def require_purpose(self, obj: str, action: str, purpose: str) -> None:
        """The caller may `action` `obj` and has stated `purpose` (`X-Purpose`), one it may
        use; otherwise FORBIDDEN, recorded on (obj, action)."""
        self.require(obj, action, with_purpose=True)
        if self._decisions.principal.purpose != purpose:
            raise self._refuse(obj, action, None, f"{action} of {obj} needs X-Purpose: {purpose}")

    def allows(self, obj: str, action: str) -> bool:
        """Whether the caller may `action` `obj`, recording nothing.

        Only for questions whose "no" is not a refusal of the operation: which record
        kinds a merged timeline includes, whether to add an optional section. Anything
        the caller asked for and may not have goes through `require` or `row_scope`.
        """
        return self._decisions.allows(obj, action)

    def not_found(
        self, obj: str, action: str, target: uuid.UUID, *, what: str | None = None
    ) -> NotFoundError:
        """The answer for a `target` id that is unknown or outside the caller's scope.

        Both answer NOT_FOUND with the same message (`"<what> not found"`, `what`
        defaulting to `obj`), so the client cannot tell them apart; the audit records
        a denied access on (obj, action) with the target id. The service raises the
        returned error.
        """
        self._audit.deny(obj, action, target)
        return NotFoundError(f"{what or obj} not found")

    def _refuse(
        self, obj: str, action: str, target: uuid.UUID | None, message: str
    ) -> ForbiddenError:
        self._audit.deny(obj, action, target)
        return ForbiddenError(message)
