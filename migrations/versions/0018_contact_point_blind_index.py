"""contact point blind index: find a customer by a landline, WeChat ID or contact person's phone

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-30 19:15:00

A keyed blind index of each point's value under a blind-index key version, like the
customer's own contact columns. Existing points get theirs from the next
`custos keys rotate --blind-index` (the keys are not in the database).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customer_contact_points", schema=None) as batch_op:
        batch_op.add_column(sa.Column("value_bidx", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("bidx_key_version", sa.Integer(), nullable=True))
        batch_op.create_index("ix_customer_contact_points_value_bidx", ["value_bidx"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("customer_contact_points", schema=None) as batch_op:
        batch_op.drop_index("ix_customer_contact_points_value_bidx")
        batch_op.drop_column("bidx_key_version")
        batch_op.drop_column("value_bidx")
