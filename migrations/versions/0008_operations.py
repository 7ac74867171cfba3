"""operations: readiness probe, trusted documents, the metrics scrape rule

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 15:00:00

`readiness_probe` holds the one row `/readyz` rewrites to prove the database still
commits; `trusted_documents` the GraphQL documents registered for trusted-documents
mode. Stored policies that still have the admin role get `p, admin, metrics, scrape,
allow` (Prometheus `/metrics`), as policies/policy.csv now has; the policy version moves
so running workers reload; every stored policy gets `p, cli_operator, document, manage,
allow` (`custos documents add`). A fresh database (empty policy table) is left to the seed.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ADMIN_MARKER = ("admin", "policy", "manage", "allow")
SCRAPE_RULE = ("admin", "metrics", "scrape", "allow")
DOCUMENTS_RULE = ("cli_operator", "document", "manage", "allow")

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


def _p_rules() -> set[tuple[str, str, str, str]]:
    rows = op.get_bind().execute(sa.select(rules_table).where(rules_table.c.ptype == "p")).all()
    return {(row.v0, row.v1, row.v2, row.v3 or "allow") for row in rows}


def _bump_version() -> None:
    op.get_bind().execute(
        sa.update(version_table)
        .where(version_table.c.id == 1)
        .values(version=version_table.c.version + 1, changed_at=sa.func.now())
    )


def upgrade() -> None:
    op.create_table(
        "readiness_probe",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_readiness_probe")),
    )
    op.create_table(
        "trusted_documents",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("operation_name", sa.String(length=128), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("added_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_trusted_documents")),
    )
    rules = _p_rules()
    if not rules:
        return  # never seeded: the server seeds the current policy.csv
    added = [DOCUMENTS_RULE] if DOCUMENTS_RULE not in rules else []
    if ADMIN_MARKER in rules and SCRAPE_RULE not in rules:
        added.append(SCRAPE_RULE)
    if added:
        op.get_bind().execute(
            sa.insert(rules_table),
            [
                {"ptype": "p", "v0": s, "v1": o, "v2": a, "v3": e, "v4": "", "v5": ""}
                for s, o, a, e in added
            ],
        )
        _bump_version()


def downgrade() -> None:
    deleted = 0
    for subject, obj, action, effect in (SCRAPE_RULE, DOCUMENTS_RULE):
        deleted += op.get_bind().execute(
            sa.delete(rules_table).where(
                rules_table.c.ptype == "p",
                rules_table.c.v0 == subject,
                rules_table.c.v1 == obj,
                rules_table.c.v2 == action,
                rules_table.c.v3 == effect,
            )
        ).rowcount
    if deleted:
        _bump_version()
    op.drop_table("trusted_documents")
    op.drop_table("readiness_probe")
