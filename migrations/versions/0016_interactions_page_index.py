"""interactions: the per-customer page index ends with the id

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30 19:10:00

A customer's interactions are paged newest first, ties broken by id. With the id in the
index (customer_id, occurred_at, id) a page is a backward index scan that stops after
`first + 1` entries, cursor included, with no sort; the former (customer_id,
occurred_at) index is a prefix of it and goes.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_interactions_customer_time_id", ["customer_id", "occurred_at", "id"], unique=False
        )
        batch_op.drop_index("ix_interactions_customer_time")


def downgrade() -> None:
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_interactions_customer_time", ["customer_id", "occurred_at"], unique=False
        )
        batch_op.drop_index("ix_interactions_customer_time_id")
