"""customer notes (备注): every version sealed, with who and when; the rules to read them

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 16:30:00

Notes are a new record type, `customer_note`, read in the mode the policy gives
`customer_note.body`. Stored policies get the rules today's policy.csv has for the
default roles they still hold (managers, agents and support read notes in clear,
compliance masked); the policy version moves so running workers reload. A fresh database
(empty policy table) is left alone: the server seeds it from policies/policy.csv.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

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
# A rule each default role keeps: the new rule of a role is added only where the stored
# policy still has the role.
ROLE_MARKERS = {
    "manager": ("manager", "purpose:support", "use", "allow"),
    "agent": ("agent", "purpose:support", "use", "allow"),
    "support": ("support", "purpose:support", "use", "allow"),
    "compliance": ("compliance", "purpose:compliance", "use", "allow"),
}
ADDED_RULES = (
    ("manager", "customer_note.body", "read:clear", "allow"),
    ("agent", "customer_note.body", "read:clear", "allow"),
    ("support", "customer_note.body", "read:clear", "allow"),
    ("compliance", "customer_note.*", "read:masked", "allow"),
)


def upgrade() -> None:
    op.create_table(
        "customer_notes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("note_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("written_by", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_notes_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_notes")),
        sa.UniqueConstraint("note_id", "version", name=op.f("uq_customer_notes_note_id")),
    )
    with op.batch_alter_table("customer_notes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_customer_notes_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_customer_notes_note_id"), ["note_id"], unique=False)
    bind = op.get_bind()
    rows = bind.execute(sa.select(rules_table).where(rules_table.c.ptype == "p")).all()
    stored = {(r.v0, r.v1, r.v2, r.v3 or "allow") for r in rows}
    if not stored:
        return  # never seeded: the server seeds the current policy.csv
    fresh = [
        rule for rule in ADDED_RULES if ROLE_MARKERS[rule[0]] in stored and rule not in stored
    ]
    if fresh:
        bind.execute(
            sa.insert(rules_table),
            [
                {"ptype": "p", "v0": s, "v1": o, "v2": a, "v3": e, "v4": "", "v5": ""}
                for s, o, a, e in fresh
            ],
        )
        _bump()


def downgrade() -> None:
    bind = op.get_bind()
    removed = bind.execute(
        sa.delete(rules_table).where(
            rules_table.c.ptype == "p", rules_table.c.v1.like("customer\\_note%", escape="\\")
        )
    )
    if getattr(removed, "rowcount", 0):
        _bump()
    with op.batch_alter_table("customer_notes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_notes_note_id"))
        batch_op.drop_index(batch_op.f("ix_customer_notes_customer_id"))
    op.drop_table("customer_notes")


def _bump() -> None:
    op.get_bind().execute(
        sa.update(version_table)
        .where(version_table.c.id == 1)
        .values(version=version_table.c.version + 1, changed_at=sa.func.now())
    )
