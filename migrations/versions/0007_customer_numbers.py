"""customer numbers, product deactivation, and the CLI operator's import rules

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 16:00:00

`customers.customer_number`: the business's own reference ("C-00017"), unique, found by
an equality filter and usable as an order import's `customer_ref`. `products.active`: a
deactivated product stays on past orders but takes no new ones.

`custos import orders|products` and consent columns of `custos import customers` pass the
policy now, as customer imports do: stored policies get the CLI operator's rules for them
(order/create:all, consent/create:all, product/manage) and a new policy version. A fresh
database (empty policy table) is left for the server to seed from policies/policy.csv.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


OPERATOR_RULES = (
    ("cli_operator", "order", "create:all", "allow"),
    ("cli_operator", "consent", "create:all", "allow"),
    ("cli_operator", "product", "manage", "allow"),
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


def _stored_rules() -> set[tuple[str, str, str, str]]:
    rows = op.get_bind().execute(sa.select(rules_table).where(rules_table.c.ptype == "p"))
    return {(r.v0, r.v1, r.v2, r.v3 or "allow") for r in rows}


def _bump_version() -> None:
    op.get_bind().execute(
        sa.update(version_table)
        .where(version_table.c.id == 1)
        .values(version=version_table.c.version + 1, changed_at=sa.func.now())
    )


def upgrade() -> None:
    stored = _stored_rules()
    missing = [rule for rule in OPERATOR_RULES if rule not in stored]
    if stored and missing:
        op.get_bind().execute(
            sa.insert(rules_table),
            [
                {"ptype": "p", "v0": s, "v1": o, "v2": a, "v3": e, "v4": "", "v5": ""}
                for s, o, a, e in missing
            ],
        )
        _bump_version()
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("customer_number", sa.String(length=32), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_customers_customer_number"), ["customer_number"], unique=True
        )
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False)
        )


def downgrade() -> None:
    bind = op.get_bind()
    for subject, obj, action, effect in OPERATOR_RULES:
        bind.execute(
            sa.delete(rules_table).where(
                rules_table.c.ptype == "p",
                rules_table.c.v0 == subject,
                rules_table.c.v1 == obj,
                rules_table.c.v2 == action,
                rules_table.c.v3 == effect,
            )
        )
    if _stored_rules():
        _bump_version()
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_column("active")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customers_customer_number"))
        batch_op.drop_column("customer_number")
