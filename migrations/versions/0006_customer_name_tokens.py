"""customer name tokens: truncated keyed HMACs of name parts, for name search

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 15:30:00

Names are sealed; a search finds them by tokens of their parts (whole name, Latin-script
words, Chinese surname) computed in the vault under the blind-index key. The migration
cannot compute tokens (it holds no keys): existing customers become searchable by name
after `custos keys rotate --blind-index`, which recomputes every customer's tokens.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customer_name_tokens",
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("token", sa.Integer(), nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_name_tokens_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "customer_id", "kind", "token", "key_version", name=op.f("pk_customer_name_tokens")
        ),
    )
    with op.batch_alter_table("customer_name_tokens", schema=None) as batch_op:
        batch_op.create_index(
            "ix_customer_name_tokens_lookup", ["kind", "token", "key_version"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("customer_name_tokens", schema=None) as batch_op:
        batch_op.drop_index("ix_customer_name_tokens_lookup")
    op.drop_table("customer_name_tokens")
