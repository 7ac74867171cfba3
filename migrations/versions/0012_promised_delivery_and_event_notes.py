"""orders: a promised delivery time; complaint event notes readable under a field rule

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 16:00:00

`orders.promised_at` is when delivery was promised; on-time delivery is measured
against it. A complaint event's note (sealed) is read under `complaint_event.note`:
stored policies get the rules the default policy now has, for each default role still
present, and the policy version moves so running workers reload. A fresh database
(empty policy table) is left for the server to seed from policies/policy.csv.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import server.data.base

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (a rule the role keeps, the rule added beside it)
ADDED_RULES = (
    (
        ("manager", "complaint.*", "read:clear", "allow"),
        ("manager", "complaint_event.*", "read:clear", "allow"),
    ),
    (
        ("agent", "complaint.*", "read:clear", "allow"),
        ("agent", "complaint_event.*", "read:clear", "allow"),
    ),
    (
        ("support", "complaint.*", "read:clear", "allow"),
        ("support", "complaint_event.*", "read:clear", "allow"),
    ),
    (
        ("analyst", "complaint.*", "read:*", "deny"),
        ("analyst", "complaint_event.*", "read:*", "deny"),
    ),
    (
        ("compliance", "complaint.*", "read:masked", "allow"),
        ("compliance", "complaint_event.*", "read:masked", "allow"),
    ),
)

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


def _stored() -> dict[tuple[str, str, str, str], int]:
    rows = op.get_bind().execute(sa.select(rules_table)).all()
    return {
        (row.v0, row.v1, row.v2, row.v3 or "allow"): row.id for row in rows if row.ptype == "p"
    }


def _bump() -> None:
    op.get_bind().execute(
        sa.update(version_table)
        .where(version_table.c.id == 1)
        .values(version=version_table.c.version + 1, changed_at=sa.func.now())
    )


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("promised_at", server.data.base.UtcDateTime(timezone=True), nullable=True)
        )
    stored = _stored()
    fresh = [rule for needs, rule in ADDED_RULES if needs in stored and rule not in stored]
    if fresh:
        op.get_bind().execute(
            sa.insert(rules_table),
            [
                {"ptype": "p", "v0": s, "v1": o, "v2": a, "v3": e, "v4": "", "v5": ""}
                for s, o, a, e in fresh
            ],
        )
        _bump()


def downgrade() -> None:
    stored = _stored()
    ids = [stored[rule] for _, rule in ADDED_RULES if rule in stored]
    if ids:
        op.get_bind().execute(sa.delete(rules_table).where(rules_table.c.id.in_(ids)))
        _bump()
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("promised_at")
