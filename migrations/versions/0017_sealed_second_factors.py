"""sealed second factors: console accounts' TOTP secrets wrapped under the KEK

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30 19:20:00

A TOTP secret in clear let anyone holding a dump of the database mint valid codes. The
secret is now wrapped under the key-encryption key like a customer's data key. A
migration cannot reach the keyring, so secrets already stored stay in `totp_secret`
until the account's next sign-in, reset or KEK rotation seals them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("totp_sealed", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("totp_kek_version", sa.Integer(), nullable=True))


def downgrade() -> None:
    # Sealed secrets cannot be opened here (no keyring), and dropping them would quietly
    # turn those accounts' second factor off: refuse instead.
    sealed = op.get_bind().scalar(
        sa.text("SELECT count(*) FROM users WHERE totp_sealed IS NOT NULL")
    )
    if sealed:
        raise RuntimeError(
            f"{sealed} accounts have a sealed second factor; turn it off first "
            "(custos users reset --no-totp) or stay at 0017"
        )
    with op.batch_alter_table("users") as batch:
        batch.drop_column("totp_kek_version")
        batch.drop_column("totp_sealed")
