"""The policy vocabulary: which subjects, objects, actions, effects and modes a rule may use.

Record types map to their tables, and a type's fields are that table's columns, so the
vocabulary follows the data model instead of a hand-kept list. A rule naming anything
else is refused with a stable code before it reaches the database.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from casbin.util import key_match

from server.auth.principal import PURPOSES, subject_name_problem
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
    "customer_note": "customer_notes",
}
MACHINERY_TABLES = frozenset(
    {
        "customer_keys",
        "key_rotations",
        # Name search handles: never read, only matched (customer read and name in clear).
        "customer_name_tokens",
        # Read as part of their customer's file, in the modes of its phone and name.
        "customer_contact_points",
        # Seen only through the customers they name (customer read and field modes).
        "duplicate_flags",
        "audit_events",
        "audit_accesses",
        # SQLite's index of the record ids audit accesses pack (see AuditRecordKey).
        "audit_record_keys",
        "audit_chain_head",
        "audit_checkpoints",
        # The ledger's sealed blocks and its one-sealer-at-a-time row: read through audit.
        "audit_blocks",
        "audit_sealer",
        "policy_rules",
        "policy_version",
        "role_assignments",
        "api_keys",
        "security_events",
        "readiness_probe",
        "trusted_documents",
        # People's accounts and console sessions: object `user` (manage) covers them.
        "users",
        "user_sessions",
    }
)
# Objects that are capabilities rather than record types.
EXTRA_OBJECTS: dict[str, str] = {
    "policy": "policies, roles and role assignments (action manage)",
    "apikey": "integrator API keys (action manage)",
    "user": "people's local accounts for the console (action manage)",
    "audit": "the audit trail (read, export)",
    "metrics": "aggregate metrics (read, over a row scope); scrape: Prometheus /metrics",
    "segment": "customer segments (read over a row scope; manage: refresh them)",
    "import": "bulk imports (create)",
    "schema": "the GraphQL schema by introspection in prod (read)",
    "document": "trusted GraphQL documents (manage: register and list them)",
}
TYPE_ACTIONS = ("read", "create", "update", "delete", "erase", "export", "manage")
# Row scopes, widest first: every customer, the caller's team's, the caller's own.
ROW_SCOPES = ("all", "team", "own")
# Objects whose rows are customers' (or are computed over customers' rows): every
# action on them but `manage` names the customer row scope it covers, `update:own`, in
# the same rule. A role's scope for one action therefore never lends itself to another
# action or to another role's rules: combining roles cannot widen what a caller may write.
SCOPED_OBJECTS = frozenset(TYPE_TABLES) - {"product"} | {"metrics", "segment"}
SCOPED_VERBS = ("read", "create", "update", "delete", "erase", "export")
FIELD_ACTIONS = ("read:clear", "read:masked", "read:*")
# Actions of one object beyond its verbs: `metrics`/`scrape` reads the server's own
# Prometheus metrics (`GET /metrics`), no customer's data.
OBJECT_ACTIONS: dict[str, tuple[str, ...]] = {"metrics": ("scrape",)}
PURPOSE_ACTIONS = ("use",)
# Granting a role (`assignRole`, a new API key's roles) is itself decided by the policy:
# object `role:<name>` (or `role:*`), action `grant`.
ROLE_OBJECT_PREFIX = "role:"
GRANT_ACTIONS = ("grant",)
EFFECTS = ("allow", "deny")
MODES = ("clear", "masked", "none")
WILDCARD = "*"
# Actions that put a person's data wholesale in clear or destroy it need a stated
# purpose, and this one: the one place that says which. The gate enforces it whenever
# the action is asked for (`Gate.require`, `Gate.row_scope`).
REQUIRED_PURPOSES: dict[tuple[str, str], str] = {
    ("customer", "export"): "compliance",
    ("customer", "erase"): "compliance",
    # A campaign writes to customers for marketing: only under the marketing purpose.
    ("campaign", "create"): "marketing",
}
# Each required purpose has a steward role. Capabilities only whoever may grant the
# steward role may hand out through `addPolicy` (an allow rule that covers one, or the
# removal of a deny that covers one): the purpose, the actions that need it and the
# right to grant the steward role, so that holding `policy`/`manage` alone never adds
# up to an export of everyone.
PURPOSE_STEWARDS: dict[str, str] = {"compliance": "compliance"}
RESERVED_CAPABILITIES: dict[tuple[str, str], str] = {
    **{
        (obj, f"{verb}:{scope}"): PURPOSE_STEWARDS[purpose]
        for (obj, verb), purpose in REQUIRED_PURPOSES.items()
        if purpose in PURPOSE_STEWARDS
        for scope in ROW_SCOPES
    },
    **{(f"purpose:{p}", "use"): role for p, role in PURPOSE_STEWARDS.items()},
    **{(f"{ROLE_OBJECT_PREFIX}{role}", "grant"): role for role in PURPOSE_STEWARDS.values()},
}

_ROLE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def type_fields(obj: str) -> frozenset[str]:
    table = Base.metadata.tables[TYPE_TABLES[obj]]
    return frozenset(column.key for column in table.columns)


def scoped_action(verb: str, scope: str) -> str:
    """The action of a rule on a scoped object: `update` over `own` rows is `update:own`."""
    return f"{verb}:{scope}"


def is_scoped(obj: str, action: str) -> bool:
    """Whether (obj, action) is asked per row scope: a plain verb on a scoped object."""
    return obj in SCOPED_OBJECTS and action in SCOPED_VERBS


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """A validated `p` rule: subject, object, action, effect."""

    subject: str
    object: str
    action: str
    effect: str

    def as_rule(self) -> tuple[str, ...]:
        return ("p", self.subject, self.object, self.action, self.effect)


def _invalid_subject(message: str) -> ValidationError:
    return ValidationError(message, code="INVALID_SUBJECT", field="subject")


def check_subject(subject: str) -> str:
    """A rule's subject: a role, `user:<subject>` or `apikey:<id>`."""
    subject = subject.strip()
    kind, sep, rest = subject.partition(":")
    if not sep and _ROLE.match(subject):
        return subject
    if sep and kind == "user" and len(subject) <= 128 and subject_name_problem(rest) is None:
        return subject
    if sep and kind == "apikey":
        try:
            return f"apikey:{uuid.UUID(rest)}"
        except ValueError:
            pass
    raise _invalid_subject("subject must be a role name, user:<subject> or apikey:<id>")


def check_user_subject(subject: str) -> str:
    """A person's subject as tokens carry it (role assignments are keyed by it): the same
    rule as a token's `sub` (`subject_name_problem`), surrounding blanks aside."""
    subject = subject.strip()
    problem = subject_name_problem(subject)
    if problem is not None:
        raise _invalid_subject(
            f"{problem}; a subject is 1-128 visible characters without spaces, : or ,"
        )
    return subject


def check_role_name(role: str) -> str:
    role = role.strip()
    if not _ROLE.match(role):
        raise ValidationError("a role name is 1-64 letters, digits, _ or -", code="INVALID_ROLE")
    return role


def role_object(role: str) -> str:
    """The policy object standing for one role when it is granted: `role:<name>`."""
    return f"{ROLE_OBJECT_PREFIX}{role}"


def object_kind(obj: str) -> str:
    """`type`, `field`, `purpose`, `role`, `extra` or `any`; UNKNOWN_OBJECT if none."""
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
    if obj.startswith(ROLE_OBJECT_PREFIX):
        name = obj.removeprefix(ROLE_OBJECT_PREFIX)
        if name == WILDCARD or _ROLE.match(name):
            return "role"
        raise ValidationError(f"{obj!r} does not name a role", code="UNKNOWN_OBJECT")
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


def _scoped_actions() -> tuple[str, ...]:
    return tuple(
        scoped_action(verb, scope) for verb in SCOPED_VERBS for scope in (*ROW_SCOPES, WILDCARD)
    )


def _actions_for(kind: str, obj: str) -> tuple[str, ...]:
    if kind == "field":
        return FIELD_ACTIONS
    if kind == "purpose":
        return PURPOSE_ACTIONS
    if kind == "role":
        return GRANT_ACTIONS
    if obj in SCOPED_OBJECTS:
        return (*_scoped_actions(), "manage", *OBJECT_ACTIONS.get(obj, ()))
    if kind in ("extra", "type"):
        return TYPE_ACTIONS
    return TYPE_ACTIONS + _scoped_actions() + FIELD_ACTIONS + PURPOSE_ACTIONS + GRANT_ACTIONS


def check_rule(
    subject: str,
    obj: str,
    action: str | None,
    effect: str,
    mode: str | None = None,
    scope: str | None = None,
) -> RuleSpec:
    """Validate one rule; `mode` and `scope` are shorthands for qualified actions.

    `mode` (field reads): `clear` → `read:clear` allow, `masked` → `read:masked` allow,
    `none` → `read:*` deny (deny overrides, so no role of the subject can reveal the
    field at all). `scope` (scoped objects): action `update` with scope `own` is
    `update:own`; a deny may name scope `*` (every scope). On a scoped object an allow
    must name one scope: a plain `update` is refused with SCOPE_REQUIRED.
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
        if kind != "field" or action not in (None, "read") or scope is not None:
            raise ValidationError(
                "a mode applies to reading a field (type.field, action read)", code="UNKNOWN_MODE"
            )
        if mode == "none":
            return RuleSpec(subject, obj, "read:*", "deny")
        return RuleSpec(subject, obj, f"read:{mode}", effect)
    if action is None:
        raise ValidationError("give an action or a mode", code="UNKNOWN_ACTION")
    action = action.strip()
    if scope is not None:
        if obj not in SCOPED_OBJECTS or action not in SCOPED_VERBS:
            raise ValidationError(
                "a scope applies to read, create, update, delete, erase or export of "
                f"records owned by customers ({', '.join(sorted(SCOPED_OBJECTS))})",
                code="UNKNOWN_SCOPE",
            )
        if scope not in ROW_SCOPES and scope != WILDCARD:
            raise ValidationError(
                f"unknown scope {scope!r}; scopes are {', '.join(ROW_SCOPES)}",
                code="UNKNOWN_SCOPE",
            )
        action = scoped_action(action, scope)
    action = _check_action(kind, obj, action)
    if obj in SCOPED_OBJECTS and action.endswith(f":{WILDCARD}") and effect == "allow":
        raise ValidationError(
            f"an allow names its scope: {action.split(':')[0]}:all, :team or :own "
            "(a scope of * is for denies)",
            code="SCOPE_REQUIRED",
        )
    return RuleSpec(subject, obj, action, effect)


def _check_action(kind: str, obj: str, action: str) -> str:
    action = action.strip()
    allowed = _actions_for(kind, obj)
    if action != WILDCARD and action not in allowed:
        if obj in SCOPED_OBJECTS and action in SCOPED_VERBS:
            raise ValidationError(
                f"{action} on {obj} names the rows it covers: give {action}:all, "
                f"{action}:team or {action}:own (or scope all, team, own; "
                f"{action}:* to deny every scope)",
                code="SCOPE_REQUIRED",
            )
        raise ValidationError(
            f"unknown action {action!r} for {obj!r}; expected one of {', '.join(allowed)}",
            code="UNKNOWN_ACTION",
        )
    return action


def check_request(obj: str, action: str) -> tuple[str, str]:
    """An (object, action) a caller could ask about, e.g. to explain a decision; on a
    scoped object the plain verb (`update`: which scope, if any) is a question too."""
    obj = obj.strip()
    action = action.strip()
    kind = object_kind(obj)
    if is_scoped(obj, action):
        return obj, action
    return obj, _check_action(kind, obj, action)


def reserved_by(spec: RuleSpec) -> set[str]:
    """The roles whose grant right it takes to add this rule (if an allow) or remove it
    (if a deny): the stewards of every reserved capability the rule covers."""
    return {
        role
        for (obj, action), role in RESERVED_CAPABILITIES.items()
        if key_match(obj, spec.object) and key_match(action, spec.action)
    }


def valid_objects() -> list[str]:
    """Every concrete object a rule may name (wildcards aside), for docs and clients."""
    objects = [f"purpose:{p}" for p in PURPOSES] + sorted(EXTRA_OBJECTS)
    for type_name in sorted(TYPE_TABLES):
        objects.append(type_name)
        objects.extend(f"{type_name}.{f}" for f in sorted(type_fields(type_name)))
    return objects
