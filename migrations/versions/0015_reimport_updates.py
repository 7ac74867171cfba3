"""re-imports update: the host's operator may update the files a customer file names

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 19:00:00

`custos import customers` on a file whose rows carry the customer numbers of files already
there changes what differs, through the same update path and policy as `updateCustomer`:
the operator's role gets `customer/update` for every file, as it has `customer/create`.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ADDED_RULES = (("cli_operator", "customer", "update:all", "allow"),)
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


def _rules(add: bool) -> None:
    """Add the operator's update rule to a seeded policy (or take it away again)."""
    bind = op.get_bind()
    rows = bind.execute(sa.select(rules_table).where(rules_table.c.ptype == "p")).all()
    if not rows:
        return  # never seeded: the server seeds the current policy.csv
    existing = {(r.v0, r.v1, r.v2, r.v3 or "allow"): r.id for r in rows}
    changed = False
    for rule in ADDED_RULES:
        if add and rule not in existing:
            s, o, a, e = rule
            bind.execute(
                sa.insert(rules_table).values(ptype="p", v0=s, v1=o, v2=a, v3=e, v4="", v5="")
            )
            changed = True
        elif not add and rule in existing:
            bind.execute(sa.delete(rules_table).where(rules_table.c.id == existing[rule]))
            changed = True
    if changed:
        bind.execute(
            sa.update(version_table)
            .where(version_table.c.id == 1)
            .values(version=version_table.c.version + 1, changed_at=sa.func.now())
        )


def upgrade() -> None:
    _rules(add=True)


def downgrade() -> None:
    _rules(add=False)
