"""policy: row scope per action; role grants; the security stream

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 09:00:00

Row scopes move into the rules that allow an action: `p, agent, customer, read, allow`
plus `p, agent, customer, scope:own, allow` become `p, agent, customer, read:own, allow`.
Stored rules (the policy table of a database seeded from an older policy.csv, and
whatever admins added since) are rewritten:

- an allow of a plain action on a record type customers own (and on `metrics`,
  `segment`) takes the widest scope its subject held on `customer` (through `g`
  inheritance too); a subject that held none gets `own`, the narrowest, rather than
  a guess;
- a deny of a plain action becomes a deny of every scope (`read:*`);
- a `scope:<x>` deny becomes a deny of `<action>:<x>` for every action on every object
  (`p, user:bob, *, update:all, deny`), an allow disappears into the rules above;
- rules the policy now needs are added when missing: role grants (admins every role
  but compliance, compliance officers compliance) and the CLI operator's
  `segment`/`manage` and customer import.

The policy version moves, so running workers reload. A fresh database (empty policy
table) is left alone: the server seeds it from policies/policy.csv.

Also creates `security_events`: failed authentications and bad purposes counted per
(minute, client address, code).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen here: the vocabulary as of this revision, whatever it becomes later.
SCOPED_OBJECTS = frozenset(
    {
        "customer",
        "consent",
        "interaction",
        "complaint",
        "complaint_event",
        "order",
        "order_item",
        "order_status_event",
        "loyalty",
        "referral",
        "campaign",
        "campaign_recipient",
        "metrics",
        "segment",
    }
)
VERBS = ("read", "create", "update", "delete", "erase", "export")
SCOPES = ("all", "team", "own")
NARROWEST = "own"
# A rule each default role keeps through the rewrite: a new rule for a role is added only
# where the stored policy still has that role.
ROLE_MARKERS = {
    "admin": ("admin", "policy", "manage", "allow"),
    "manager": ("manager", "purpose:support", "use", "allow"),
    "agent": ("agent", "purpose:support", "use", "allow"),
    "support": ("support", "purpose:support", "use", "allow"),
    "analyst": ("analyst", "purpose:analytics", "use", "allow"),
    "compliance": ("compliance", "purpose:compliance", "use", "allow"),
}
ADDED_RULES = (
    # Admins grant roles, but not compliance (assignRole and API key roles need it now).
    (("admin", "policy", "manage", "allow"), ("admin", "role:*", "grant", "allow")),
    (("admin", "policy", "manage", "allow"), ("admin", "role:compliance", "grant", "deny")),
    # Compliance officers co-opt colleagues into compliance.
    (
        ("compliance", "purpose:compliance", "use", "allow"),
        ("compliance", "role:compliance", "grant", "allow"),
    ),
    # The CLI operator: `custos segments refresh` (policy.csv only, until now) and
    # `custos import customers`, which passes the policy now.
    (None, ("cli_operator", "segment", "manage", "allow")),
    (None, ("cli_operator", "import", "create", "allow")),
    (None, ("cli_operator", "customer", "create:all", "allow")),
    # Objects that came with this revision's siblings: tasks (0003) and the schema
    # (introspection in prod), for roles that exist in the stored policy.
    *(
        (ROLE_MARKERS[role], (role, *rule))
        for role, *rule in (
            ("manager", "task", "read:team", "allow"),
            ("manager", "task", "create:team", "allow"),
            ("manager", "task", "update:team", "allow"),
            ("manager", "task", "manage", "allow"),
            ("manager", "task.*", "read:clear", "allow"),
            ("agent", "task", "read:own", "allow"),
            ("agent", "task", "create:own", "allow"),
            ("agent", "task", "update:own", "allow"),
            ("agent", "task.*", "read:clear", "allow"),
            ("support", "task", "read:all", "allow"),
            ("support", "task", "create:all", "allow"),
            ("support", "task", "update:all", "allow"),
            ("support", "task.*", "read:clear", "allow"),
            ("admin", "task", "read:all", "allow"),
            ("analyst", "task", "read:all", "allow"),
            ("analyst", "task.*", "read:*", "deny"),
            ("compliance", "task", "read:all", "allow"),
            ("compliance", "task.*", "read:masked", "allow"),
            ("admin", "schema", "read", "allow"),
        )
    ),
    (None, ("integrator", "schema", "read", "allow")),
)
# What a downgrade takes away again: the grants, and the rules of objects 0002 did not know.
NEW_OBJECTS = ("task", "task.*", "schema")

Rule = tuple[str, str, str, str]

rules_table = sa.table(
    "policy_rules",
    sa.column("id", sa.Integer),
    sa.column("ptype", sa.String),
    *(sa.column(f"v{i}", sa.String) for i in range(6)),
)
version_table = sa.table(
    "policy_version",
    sa.column("id", sa.Integer),
    sa.column("version", sa.Integer),
    sa.column("changed_at", sa.DateTime(timezone=True)),
)


def _load() -> tuple[dict[int, Rule], list[tuple[str, str]]]:
    rows = op.get_bind().execute(sa.select(rules_table)).all()
    p_rules = {
        row.id: (row.v0, row.v1, row.v2, row.v3 or "allow") for row in rows if row.ptype == "p"
    }
    g_rules = [(row.v0, row.v1) for row in rows if row.ptype == "g"]
    return p_rules, g_rules


def _write(removed: set[int], added: list[Rule], existing: set[Rule]) -> None:
    bind = op.get_bind()
    if removed:
        bind.execute(sa.delete(rules_table).where(rules_table.c.id.in_(sorted(removed))))
    fresh: list[Rule] = []
    for rule in added:
        if rule not in existing and rule not in fresh:
            fresh.append(rule)
    if fresh:
        bind.execute(
            sa.insert(rules_table),
            [
                {"ptype": "p", "v0": s, "v1": o, "v2": a, "v3": e, "v4": "", "v5": ""}
                for s, o, a, e in fresh
            ],
        )
    if removed or fresh:
        bind.execute(
            sa.update(version_table)
            .where(version_table.c.id == 1)
            .values(version=version_table.c.version + 1, changed_at=sa.func.now())
        )


def _ancestors(subject: str, g_rules: list[tuple[str, str]]) -> set[str]:
    found = {subject}
    frontier = [subject]
    while frontier:
        member = frontier.pop()
        for child, role in g_rules:
            if child == member and role not in found:
                found.add(role)
                frontier.append(role)
    return found


def upgrade() -> None:
    op.create_table(
        "security_events",
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client_addr", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_request_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("minute", "client_addr", "code", name=op.f("pk_security_events")),
    )
    p_rules, g_rules = _load()
    if not p_rules:
        return  # never seeded: the server seeds the current policy.csv
    held: dict[str, set[str]] = {}
    for subject, obj, action, effect in p_rules.values():
        if obj == "customer" and action.startswith("scope:") and effect == "allow":
            held.setdefault(subject, set()).add(action.removeprefix("scope:"))

    def widest(subject: str) -> str:
        scopes = set().union(*(held.get(s, set()) for s in _ancestors(subject, g_rules)))
        if "*" in scopes:
            return "all"
        return next((s for s in SCOPES if s in scopes), NARROWEST)

    removed: set[int] = set()
    added: list[Rule] = []
    for rule_id, (subject, obj, action, effect) in p_rules.items():
        if action.startswith("scope:"):
            removed.add(rule_id)
            if effect == "deny" and obj in ("customer", "*"):
                scope = action.removeprefix("scope:")
                added.extend((subject, "*", f"{verb}:{scope}", "deny") for verb in VERBS)
        elif obj in SCOPED_OBJECTS and action in VERBS:
            removed.add(rule_id)
            scope = widest(subject) if effect == "allow" else "*"
            added.append((subject, obj, f"{action}:{scope}", effect))
    kept = {rule for rule_id, rule in p_rules.items() if rule_id not in removed}
    for needs, rule in ADDED_RULES:
        if needs is None or needs in kept:
            added.append(rule)
    _write(removed, added, kept)


def downgrade() -> None:
    p_rules, _ = _load()
    removed: set[int] = set()
    added: list[Rule] = []
    for rule_id, (subject, obj, action, effect) in p_rules.items():
        verb, _, scope = action.partition(":")
        if (subject, obj, action, effect) in {rule for _, rule in ADDED_RULES[:3]}:
            removed.add(rule_id)
        elif obj in NEW_OBJECTS:
            removed.add(rule_id)
        elif obj == "*" and effect == "deny" and verb in VERBS and scope:
            removed.add(rule_id)
            added.append((subject, "customer", f"scope:{scope}", "deny"))
        elif obj in SCOPED_OBJECTS and verb in VERBS and scope:
            removed.add(rule_id)
            added.append((subject, obj, verb, effect))
            if effect == "allow":
                added.append((subject, "customer", f"scope:{scope}", "allow"))
    kept = {rule for rule_id, rule in p_rules.items() if rule_id not in removed}
    _write(removed, added, kept)
    op.drop_table("security_events")
