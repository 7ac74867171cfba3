"""console users: local accounts (Argon2id) and their sessions

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 15:30:00

People sign in to the console with a local account; a session is stored only as the
hash of its cookie, with its CSRF token and the purpose its user chose.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from server.data.base import UtcDateTime

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Who manages accounts: admins in the console, the host's operator with `custos users`.
ADDED_RULES = (
    ("admin", "user", "manage", "allow"),
    ("cli_operator", "user", "manage", "allow"),
)
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
    """Add the account rules to a seeded policy (or take them away again)."""
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
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("username", sa.String(length=128), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("team", sa.String(length=64), nullable=True),
        sa.Column("totp_secret", sa.String(length=64), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("password_changed_at", UtcDateTime(), nullable=False),
        sa.Column("disabled_at", UtcDateTime(), nullable=True),
        sa.Column("last_sign_in_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "user_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("last_seen_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_user_sessions")),
    )
    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_sessions_user_id"), ["user_id"], unique=False)
    _rules(add=True)


def downgrade() -> None:
    _rules(add=False)
    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_sessions_user_id"))
    op.drop_table("user_sessions")
    op.drop_table("users")
