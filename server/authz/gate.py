"""The one place a domain operation asks the policy, and where every "no" is audited.

A `Gate` is built once per request from the request's memoised `AccessDecisions` and its
`AuditRecorder`. Its answers that refuse (`require`, `row_scope`, `require_field`,
`require_grant`, `not_found`, `out_of_scope`) record the denial in the audit as part of
answering, so no caller can be refused without a trace; `refusals` counts them, so the
edge can tell a refused operation from one that merely failed. Services reach the policy
only through `caller.gate`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from server.audit.recorder import AuditRecorder
from server.authz.authorizer import AccessDecisions, FieldMode, RowScope
from server.authz.vocabulary import REQUIRED_PURPOSES, is_scoped, role_object
from server.data.base import DataClass
from server.errors import ForbiddenError, NotFoundError, ValidationError


class Gate:
    """One request's authorization: decisions memoised per (object, action), denials audited."""

    __slots__ = ("_audit", "_decisions", "refusals")

    def __init__(self, decisions: AccessDecisions, audit: AuditRecorder) -> None:
        self._decisions = decisions
        self._audit = audit
        self.refusals = 0

    def require(self, obj: str, action: str, *, target: uuid.UUID | None = None) -> None:
        """The caller may `action` records of type `obj`; otherwise FORBIDDEN.

        On an object whose rows are customers', "may" means in some row scope. An action
        the vocabulary binds to a purpose (`REQUIRED_PURPOSES`: export and erasure need
        `compliance`) also needs that purpose stated in `X-Purpose` and allowed to the
        caller. A refusal is recorded as a denied access on (obj, action), with `target`
        as its record id when the operation names one, before it is raised.
        """
        if not self._decisions.allows(obj, action):
            raise self._refuse(obj, action, target, f"not allowed to {action} {obj}")
        self._require_purpose(obj, action, target)

    def row_scope(self, obj: str, action: str, *, target: uuid.UUID | None = None) -> RowScope:
        """The customer row scope in which the caller may `action` records of type `obj`.

        It comes only from rules allowing this action on this object (`update:own`), so
        a role that may only read never widens what its holder may write. No scope (or
        an object that has no customer rows) is a refusal: recorded on (obj, action,
        target) and FORBIDDEN; a required purpose is checked as in `require`. The SQL
        predicate for the scope belongs to the customer repository (`scope_predicate`).
        """
        scope = self._decisions.row_scope(obj, action) if is_scoped(obj, action) else None
        if scope is None:
            raise self._refuse(obj, action, target, f"not allowed to {action} {obj}")
        self._require_purpose(obj, action, target)
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

    def require_grant(self, roles: Iterable[str], *, to_subject: str | None = None) -> None:
        """The caller may grant each of `roles` (`role:<name>`/`grant`), to `to_subject`
        when a subject is named. Nobody grants to themselves: `to_subject` equal to the
        caller's own subject is refused whatever the policy says. A refusal is recorded
        on (`role:<name>`, grant) (`policy`, grant for a self-grant of rules) and is
        FORBIDDEN."""
        names = list(roles)
        if to_subject is not None and to_subject == self._decisions.principal.subject:
            obj = role_object(names[0]) if len(names) == 1 else "policy"
            raise self._refuse(obj, "grant", None, "nobody may grant access to themselves")
        for role in names:
            obj = role_object(role)
            if not self._decisions.allows(obj, "grant"):
                raise self._refuse(obj, "grant", None, f"not allowed to grant the role {role}")

    def allows(self, obj: str, action: str) -> bool:
        """Whether the caller may `action` `obj`, recording nothing.

        Only for questions whose "no" is not a refusal of the operation: which record
        kinds a merged timeline includes, whether to add an optional section. Anything
        the caller asked for and may not have goes through `require` or `row_scope`.
        """
        return self._decisions.allows(obj, action)

    def not_found(
        self,
        obj: str,
        action: str,
        target: uuid.UUID,
        *,
        what: str | None = None,
        customer_id: uuid.UUID | None = None,
    ) -> NotFoundError:
        """The answer for a `target` id that is unknown or outside the caller's scope.

        Both answer NOT_FOUND with the same message (`"<what> not found"`, `what`
        defaulting to `obj`), so the client cannot tell them apart; the audit records
        a denied access on (obj, action) with the target id, and with `customer_id`
        (the customer an existing record belongs to) so that the attempt shows in that
        customer's audit trail. The service raises the returned error.
        """
        self.refusals += 1
        self._audit.deny(obj, action, target)
        if customer_id is not None and customer_id != target:
            self._audit.deny(obj, action, customer_id)
        return NotFoundError(f"{what or obj} not found")

    def out_of_scope(
        self, obj: str, action: str, field: str, *, target: uuid.UUID | None = None
    ) -> ValidationError:
        """The answer for a write that would put a record outside the caller's row scope
        for `action` (`field`: the owner or team that would take it out): OUT_OF_SCOPE,
        recorded as a denied access on (obj, action). The service raises it before it
        writes anything."""
        self.refusals += 1
        self._audit.deny(obj, action, target)
        return ValidationError(
            f"{field} would put the record outside your scope to {action} it",
            code="OUT_OF_SCOPE",
            field=field,
        )

    def _require_purpose(self, obj: str, action: str, target: uuid.UUID | None) -> None:
        required = REQUIRED_PURPOSES.get((obj, action))
        if required is not None and not self._decisions.purpose_allowed(required):
            raise self._refuse(
                obj, action, target, f"{action} of {obj} needs X-Purpose: {required}"
            )

    def _refuse(
        self, obj: str, action: str, target: uuid.UUID | None, message: str
    ) -> ForbiddenError:
        self.refusals += 1
        self._audit.deny(obj, action, target)
        return ForbiddenError(message)
