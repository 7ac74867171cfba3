"""duplicate flags: a write's duplicate contact its caller could not be told about

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 10:00:00

A duplicate check that matches a file outside the caller's scope (or on a field the
caller does not read in clear) no longer refuses the write: it stores a flag naming both
files and the field, for whoever's scope covers both.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "duplicate_flags",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("new_customer_id", sa.Uuid(), nullable=False),
        sa.Column("existing_customer_id", sa.Uuid(), nullable=False),
        sa.Column("field", sa.String(length=32), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("raised_by", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["existing_customer_id"],
            ["customers.id"],
            name=op.f("fk_duplicate_flags_existing_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["new_customer_id"],
            ["customers.id"],
            name=op.f("fk_duplicate_flags_new_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_duplicate_flags")),
        sa.UniqueConstraint(
            "new_customer_id",
            "existing_customer_id",
            "field",
            name=op.f("uq_duplicate_flags_new_customer_id"),
        ),
    )
    with op.batch_alter_table("duplicate_flags", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_duplicate_flags_existing_customer_id"),
            ["existing_customer_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_duplicate_flags_new_customer_id"), ["new_customer_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("duplicate_flags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_duplicate_flags_new_customer_id"))
        batch_op.drop_index(batch_op.f("ix_duplicate_flags_existing_customer_id"))
    op.drop_table("duplicate_flags")
