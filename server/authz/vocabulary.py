"""The policy vocabulary: which subjects, objects, actions, effects and modes a rule may use.

Record types map to their tables, and a type's fields are that table's columns, so the
vocabulary follows the data model instead of a hand-kept list. A rule naming anything
else is refused with a stable code before it reaches the database.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from server.auth.principal import PURPOSES
from server.data.base import Base
from server.errors import ValidationError

# Policy object → table. Tables left out are machinery no rule grants directly
# (keys, rotations, the audit chain's internals, the policy tables themselves).
TYPE_TABLES: dict[str, str] = {
    "customer": "customers",
    "consent": "consents",
    "interaction": "interactions",
    "complaint": "complaints",
    "complaint_event": "complaint_events",
    "product": "products",
    "order": "orders",
    "order_item": "order_items",
    "order_status_event": "order_status_events",
    "loyalty": "loyalty_entries",
    "referral": "referrals",
    "campaign": "campaigns",
    "campaign_recipient": "campaign_recipients",
    "task": "tasks",
}
MACHINERY_TABLES = frozenset(
    {
        "customer_keys",
        "key_rotations",
        # Seen only through the customers they name (customer read and field modes).
        "duplicate_flags",
        "audit_events",
        "audit_accesses",
        "audit_access_records",
        "audit_chain_head",
        "audit_checkpoints",
        "policy_rules",
        "policy_version",
        "role_assignments",
        "api_keys",
    }
)
# Objects that are capabilities rather than record types.
EXTRA_OBJECTS: dict[str, str] = {
    "policy": "policies, roles and role assignments (action manage)",
    "apikey": "integrator API keys (action manage)",
    "audit": "the audit trail (read, export)",
    "metrics": "aggregate metrics (read)",
    "segment": "customer segments (read)",
    "import": "bulk imports (create)",
    "schema": "the GraphQL schema by introspection in prod (read)",
}
TYPE_ACTIONS = ("read", "create", "update", "delete", "erase", "export", "manage")
SCOPE_ACTIONS = ("scope:all", "scope:team", "scope:own", "scope:*")
FIELD_ACTIONS = ("read:clear", "read:masked", "read:*")
PURPOSE_ACTIONS = ("use",)
EFFECTS = ("allow", "deny")
MODES = ("clear", "masked", "none")
WILDCARD = "*"

_ROLE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SUBJECT = re.compile(r"^[^\s,]+$")


def type_fields(obj: str) -> frozenset[str]:
    table = Base.metadata.tables[TYPE_TABLES[obj]]
    return frozenset(column.key for column in table.columns)


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """A validated `p` rule: subject, object, action, effect."""

    subject: str
    object: str
    action: str
    effect: str

    def as_rule(self) -> tuple[str, ...]:
        return ("p", self.subject, self.object, self.action, self.effect)


def check_subject(subject: str) -> str:
    """A rule's subject: a role, `user:<subject>` or `apikey:<id>`."""
    subject = subject.strip()
    kind, sep, rest = subject.partition(":")
    if not sep and _ROLE.match(subject):
        return subject
    if sep and kind == "user" and rest and len(subject) <= 128 and _SUBJECT.match(rest):
        return subject
    if sep and kind == "apikey":
        try:
            return f"apikey:{uuid.UUID(rest)}"
        except ValueError:
            pass
    raise ValidationError(
        "subject must be a role name, user:<subject> or apikey:<id>", code="INVALID_SUBJECT"
    )


def check_user_subject(subject: str) -> str:
    """An authenticated subject as tokens carry it (role assignments are keyed by it)."""
    subject = subject.strip()
    if not subject or len(subject) > 128 or not _SUBJECT.match(subject):
        raise ValidationError(
            "subject must be 1-128 characters without spaces or commas", code="INVALID_SUBJECT"
        )
    return subject


def check_role_name(role: str) -> str:
    role = role.strip()
    if not _ROLE.match(role):
        raise ValidationError("a role name is 1-64 letters, digits, _ or -", code="INVALID_ROLE")
    return role


def object_kind(obj: str) -> str:
    """`type`, `field`, `purpose`, `extra` or `any`; UNKNOWN_OBJECT if none of them."""
    if obj == WILDCARD:
        return "any"
    if obj.startswith("purpose:"):
        name = obj.removeprefix("purpose:")
        if name in PURPOSES or name == WILDCARD:
            return "purpose"
        raise ValidationError(
            f"unknown purpose {name!r}; purposes are {', '.join(PURPOSES)}",
            code="UNKNOWN_OBJECT",
        )
    if obj in EXTRA_OBJECTS:
        return "extra"
    type_name, dot, field = obj.partition(".")
    if type_name not in TYPE_TABLES:
        raise ValidationError(f"unknown object {obj!r}", code="UNKNOWN_OBJECT")
    if not dot:
        return "type"
    if field == WILDCARD or field in type_fields(type_name):
        return "field"
    raise ValidationError(f"{type_name} has no field {field!r}", code="UNKNOWN_OBJECT")


def _actions_for(kind: str) -> tuple[str, ...]:
    if kind == "field":
        return FIELD_ACTIONS
    if kind == "purpose":
        return PURPOSE_ACTIONS
    if kind == "extra":
        return TYPE_ACTIONS
    if kind == "type":
        return TYPE_ACTIONS + SCOPE_ACTIONS
    return TYPE_ACTIONS + SCOPE_ACTIONS + FIELD_ACTIONS + PURPOSE_ACTIONS


def check_rule(
    subject: str, obj: str, action: str | None, effect: str, mode: str | None = None
) -> RuleSpec:
    """Validate one rule; a field `mode` is shorthand for the matching `read:*` action.

    `mode: clear` → `read:clear` allow, `masked` → `read:masked` allow, `none` → `read:*`
    deny (deny overrides, so no role of the subject can reveal the field at all).
    """
    subject = check_subject(subject)
    obj = obj.strip()
    kind = object_kind(obj)
    if effect not in EFFECTS:
        raise ValidationError(
            f"unknown effect {effect!r}; effects are allow, deny", code="UNKNOWN_EFFECT"
        )
    if mode is not None:
        if mode not in MODES:
            raise ValidationError(
                f"unknown mode {mode!r}; modes are {', '.join(MODES)}", code="UNKNOWN_MODE"
            )
        if kind != "field" or action not in (None, "read"):
            raise ValidationError(
                "a mode applies to reading a field (type.field, action read)", code="UNKNOWN_MODE"
            )
        if mode == "none":
            return RuleSpec(subject, obj, "read:*", "deny")
        return RuleSpec(subject, obj, f"read:{mode}", effect)
    if action is None:
        raise ValidationError("give an action or a mode", code="UNKNOWN_ACTION")
    return RuleSpec(subject, obj, _check_action(kind, obj, action), effect)


def _check_action(kind: str, obj: str, action: str) -> str:
    action = action.strip()
    allowed = _actions_for(kind)
    if action != WILDCARD and action not in allowed:
        raise ValidationError(
            f"unknown action {action!r} for {obj!r}; expected one of {', '.join(allowed)}",
            code="UNKNOWN_ACTION",
        )
    return action


def check_request(obj: str, action: str) -> tuple[str, str]:
    """An (object, action) a caller could ask about, e.g. to explain a decision."""
    obj = obj.strip()
    return obj, _check_action(object_kind(obj), obj, action)


def valid_objects() -> list[str]:
    """Every concrete object a rule may name (wildcards aside), for docs and clients."""
    objects = [f"purpose:{p}" for p in PURPOSES] + sorted(EXTRA_OBJECTS)
    for type_name in sorted(TYPE_TABLES):
        objects.append(type_name)
        objects.extend(f"{type_name}.{f}" for f in sorted(type_fields(type_name)))
    return objects
