"""customers: gender, tier and lifecycle hold only their closed sets

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 15:30:00

The API now types these as enums (`Gender`, `CustomerTier`, `Lifecycle`) and new files
and imports are checked against them; values stored before are brought into the sets:
case is folded (`Female` is `female`); a gender outside the set becomes `other` (it was
stated, only not in our words); a tier or lifecycle outside its set is cleared, and the
next segment refresh writes it again. Not reversible: the old spellings are not kept.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen here: the sets as of this revision, whatever they become later.
GENDERS = ("female", "male", "other")
TIERS = ("high", "mid", "low")
LIFECYCLES = ("new", "active", "at_risk", "churned", "won_back")


def upgrade() -> None:
    customers = sa.table(
        "customers",
        sa.column("gender", sa.String),
        sa.column("tier", sa.String),
        sa.column("lifecycle", sa.String),
    )
    for name, allowed, outside in (
        ("gender", GENDERS, "other"),
        ("tier", TIERS, None),
        ("lifecycle", LIFECYCLES, None),
    ):
        column = customers.c[name]
        folded = sa.func.lower(sa.func.trim(column))
        op.execute(
            customers.update()
            .where(column.is_not(None), column.not_in(allowed), folded.in_(allowed))
            .values({name: folded})
        )
        op.execute(
            customers.update()
            .where(column.is_not(None), column.not_in(allowed))
            .values({name: outside})
        )


def downgrade() -> None:
    # The folded values are valid before this revision too; nothing to undo.
    pass
