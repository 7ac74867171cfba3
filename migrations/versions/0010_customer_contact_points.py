"""customer contact points: further mobiles, landlines, WeChat IDs and contact persons

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 16:10:00

Sealed like the file's own contacts (the value and a contact person's name are
ciphertext under the customer's data key), erased with the customer.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customer_contact_points",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=True),
        sa.Column("person_name", sa.LargeBinary(), nullable=True),
        sa.Column("label", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_contact_points_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_contact_points")),
    )
    with op.batch_alter_table("customer_contact_points", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_customer_contact_points_customer_id"), ["customer_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("customer_contact_points", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_contact_points_customer_id"))
    op.drop_table("customer_contact_points")
